//! Item streams (Pyro5's `ITER_STREAMING`) through a real `pyrolab-host
//! run daemon`: methods that return iterators, read item by item by the
//! Rust client, `call` and stock Python Pyro5; streams abandoned, cut
//! off, failing midway, past their lifetime, and the bounds on open ones.

use std::process::Command;
use std::time::{Duration, Instant};

use pyrolab_host::client::{ClientError, Proxy, Returned};
use pyrolab_host::wire::serializer;
use pyrolab_plugin_api::{CallArgs, Value};
use pyrolab_test_support::{
    Background, Sandbox, lab_config, python_with_pyro5, repo_root, run, run_host, start_lab_daemon,
    wait_until,
};

fn proxy(location: &str, object: &str) -> Proxy {
    let mut proxy = Proxy::connect(&format!("PYRO:{object}@{location}")).expect("connect");
    proxy.set_timeout(Some(Duration::from_secs(20)));
    proxy
}

/// A lab daemon whose daemon section has `extra` lines (indented four).
fn lab(sandbox: &Sandbox, extra: &str) -> (Background, String) {
    start_lab_daemon(sandbox, &lab_config(sandbox, "thread", extra))
}

fn args(values: Vec<Value>) -> CallArgs {
    CallArgs::positional(values)
}

fn open_streams(sample: &Proxy) -> i64 {
    sample.call("open_streams", ()).expect("open_streams")
}

fn remote(err: ClientError) -> (String, String) {
    match err {
        ClientError::Remote(remote) => (remote.kind().to_owned(), remote.message.clone()),
        other => panic!("expected a remote exception, got {other}"),
    }
}

/// The stream's id, with the stream left open (not closed on drop), as a
/// client that vanishes leaves it.
fn abandon(stream: pyrolab_host::client::RemoteStream<'_>) -> String {
    let id = stream.id().to_owned();
    std::mem::forget(stream);
    id
}

fn next_item(daemon: &Proxy, id: &str) -> Result<Value, ClientError> {
    daemon.call_with("get_next_stream_item", args(vec![id.into()]))
}

#[test]
fn a_million_items_stream_to_the_rust_client_in_order() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "");
    let sample = proxy(&location, "sample");
    let started = Instant::now();
    let mut expected = 0i64;
    for item in sample
        .stream("count", args(vec![1_000_000.into()]))
        .unwrap()
    {
        assert_eq!(item.unwrap(), Value::Int(expected));
        expected += 1;
    }
    assert_eq!(expected, 1_000_000);
    eprintln!("1,000,000 items in {:?}", started.elapsed());
    assert_eq!(open_streams(&sample), 0, "an ended stream is closed");
}

#[test]
fn streams_come_through_every_serializer_with_small_and_megabyte_items() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "");
    for name in ["native", "serpent", "marshal", "json", "msgpack"] {
        let mut sample = proxy(&location, "sample");
        sample.set_serializer(serializer::by_name(name).expect("spoken"));
        let items: Vec<Value> = sample
            .stream("count", args(vec![100.into()]))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            items,
            (0..100).map(Value::Int).collect::<Vec<_>>(),
            "{name}"
        );
        if name == "serpent" || name == "json" {
            continue; // bytes travel as base64 text there, as in Pyro5
        }
        let chunks = sample
            .stream("chunks", args(vec![4.into(), (1 << 20).into()]))
            .unwrap();
        for (i, chunk) in chunks.enumerate() {
            let chunk = chunk.unwrap();
            let bytes = chunk
                .as_bytes()
                .unwrap_or_else(|| panic!("{name}: {chunk}"));
            assert_eq!(bytes.len(), 1 << 20, "{name}");
            assert!(bytes.iter().all(|&b| b == i as u8), "{name}: item {i}");
        }
    }
}

#[test]
fn a_plain_call_of_a_streaming_method_is_told_to_iterate_and_leaves_nothing_open() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "");
    let sample = proxy(&location, "sample");
    let err = sample.call_with("count", args(vec![3.into()])).unwrap_err();
    assert!(matches!(err, ClientError::Stream(_)), "{err}");
    assert!(
        err.to_string().contains("count() returns an item stream"),
        "{err}"
    );
    assert!(matches!(
        sample.call_any("echo", args(vec!["x".into()])).unwrap(),
        Returned::Value(_)
    ));
    assert!(wait_until(Duration::from_secs(5), || open_streams(&sample) == 0));
}

#[test]
fn a_driver_error_midway_ends_the_stream_with_that_error() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "");
    let sample = proxy(&location, "sample");
    let mut stream = sample
        .stream("count_then_fail", args(vec![5.into()]))
        .unwrap();
    for i in 0..5 {
        assert_eq!(stream.next().unwrap().unwrap(), Value::Int(i));
    }
    let ClientError::Remote(err) = stream.next().unwrap().unwrap_err() else {
        panic!("a remote error")
    };
    assert_eq!(err.kind(), "ValueError");
    assert_eq!(err.message, "failed at item 5");
    let traceback = err.traceback.concat();
    assert!(
        traceback.contains("service \"sample\", in count_then_fail"),
        "{traceback}"
    );
    assert!(stream.next().is_none(), "the error ends the stream");
    drop(stream);
    assert_eq!(open_streams(&sample), 0);
}

#[test]
fn a_stream_abandoned_by_its_client_is_closed_when_its_linger_ends() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "    iter_stream_linger: 1\n");
    let watcher = proxy(&location, "sample");
    let client = proxy(&location, "sample");
    let mut stream = client.stream("count", args(vec![100.into()])).unwrap();
    stream.next().unwrap().unwrap();
    let id = abandon(stream);
    drop(client);
    // Still there just after: a client may come back for it.
    assert_eq!(open_streams(&watcher), 1);
    let gone = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || open_streams(
        &watcher
    ) == 0));
    assert!(
        gone.elapsed() >= Duration::from_millis(700),
        "{:?}",
        gone.elapsed()
    );
    let daemon = proxy(&location, "Pyro.Daemon");
    let (kind, message) = remote(next_item(&daemon, &id).unwrap_err());
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("PyroError", "item stream terminated")
    );
}

#[test]
fn a_client_back_within_the_linger_goes_on_with_its_stream() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "");
    let client = proxy(&location, "sample");
    let mut stream = client.stream("count", args(vec![10.into()])).unwrap();
    for i in 0..3 {
        assert_eq!(stream.next().unwrap().unwrap(), Value::Int(i));
    }
    let id = abandon(stream);
    drop(client);
    let daemon = proxy(&location, "Pyro.Daemon");
    assert_eq!(next_item(&daemon, &id).unwrap(), Value::Int(3));
}

#[test]
fn without_linger_a_stream_closes_with_its_connection() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "    iter_stream_linger: 0\n");
    let watcher = proxy(&location, "sample");
    let client = proxy(&location, "sample");
    let stream = client.stream("count", args(vec![100.into()])).unwrap();
    abandon(stream);
    assert_eq!(open_streams(&watcher), 1);
    drop(client);
    assert!(wait_until(Duration::from_secs(5), || open_streams(
        &watcher
    ) == 0));
}

#[test]
fn a_stream_whose_python_client_is_killed_is_closed_after_the_linger() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "    iter_stream_linger: 1\n");
    let watcher = proxy(&location, "sample");
    let script = repo_root().join("tests/python/stream_flows.py");
    let mut python = Background::start(Command::new(python_with_pyro5()).arg(script).args([
        "hold",
        &format!("PYRO:sample@{location}"),
        "serpent",
    ]));
    python.wait_for_line("holding", Duration::from_secs(30));
    assert_eq!(open_streams(&watcher), 1);
    let killed = python.terminate(Duration::from_secs(10));
    assert_ne!(killed.code, Some(0), "{killed}");
    assert!(wait_until(Duration::from_secs(10), || open_streams(
        &watcher
    ) == 0));
}

#[test]
fn open_streams_are_bounded_per_connection_and_per_daemon() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(
        &sandbox,
        "    max_item_streams_per_connection: 2\n    max_item_streams: 3\n",
    );
    let a = proxy(&location, "sample");
    let b = proxy(&location, "sample");
    let count = || args(vec![10.into()]);
    let a1 = a.stream("count", count()).unwrap();
    let _a2 = a.stream("count", count()).unwrap();
    let (kind, message) = remote(a.stream("count", count()).unwrap_err());
    assert_eq!(kind, "PyroError");
    assert!(
        message.contains("too many open item streams on this connection (2, the most is 2)"),
        "{message}"
    );
    let _b1 = b.stream("count", count()).unwrap();
    let (_, message) = remote(b.stream("count", count()).unwrap_err());
    assert!(
        message.contains("too many open item streams on this daemon (the most is 3)"),
        "{message}"
    );
    assert_eq!(open_streams(&b), 3, "a refused stream is closed");
    a1.close().unwrap();
    // close_stream is oneway, as Pyro5 sends it: it has run once the
    // count drops.
    assert!(wait_until(Duration::from_secs(5), || open_streams(&b) == 2));
    let mut b2 = b.stream("count", count()).unwrap();
    assert_eq!(b2.next().unwrap().unwrap(), Value::Int(0));
}

#[test]
fn a_stream_past_its_lifetime_is_closed_though_its_client_is_there() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "    iter_stream_lifetime: 1\n");
    let sample = proxy(&location, "sample");
    let mut stream = sample.stream("count", args(vec![100.into()])).unwrap();
    assert_eq!(stream.next().unwrap().unwrap(), Value::Int(0));
    std::thread::sleep(Duration::from_millis(1600));
    let (kind, message) = remote(stream.next().unwrap().unwrap_err());
    assert_eq!(
        (kind.as_str(), message.as_str()),
        ("PyroError", "item stream terminated")
    );
    drop(stream);
    assert_eq!(open_streams(&sample), 0);
}

#[test]
fn with_streaming_off_a_client_is_told_the_server_does_not_allow_it() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "    iter_streaming: false\n");
    let sample = proxy(&location, "sample");
    let err = sample.stream("count", args(vec![3.into()])).unwrap_err();
    assert!(
        err.to_string().contains(
            "result of call is an iterator, but the server is not configured to allow streaming"
        ),
        "{err}"
    );
    assert_eq!(open_streams(&sample), 0);
}

#[test]
fn call_prints_a_streams_items_as_json_lines() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "");
    let uri = format!("PYRO:sample@{location}");
    let output = run_host(sandbox.host().args(["call", &uri, "count", "3"])).success();
    assert_eq!(output.stdout, "0\n1\n2\n");
    let output = run_host(sandbox.host().args(["call", &uri, "count_then_fail", "2"])).failure(1);
    assert_eq!(output.stdout, "0\n1\n");
    assert!(
        output
            .stderr
            .starts_with("error: builtins.ValueError: failed at item 2"),
        "{output}"
    );
    let output = run_host(sandbox.host().args(["call", &uri, "open_streams"])).success();
    assert_eq!(output.stdout, "0\n");
}

#[test]
fn stock_python_pyro5_iterates_over_streams_with_every_serializer() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(
        &sandbox,
        "    iter_stream_linger: 1\n    max_item_streams_per_connection: 4\n",
    );
    let script = repo_root().join("tests/python/stream_flows.py");
    for serializer in ["serpent", "marshal", "json", "msgpack"] {
        let output = run(
            Command::new(python_with_pyro5()).arg(&script).args([
                "basics",
                &format!("PYRO:sample@{location}"),
                serializer,
            ]),
            Duration::from_secs(120),
        );
        assert_eq!(output.code, Some(0), "{serializer}\n{output}");
    }
}

#[test]
fn stock_python_pyro5_reads_a_million_item_stream() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = lab(&sandbox, "");
    let script = repo_root().join("tests/python/stream_flows.py");
    let output = run(
        Command::new(python_with_pyro5()).arg(&script).args([
            "million",
            &format!("PYRO:sample@{location}"),
            "msgpack",
        ]),
        Duration::from_secs(900),
    );
    assert_eq!(output.code, Some(0), "{output}");
    assert!(output.stdout.contains("1000000 items"), "{output}");
}
