//! The native Rust client against a real `pyrolab-host run daemon`: the
//! flows Python users rely on, concurrency by server type, instance modes,
//! limits, and bad input on the wire.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_host::client::{ClientError, Proxy};
use pyrolab_host::wire::serializer;
use pyrolab_plugin_api::{Bytes, CallArgs, Value};
use pyrolab_test_support::{Sandbox, lab_config, start_lab_daemon};

fn proxy(location: &str, object: &str) -> Proxy {
    let mut proxy = Proxy::connect(&format!("PYRO:{object}@{location}")).expect("connect");
    proxy.set_timeout(Some(Duration::from_secs(20)));
    proxy
}

fn remote_kind(err: ClientError) -> String {
    match err {
        ClientError::Remote(remote) => remote.kind().to_owned(),
        other => panic!("expected a remote exception, got {other}"),
    }
}

#[test]
fn the_library_catalog_flow_works_from_rust() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let catalog = proxy(&location, "library");
    catalog.call::<()>("add_book", ("The Hobbit", 3)).unwrap();
    catalog
        .call::<()>("add_book", ("C Programming", 2))
        .unwrap();
    catalog.call::<()>("checkout", ("The Hobbit",)).unwrap();
    catalog
        .call_with(
            "checkout",
            CallArgs::positional(vec!["C Programming".into()]).kwarg("quantity", 2),
        )
        .unwrap();
    let err = catalog
        .call::<()>("checkout", ("C Programming",))
        .unwrap_err();
    assert_eq!(remote_kind(err), "ValueError");
    let err = catalog.call::<()>("checkin", ("Dune",)).unwrap_err();
    let ClientError::Remote(remote) = err else {
        panic!("remote error expected")
    };
    assert_eq!(remote.class, "builtins.LookupError");
    assert_eq!(remote.message, "Cannot checkin: Book 'Dune' not found.");
    assert!(
        remote.traceback.iter().any(|line| line.contains("checkin")),
        "{:?}",
        remote.traceback
    );
    let books: Vec<(String, u32)> = catalog
        .call::<std::collections::BTreeMap<String, u32>>("get_catalog", ())
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(
        books,
        [
            ("C Programming".to_owned(), 0),
            ("The Hobbit".to_owned(), 2)
        ]
    );
}

#[cfg(unix)]
#[test]
fn a_daemon_on_a_unix_socket_serves_calls_and_removes_the_socket_on_exit() {
    let sandbox = Sandbox::new();
    let socket = sandbox.path().join("lab.sock");
    let extra = format!("    unixsocket: {}\n", socket.display());
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", &extra));
    assert_eq!(location, format!("./u:{}", socket.display()));
    let sample = proxy(&location, "sample");
    assert_eq!(sample.call::<i64>("add", (1, 2, 3)).unwrap(), 6);
    let info: String = proxy(&location, "Pyro.Daemon").call("info", ()).unwrap();
    assert!(info.contains(&location), "{info}");
    drop(sample);
    let output = daemon.interrupt(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{output}");
    assert!(!socket.exists(), "the socket file outlived the daemon");
}

#[cfg(unix)]
#[test]
fn sigterm_lets_a_call_in_progress_finish_then_exits_zero() {
    let sandbox = Sandbox::new();
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let slow = proxy(&location, "faulty");
    let started = Instant::now();
    let call = thread::spawn(move || slow.call::<f64>("sleep", (1.5,)));
    // Long enough for the call to reach the driver.
    thread::sleep(Duration::from_millis(400));
    let output = daemon.terminate(Duration::from_secs(30));
    assert_eq!(output.code, Some(0), "{output}");
    let result = call.join().unwrap();
    assert_eq!(result.unwrap(), 1.5, "the call in progress was answered");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[test]
fn a_daemon_behind_nat_announces_the_nat_address() {
    let sandbox = Sandbox::new();
    let extra = "    nathost: localhost\n";
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", extra));
    assert!(location.starts_with("localhost:"), "{location}");
    let info: String = proxy(&location, "Pyro.Daemon").call("info", ()).unwrap();
    assert!(info.contains(&location), "{info}");
}

#[test]
fn properties_exceptions_and_the_daemon_object_work_from_rust() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let sample = proxy(&location, "sample");
    assert_eq!(sample.call::<i64>("add", (1, 2, 3)).unwrap(), 6);
    assert_eq!(sample.get::<Value>("attribute").unwrap(), Value::Null);
    sample.set("attribute", vec![1, 2]).unwrap();
    assert_eq!(sample.get::<Vec<i64>>("attribute").unwrap(), [1, 2]);
    assert_eq!(
        remote_kind(sample.call::<f64>("divide", (1, 0)).unwrap_err()),
        "ZeroDivisionError"
    );
    assert_eq!(
        remote_kind(sample.call::<()>("nonexistent", ()).unwrap_err()),
        "AttributeError"
    );
    assert_eq!(
        remote_kind(sample.call::<()>("_private", ()).unwrap_err()),
        "AttributeError"
    );
    // The names of the host's own calls to a library (they hold a NUL)
    // are no client's to use.
    for internal in ["\0lend\0add", "\0take-lent\0"] {
        assert_eq!(
            remote_kind(sample.call::<Value>(internal, (1, 2)).unwrap_err()),
            "AttributeError",
            "{internal:?}"
        );
    }

    let daemon = proxy(&location, "Pyro.Daemon");
    // PyroLab's daemons answer True.
    assert!(daemon.call::<bool>("ping", ()).unwrap());
    let mut registered: Vec<String> = daemon.call("registered", ()).unwrap();
    registered.sort();
    assert!(
        registered.contains(&"library".to_owned())
            && registered.contains(&"Pyro.Daemon".to_owned())
    );
    let metadata: Value = daemon.call("get_metadata", ("faulty",)).unwrap();
    let oneway = metadata.get("oneway").and_then(Value::as_list).unwrap();
    assert!(oneway.contains(&Value::from("slow_fire")), "{metadata}");
    let err = daemon
        .call::<Value>("get_metadata", ("missing",))
        .unwrap_err();
    assert_eq!(remote_kind(err), "DaemonError");

    let err = Proxy::connect(&format!("PYRO:missing@{location}")).unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused(reason) if reason == "unknown object"),
        "{err}"
    );
}

/// A large byte string a driver returns is lent to the host and sent from
/// the driver's buffer: it arrives whole, in every serializer, beside
/// results that are not lent (small, or inside another value).
#[test]
fn large_byte_strings_come_back_whole_in_every_serializer() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for name in ["native", "msgpack", "serpent", "json", "marshal"] {
        let mut sample = proxy(&location, "sample");
        sample.set_serializer(serializer::by_name(name).expect("spoken"));
        for len in [0, 100, 65_535, 65_536, data.len()] {
            let sent = Bytes::from(data[..len].to_vec());
            let back: Bytes = sample
                .call("echo_bytes", (&sent,))
                .unwrap_or_else(|err| panic!("{name}, {len} bytes: {err}"));
            assert!(back[..] == data[..len], "{name}, {len} bytes");
        }
        assert_eq!(sample.call::<i64>("add", (1, 2)).unwrap(), 3, "{name}");
    }
}

/// A flood of oneway calls with large arguments on one connection is read
/// no faster than the calls run, so the daemon's memory stays bounded (it
/// grew by over a gigabyte, 3,000 frames of 341 KB, when every frame read
/// waited in memory for its call).
#[test]
fn a_oneway_flood_is_read_only_as_fast_as_its_calls_run() {
    let sandbox = Sandbox::new();
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let faulty = proxy(&location, "faulty");
    assert_eq!(faulty.call::<f64>("sleep", (0.0,)).unwrap(), 0.0);
    let before = resident_kb(daemon.pid(), "VmRSS:");
    // Each call is refused when it runs (slow_fire takes one argument):
    // what matters is what the daemon holds until then.
    let args = CallArgs::positional(vec![0.0.into(), Value::Bytes(vec![7; 341_000])]);
    for _ in 0..3_000 {
        faulty.call_oneway("slow_fire", args.clone()).unwrap();
    }
    // A call on the same connection comes after all of them.
    assert_eq!(faulty.call::<f64>("sleep", (0.0,)).unwrap(), 0.0);
    let grown = resident_kb(daemon.pid(), "VmRSS:").saturating_sub(before);
    assert!(grown < 100_000, "the daemon grew by {grown} KB");
}

/// A compressed frame that inflates to just under the message size limit
/// costs the daemon about what it inflates to at its peak, not three to
/// four times that (a 0.03 MB frame could make a daemon under a 32 MB limit
/// grow by over 100 MB; under the default 1 GiB limit, by gigabytes; the
/// test uses an 8 MB limit).
#[test]
fn a_compressed_frame_costs_at_most_about_what_it_inflates_to() {
    use pyrolab_host::wire::message::{Message, kind};
    use pyrolab_plugin_api::value;
    let sandbox = Sandbox::new();
    let limit = 8 << 20;
    let extra = format!("    max_message_size: {limit}\n");
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", &extra));
    let sample = proxy(&location, "sample");
    assert_eq!(sample.call::<i64>("add", (1, 2)).unwrap(), 3);
    let before = resident_kb(daemon.pid(), "VmHWM:");
    let mut bomb = TcpStream::connect(&location).unwrap();
    bomb.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let hello = Value::Map(vec![
        ("handshake".into(), "hello".into()),
        ("object".into(), "sample".into()),
    ]);
    let native = 16;
    let connect = Message::new(kind::CONNECT, native, 0, 0, value::encode(&hello));
    bomb.write_all(&connect.encode(false)).unwrap();
    let mut header = [0u8; 40];
    bomb.read_exact(&mut header).unwrap();
    let welcome_len = u32::from_be_bytes(header[12..16].try_into().unwrap())
        + u32::from_be_bytes(header[16..20].try_into().unwrap());
    bomb.read_exact(&mut vec![0u8; welcome_len as usize])
        .unwrap();
    let frame = Message::new(kind::INVOKE, native, 0, 1, vec![0; limit - 4096]).encode(true);
    assert!(
        frame.len() < limit / 100,
        "compressed to {} bytes",
        frame.len()
    );
    bomb.write_all(&frame).unwrap();
    // The daemon inflates it, then answers (the call is garbage) or closes.
    let mut answer = vec![0u8; 1 << 16];
    let _ = bomb.read(&mut answer);
    let peak = resident_kb(daemon.pid(), "VmHWM:").saturating_sub(before);
    assert!(
        peak < (limit as u64 / 1024) * 3 / 2,
        "the daemon's peak grew by {peak} KB for a payload of {} KB",
        limit / 1024
    );
    assert_eq!(sample.call::<i64>("add", (2, 2)).unwrap(), 4);
}

/// A field of a process's `/proc/PID/status`, in KB (`VmRSS:`, resident
/// now; `VmHWM:`, the most it was).
fn resident_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A oneway call does not hold up the calls after it, on a thread daemon
/// and (as Pyro5's `ONEWAY_THREADED` runs them on threads of their own)
/// on a multiplex daemon too, where they used to wait in its one queue.
#[test]
fn oneway_calls_do_not_hold_up_the_connection() {
    for servertype in ["thread", "multiplex"] {
        let sandbox = Sandbox::new();
        let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, servertype, ""));
        let faulty = proxy(&location, "faulty");
        let start = Instant::now();
        faulty
            .call_oneway("slow_fire", CallArgs::positional(vec![2.0.into()]))
            .unwrap();
        // A `&self` method: it may run beside the oneway call (a `&mut
        // self` one would rightly wait for the driver's lock).
        let _: (String, u32) = faulty.call("settings", ()).unwrap();
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{servertype}: took {:?}",
            start.elapsed()
        );
    }
}

/// Two one-second calls from two connections: overlapping on a thread
/// daemon, one after the other on a multiplex daemon.
#[test]
fn thread_daemons_overlap_calls_and_multiplex_daemons_serialize_them() {
    for (servertype, overlap) in [("thread", true), ("multiplex", false)] {
        let sandbox = Sandbox::new();
        let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, servertype, ""));
        let proxies = [proxy(&location, "faulty"), proxy(&location, "faulty")];
        let start = Instant::now();
        thread::scope(|scope| {
            for p in &proxies {
                scope.spawn(move || p.call::<f64>("sleep", (1.0,)).unwrap());
            }
        });
        let elapsed = start.elapsed();
        if overlap {
            assert!(
                elapsed < Duration::from_millis(1800),
                "{servertype}: {elapsed:?}"
            );
        } else {
            assert!(
                elapsed >= Duration::from_millis(1950),
                "{servertype}: {elapsed:?}"
            );
        }
    }
}

#[test]
fn instance_modes_single_session_and_percall() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let counts = |object: &str| -> Vec<u64> {
        let a = proxy(&location, object);
        let b = proxy(&location, object);
        vec![
            a.call("count", ()).unwrap(),
            a.call("count", ()).unwrap(),
            b.call("count", ()).unwrap(),
        ]
    };
    assert_eq!(counts("counter_single"), [1, 2, 3], "one instance for all");
    assert_eq!(
        counts("counter_session"),
        [1, 2, 1],
        "one instance per connection"
    );
    assert_eq!(
        counts("counter_percall"),
        [1, 1, 1],
        "a new instance per call"
    );
}

#[test]
fn connections_over_the_limit_are_refused_with_a_reason() {
    let sandbox = Sandbox::new();
    let config = lab_config(&sandbox, "thread", "    max_connections: 1\n");
    let (_daemon, location) = start_lab_daemon(&sandbox, &config);
    let first = proxy(&location, "sample");
    let err = Proxy::connect(&format!("PYRO:sample@{location}")).unwrap_err();
    assert!(
        matches!(&err, ClientError::Refused(reason) if reason.contains("too many connections")),
        "{err}"
    );
    assert_eq!(first.call::<i64>("add", (2, 2)).unwrap(), 4);
}

/// Slowloris: sockets that send a byte of a header and then nothing held
/// every place of the daemon, so good clients were refused for as long as
/// they stayed. Now a connection takes a place only with its CONNECT, and
/// one that has not sent it within `handshake_timeout` is closed.
#[test]
fn slowloris_sockets_do_not_lock_good_clients_out() {
    let sandbox = Sandbox::new();
    let extra = "    max_connections: 4\n    handshake_timeout: 1\n";
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", extra));
    let slow: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut stream = TcpStream::connect(&location).unwrap();
            stream.write_all(b"P").unwrap();
            stream
        })
        .collect();
    thread::sleep(Duration::from_millis(200));
    let good = proxy(&location, "sample");
    assert_eq!(good.call::<i64>("add", (2, 2)).unwrap(), 4);
    for mut stream in slow {
        assert_closed_by_daemon(&mut stream, Duration::from_secs(10));
    }
    assert_eq!(good.call::<i64>("add", (3, 3)).unwrap(), 6);
    let output = daemon.stop();
    assert!(
        output.stderr.contains("no handshake within 1 s"),
        "{output}"
    );
}

/// Sockets that never send a handshake, with no handshake timeout to close
/// them, are bounded too: beyond `max_connections` of them (at least 64)
/// the one waiting longest makes way, so a client arriving after a crowd
/// of them is still served.
#[test]
fn a_crowd_that_never_handshakes_makes_way_for_a_good_client() {
    let sandbox = Sandbox::new();
    let extra = "    max_connections: 4\n    handshake_timeout: 0\n";
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", extra));
    let mut silent: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(&location).unwrap())
        .collect();
    let good = proxy(&location, "sample");
    assert_eq!(good.call::<i64>("add", (2, 2)).unwrap(), 4);
    // The first ones made way for the later ones.
    assert_closed_by_daemon(&mut silent[0], Duration::from_secs(10));
    let output = daemon.stop();
    assert!(
        output.stderr.contains("made way for a new connection"),
        "{output}"
    );
}

/// With `idle_timeout` set, a connection silent between calls is closed,
/// while one whose call runs longer than that is not.
#[test]
fn a_connection_silent_for_its_idle_timeout_is_closed() {
    let sandbox = Sandbox::new();
    let extra = "    idle_timeout: 1\n";
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", extra));
    let mut idle = handshaken_socket(&location);
    let busy = proxy(&location, "sample");
    let answer: String = busy.call("delayed_echo", ("still here", 2.5)).unwrap();
    assert!(answer.ends_with("still here"), "{answer}");
    assert_closed_by_daemon(&mut idle, Duration::from_secs(10));
    let output = daemon.stop();
    assert!(
        output.stderr.contains("silent for 1 s between calls"),
        "{output}"
    );
}

/// With `commtimeout` (Pyro5's COMMTIMEOUT), a connection that stalls in
/// the middle of a message is closed too, where `idle_timeout` waits for
/// the message's end; a call running longer than that does not count.
#[test]
fn a_connection_stalled_mid_message_past_its_commtimeout_is_closed() {
    use pyrolab_host::wire::message::{Message, kind};

    let sandbox = Sandbox::new();
    let extra = "    commtimeout: 1
";
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", extra));
    let mut stalled = handshaken_socket(&location);
    let header = Message::header(kind::INVOKE, 16, 0, 1, [0; 16], 100);
    stalled.write_all(&header[..20]).unwrap();
    let busy = proxy(&location, "sample");
    let answer: String = busy.call("delayed_echo", ("still here", 2.5)).unwrap();
    assert!(answer.ends_with("still here"), "{answer}");
    assert_closed_by_daemon(&mut stalled, Duration::from_secs(10));
    let output = daemon.stop();
    assert!(
        output.stderr.contains("silent for 1 s (commtimeout)"),
        "{output}"
    );
}

/// zlib bombs and large frames: nothing bounded the memory messages took
/// across connections (256 connections x 1 GiB was allowed). Now large
/// messages being read or answered share `max_message_memory`: here 16
/// MiB, so two 7 MiB messages trickling in fit and a third one's
/// connection is closed, while small calls go on and the memory comes back
/// when a connection goes.
#[test]
fn large_messages_share_a_daemon_wide_memory_budget() {
    use pyrolab_host::wire::message::{Message, kind};

    let sandbox = Sandbox::new();
    let extra = "    max_message_size: 8388608\n    max_message_memory: 16777216\n";
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", extra));
    let announced = 7 << 20;
    let header = Message::header(kind::INVOKE, 16, 0, 1, [0; 16], announced);
    let trickling: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = handshaken_socket(&location);
            // The daemon may close the third before it has all of this.
            let _ = stream
                .write_all(&header)
                .and_then(|()| stream.write_all(&vec![0u8; 1 << 20]));
            thread::sleep(Duration::from_millis(300));
            stream
        })
        .collect();
    let mut trickling = trickling.into_iter();
    let (mut first, mut second, mut third) = (
        trickling.next().unwrap(),
        trickling.next().unwrap(),
        trickling.next().unwrap(),
    );
    assert_closed_by_daemon(&mut third, Duration::from_secs(10));
    for stream in [&mut first, &mut second] {
        assert_still_open(stream);
    }
    let good = proxy(&location, "sample");
    assert_eq!(good.call::<i64>("add", (2, 2)).unwrap(), 4);
    let data = Bytes::from(vec![9u8; 4 << 20]);
    // 14 MiB are held: no room for 4 MiB more (its reply is not counted,
    // its request is) until one of the two goes.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(10);
    let back: Bytes = loop {
        match good.call("echo_bytes", (&data,)) {
            Ok(back) => break back,
            Err(err) => {
                assert!(Instant::now() < deadline, "no room came back: {err}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert_eq!(back.len(), data.len());
    assert_still_open(&mut second);
    let output = daemon.stop();
    assert!(
        output.stderr.contains("no memory left for its message"),
        "{output}"
    );
}

/// Whether the daemon has left `stream` open: nothing to read, no end.
fn assert_still_open(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buffer = [0u8; 16];
    match stream.read(&mut buffer) {
        Err(err)
            if matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) => {}
        other => panic!("the daemon closed or answered a connection it should keep: {other:?}"),
    }
}

/// `max_message_size` bounded requests only: a reply over it was sent,
/// where Pyro5 (whose one limit bounds both ways) closes the connection
/// instead. Now the daemon does so too, logging why, and serves on.
#[test]
fn a_reply_over_max_message_size_closes_its_connection_as_in_pyro5() {
    let sandbox = Sandbox::new();
    let extra = "    max_message_size: 4096\n";
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", extra));
    let catalog = proxy(&location, "library");
    for book in 0..200 {
        catalog
            .call::<()>(
                "add_book",
                (format!("A book with a long enough title, volume {book}"), 1),
            )
            .unwrap();
    }
    match catalog.call::<Value>("get_catalog", ()) {
        Err(ClientError::ConnectionClosed(_)) => {}
        other => panic!("a reply over the limit was not refused: {other:?}"),
    }
    let sample = proxy(&location, "sample");
    assert_eq!(sample.call::<i64>("add", (2, 2)).unwrap(), 4);
    let output = daemon.stop();
    assert!(output.stderr.contains("its reply is too large"), "{output}");
}

/// Dunder methods were refused as private at call time though advertised:
/// Pyro5 lets a client call a dunder name (`__len__`, `__getitem__`)
/// unless it is in its fixed private list (`__eq__`, `__init__`, ...), and
/// keeps every other `_name` private. Metadata follows the same rule.
#[test]
fn dunder_methods_follow_pyro5s_rule() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let faulty = proxy(&location, "counter_single");
    faulty.call::<u64>("count", ()).unwrap();
    assert_eq!(faulty.call::<u64>("__len__", ()).unwrap(), 1);
    let methods = faulty.exposed("methods").unwrap();
    assert!(methods.iter().any(|m| m == "__len__"), "{methods:?}");
    assert!(!methods.iter().any(|m| m == "__eq__"), "{methods:?}");
    for private in ["__eq__", "__init__", "_count", "__"] {
        let err = faulty.call::<Value>(private, (1,)).unwrap_err();
        let ClientError::Remote(remote) = &err else {
            panic!("{private}: {err}");
        };
        assert_eq!(remote.kind(), "AttributeError", "{private}: {err}");
        assert!(
            err.to_string().contains("private attribute"),
            "{private}: {err}"
        );
    }
}

/// Drivers could take no `**kwargs`: the SDK refused every keyword its
/// parameters do not name. A `#[kwargs]` parameter now takes them (as a
/// Python `**kwargs` does), while methods without one still refuse them
/// with Python's message, and the signature shows it.
#[test]
fn a_kwargs_parameter_takes_the_keywords_no_other_parameter_takes() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let sample = proxy(&location, "sample");
    let options = sample
        .call_with(
            "options",
            CallArgs::positional(Vec::new())
                .kwarg("a", 1)
                .kwarg("prefix", "x.")
                .kwarg("b", "two"),
        )
        .unwrap();
    let expected = Value::Map(vec![
        (Value::from("x.a"), Value::Int(1)),
        (Value::from("x.b"), Value::from("two")),
    ]);
    assert_eq!(options, expected);
    let positional = sample
        .call_with(
            "options",
            CallArgs::positional(vec!["y.".into()]).kwarg("c", true),
        )
        .unwrap();
    assert_eq!(
        positional,
        Value::Map(vec![(Value::from("y.c"), Value::Bool(true))])
    );
    let err = sample
        .call_with(
            "echo",
            CallArgs::positional(vec!["hi".into()]).kwarg("colour", "red"),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("echo() got an unexpected keyword argument 'colour'"),
        "{err}"
    );
}

/// A TCP connection to `location` past a CONNECT to `sample`.
fn handshaken_socket(location: &str) -> TcpStream {
    use pyrolab_host::wire::message::{Message, kind};
    use pyrolab_plugin_api::value;

    let mut stream = TcpStream::connect(location).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let hello = Value::Map(vec![
        ("handshake".into(), "hello".into()),
        ("object".into(), "sample".into()),
    ]);
    let connect = Message::new(kind::CONNECT, 16, 0, 0, value::encode(&hello));
    stream.write_all(&connect.encode(false)).unwrap();
    let mut reader =
        std::io::BufReader::new(pyrolab_host::net::Stream::Tcp(stream.try_clone().unwrap()));
    let welcome = Message::read_from(&mut reader, 1 << 20).unwrap();
    assert_eq!(welcome.kind, kind::CONNECTOK);
    stream
}

/// Waits (at most `limit`) for the daemon to close `stream`: its end, or a
/// reset; anything else it sends first fails the test.
fn assert_closed_by_daemon(stream: &mut TcpStream, limit: Duration) {
    stream.set_read_timeout(Some(limit)).unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 64];
    match stream.read(&mut buffer) {
        Ok(0) => {}
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Ok(n) => panic!("the daemon sent {n} bytes instead of closing the connection"),
        Err(err) => panic!(
            "the daemon did not close the connection within {:?}: {err}",
            started.elapsed()
        ),
    }
}

#[test]
fn garbage_on_one_connection_closes_only_that_connection() {
    let sandbox = Sandbox::new();
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let good = proxy(&location, "sample");
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: lab\r\n\r\n"[..],
        &[0u8; 64][..],
        // A valid header announcing a payload that never comes, then EOF.
        &[
            0x50, 0x59, 0x52, 0x4f, 0x01, 0xf6, 0x04, 0x01, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x4d, 0xc5,
        ][..],
    ] {
        let mut stream = TcpStream::connect(&location).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(garbage).unwrap();
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut rest = Vec::new();
        // The daemon closes the connection: reading ends instead of hanging.
        let _ = stream.read_to_end(&mut rest);
        assert_eq!(good.call::<i64>("add", (1, 1)).unwrap(), 2);
    }
    let output = daemon.stop();
    assert!(
        output
            .stderr
            .contains("closing connection: not a Pyro message"),
        "{output}"
    );
    assert!(output.stderr.contains("message too large"), "{output}");
}

#[test]
fn a_locked_service_refuses_other_connections_until_released() {
    let sandbox = Sandbox::new();
    let config = lab_config(&sandbox, "thread", "    classname: LockableDaemon\n");
    let (_daemon, location) = start_lab_daemon(&sandbox, &config);
    let alice = proxy(&location, "sample");
    let bob = proxy(&location, "sample");
    assert!(alice.call::<bool>("lock", ("alice",)).unwrap());
    let err = bob.call::<String>("echo", ("hi",)).unwrap_err();
    let ClientError::Remote(remote) = err else {
        panic!("remote error expected")
    };
    assert_eq!(remote.class, "builtins.ConnectionRefusedError");
    assert_eq!(remote.message, "Pyro object is locked (by 'alice')");
    assert!(alice.call::<bool>("islocked", ()).unwrap());
    assert_eq!(
        alice.call::<String>("echo", ("mine",)).unwrap(),
        "SERVER RECEIVED: mine"
    );

    // unlock() ends it.
    assert!(alice.call::<bool>("unlock", ()).unwrap());
    assert_eq!(
        bob.call::<String>("echo", ("hi",)).unwrap(),
        "SERVER RECEIVED: hi"
    );

    // The daemon's release(uri) ends it, whoever holds it.
    alice.call::<bool>("lock", ()).unwrap();
    assert!(bob.call::<String>("echo", ("hi",)).is_err());
    let daemon = proxy(&location, "Pyro.Daemon");
    let released: bool = daemon
        .call("release", (format!("PYRO:sample@{location}"),))
        .unwrap();
    assert!(released);
    assert!(bob.call::<String>("echo", ("hi",)).is_ok());

    // The holder's connection closing ends it.
    alice.call::<bool>("lock", ("alice",)).unwrap();
    drop(alice);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match bob.call::<String>("echo", ("after",)) {
            Ok(_) => break,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                thread::sleep(Duration::from_millis(20));
            }
            Err(err) => panic!("the lock outlived its connection: {err}"),
        }
    }
}

#[test]
fn the_call_command_prints_json_and_reports_remote_errors() {
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let sample = format!("PYRO:sample@{location}");
    let output =
        pyrolab_test_support::run_host(sandbox.host().args(["call", &sample, "add", "1", "2.5"]))
            .success();
    assert_eq!(output.stdout.trim(), "3.5");
    let output = pyrolab_test_support::run_host(
        sandbox
            .host()
            .args(["call", &sample, "subtract", "--kw", "a=10", "--kw", "b=4"]),
    )
    .success();
    assert_eq!(output.stdout.trim(), "6");
    let output = pyrolab_test_support::run_host(sandbox.host().args([
        "call",
        &sample,
        "echo",
        "hello world",
    ]))
    .success();
    assert_eq!(output.stdout.trim(), "\"SERVER RECEIVED: hello world\"");
    let output =
        pyrolab_test_support::run_host(sandbox.host().args(["call", &sample, "echo", "[1, two]"]))
            .failure(1);
    assert!(
        output
            .stderr
            .starts_with("error: builtins.TypeError: echo() argument 'message'"),
        "{output}"
    );
    let output =
        pyrolab_test_support::run_host(sandbox.host().args(["call", &sample, "divide", "1", "0"]))
            .failure(1);
    assert!(
        output
            .stderr
            .starts_with("error: builtins.ZeroDivisionError: division by zero"),
        "{output}"
    );
    let output = pyrolab_test_support::run_host(sandbox.host().args([
        "call",
        "PYRO:sample@127.0.0.1:1",
        "ping",
    ]))
    .failure(1);
    assert!(
        output.stderr.contains("cannot connect to 127.0.0.1:1"),
        "{output}"
    );
}

/// Random and mutated frames on many connections, while a well-behaved
/// client keeps calling: no connection hangs the daemon, the daemon does
/// not die, and the good client is never disturbed.
#[test]
fn mutated_frames_do_not_disturb_other_clients() {
    let sandbox = Sandbox::new();
    let (mut daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let good = proxy(&location, "sample");
    // A real handshake and call, as a Python client sends them (serpent).
    let hello: &[u8] = b"# serpent utf-8 python3.2\n{'handshake':'hello','object':'sample'}";
    let call: &[u8] = b"# serpent utf-8 python3.2\n('sample','add',(1,2),{})";
    let frame = |kind: u8, seq: u16, payload: &[u8]| {
        let mut bytes = vec![0x50, 0x59, 0x52, 0x4f, 0x01, 0xf6, kind, 1, 0, 0];
        bytes.extend_from_slice(&seq.to_be_bytes());
        bytes.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&[0; 4 + 16 + 2]);
        bytes.extend_from_slice(&[0x4d, 0xc5]);
        bytes.extend_from_slice(payload);
        bytes
    };
    let mut valid = frame(1, 0, hello);
    valid.extend_from_slice(&frame(4, 1, call));
    let mut state: u64 = 0x1234_5678_9abc_def1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..200 {
        let mut bytes = valid.clone();
        match next() % 3 {
            0 => {
                for _ in 0..1 + next() % 6 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] ^= 1 << (next() % 8);
                }
            }
            1 => bytes.truncate((next() as usize) % bytes.len()),
            _ => bytes = (0..(next() % 300)).map(|_| next() as u8).collect(),
        }
        let mut stream = TcpStream::connect(&location).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let _ = stream.write_all(&bytes);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut reply = Vec::new();
        // Either answered or closed, never left hanging.
        if let Err(err) = stream.read_to_end(&mut reply) {
            panic!("round {round}: the daemon left the connection hanging: {err}");
        }
        if round % 20 == 0 {
            assert_eq!(good.call::<i64>("add", (round, 1)).unwrap(), round + 1);
        }
    }
    assert_eq!(good.call::<i64>("add", (1, 1)).unwrap(), 2);
    daemon.wait_for_line("daemon lab listening on ", Duration::from_secs(1));
}

/// A pyrolab-host client from before the arguments-map form (0.1.x) sends
/// native calls as `[object, method, args, kwargs]`: the daemon still
/// reads them, and announces the newer form in its CONNECTOK.
#[test]
fn native_calls_in_the_older_four_part_form_are_still_served() {
    use pyrolab_host::wire::message::{Message, annotation, kind};
    use pyrolab_plugin_api::value;

    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let tcp = TcpStream::connect(&location).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = tcp.try_clone().unwrap();
    let mut reader = std::io::BufReader::new(pyrolab_host::net::Stream::Tcp(tcp));
    let native = 16;
    let hello = Value::Map(vec![
        ("handshake".into(), "hello".into()),
        ("object".into(), "sample".into()),
    ]);
    let connect = Message::new(kind::CONNECT, native, 0, 0, value::encode(&hello));
    stream.write_all(&connect.encode(false)).unwrap();
    let welcome = Message::read_from(&mut reader, 1 << 20).unwrap();
    assert_eq!(welcome.kind, kind::CONNECTOK);
    assert!(
        welcome
            .annotations
            .iter()
            .any(|(id, _)| *id == annotation::ARGS_MAP)
    );
    let call = Value::List(vec![
        "sample".into(),
        "add".into(),
        Value::List(vec![Value::Int(20), Value::Int(22)]),
        Value::Map(Vec::new()),
    ]);
    let invoke = Message::new(kind::INVOKE, native, 0, 1, value::encode(&call));
    stream.write_all(&invoke.encode(false)).unwrap();
    let reply = Message::read_from(&mut reader, 1 << 20).unwrap();
    assert_eq!(reply.kind, kind::RESULT);
    assert_eq!(value::decode(&reply.payload).unwrap(), Value::Int(42));
}

/// A `SerializedBlob` call (`FLAGS_KEEPSERIALIZED`) whose `BLBI`
/// annotation is missing or not marshalled `(info, object, method)` is
/// answered with a `ProtocolError`, and the connection serves on.
#[test]
fn a_blob_call_without_a_readable_blob_annotation_is_a_protocol_error() {
    use pyrolab_host::wire::message::{Message, flags, kind};
    use pyrolab_plugin_api::value;

    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let tcp = TcpStream::connect(&location).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut stream = tcp.try_clone().unwrap();
    let mut reader = std::io::BufReader::new(pyrolab_host::net::Stream::Tcp(tcp));
    let native = 16;
    let hello = Value::Map(vec![
        ("handshake".into(), "hello".into()),
        ("object".into(), "sample".into()),
    ]);
    let connect = Message::new(kind::CONNECT, native, 0, 0, value::encode(&hello));
    stream.write_all(&connect.encode(false)).unwrap();
    let welcome = Message::read_from(&mut reader, 1 << 20).unwrap();
    assert_eq!(welcome.kind, kind::CONNECTOK);
    let call = |seq: u16| {
        value::encode(&Value::List(vec![
            "sample".into(),
            "add".into(),
            CallArgs::positional(vec![Value::Int(seq.into()), Value::Int(1)]).into_value(),
        ]))
    };
    for (seq, blbi) in [(1u16, None), (2, Some(b"\xffnot marshal".to_vec()))] {
        let mut blob = Message::new(kind::INVOKE, native, flags::KEEPSERIALIZED, seq, call(seq));
        blob.annotations.extend(blbi.map(|data| (*b"BLBI", data)));
        stream.write_all(&blob.encode(false)).unwrap();
        let reply = Message::read_from(&mut reader, 1 << 20).unwrap();
        assert_eq!(reply.seq, seq);
        assert_ne!(reply.flags & flags::EXCEPTION, 0, "an exception reply");
        let exception = format!("{:?}", value::decode(&reply.payload).unwrap());
        assert!(
            exception.contains("ProtocolError") && exception.contains("BLBI"),
            "{exception}"
        );
    }
    let plain = Message::new(kind::INVOKE, native, 0, 3, call(3));
    stream.write_all(&plain.encode(false)).unwrap();
    let reply = Message::read_from(&mut reader, 1 << 20).unwrap();
    assert_eq!(value::decode(&reply.payload).unwrap(), Value::Int(4));
}

/// Threads in process `pid`, from /proc.
fn thread_count(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc");
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
        .expect("a Threads: line")
}

/// Threads in process `pid` once the count has held for half a second
/// (at most 10 s).
fn settled_thread_count(pid: u32) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = thread_count(pid);
    loop {
        thread::sleep(Duration::from_millis(500));
        let now = thread_count(pid);
        if now == last || Instant::now() > deadline {
            return now;
        }
        last = now;
    }
}

/// Connections wait in the daemon's event loop, not on threads of their
/// own: 400 connected clients, each past its handshake and one call, leave
/// the daemon with a few threads more at most, and every one of them is still
/// served afterwards. More than `max_connections` are refused with the
/// reason.
#[test]
fn idle_connections_hold_no_threads() {
    let sandbox = Sandbox::new();
    for servertype in ["thread", "multiplex"] {
        let config = lab_config(&sandbox, servertype, "    max_connections: 400\n");
        let (daemon, location) = start_lab_daemon(&sandbox, &config);
        // The daemon's standing threads (its first workers, the sweeper,
        // the registrar) start around its first connection; counted once
        // they are up, so that only what the 400 clients add is measured.
        let first = proxy(&location, "sample");
        assert_eq!(first.call::<i64>("add", (0, 1)).unwrap(), 1);
        let before = settled_thread_count(daemon.pid());
        drop(first);
        let proxies: Vec<Proxy> = (0..400)
            .map(|i| {
                let proxy = proxy(&location, "sample");
                assert_eq!(proxy.call::<i64>("add", (i, 1)).unwrap(), i + 1);
                proxy
            })
            .collect();
        let with_clients = thread_count(daemon.pid());
        // A multiplex daemon has its one worker whatever comes. A thread
        // pool may grow while the clients call (on a loaded machine a call
        // can find every worker still on its way back to the poller), but
        // by calls at once, never by connections: far fewer than 400.
        let allowed = match servertype {
            "multiplex" => before + 2,
            _ => before + 40,
        };
        assert!(
            with_clients <= allowed,
            "{servertype}: {before} threads before, {with_clients} with 400 idle clients"
        );
        let over = Proxy::connect(&format!("PYRO:sample@{location}"))
            .and_then(|proxy| proxy.call::<i64>("add", (1, 1)));
        match over {
            Err(ClientError::Refused(reason)) => {
                assert!(reason.contains("at most 400"), "{reason}")
            }
            other => panic!("{servertype}: the 401st connection was not refused: {other:?}"),
        }
        for (i, proxy) in proxies.iter().enumerate() {
            let i = i as i64;
            assert_eq!(proxy.call::<i64>("add", (i, 2)).unwrap(), i + 2);
        }
        drop(daemon);
    }
}

/// A worker that has answered a call may wait on that connection alone
/// for the next one (a client calling back to back is then served as by a
/// thread of its own), but never so many do that another client is left
/// without one: on a pool of 4, four clients calling without pause for
/// 3 s leave a fifth answered at once.
#[test]
fn back_to_back_callers_leave_workers_for_everyone_else() {
    let sandbox = Sandbox::new();
    let config = lab_config(&sandbox, "thread", "    threadpool_size: 4\n");
    let (daemon, location) = start_lab_daemon(&sandbox, &config);
    let uri = format!("PYRO:sample@{location}");
    let busy_for = Duration::from_secs(3);
    let started = Instant::now();
    let slowest = thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let proxy = Proxy::connect(&uri).unwrap();
                while started.elapsed() < busy_for {
                    let _: String = proxy.call("echo", ("busy",)).unwrap();
                }
            });
        }
        thread::sleep(Duration::from_millis(200));
        let connecting = Instant::now();
        let proxy = Proxy::connect(&uri).unwrap();
        let mut slowest = connecting.elapsed();
        let mut calls = 0;
        while calls < 10 || started.elapsed() < busy_for - Duration::from_millis(500) {
            let call = Instant::now();
            let _: String = proxy.call("echo", ("now and then",)).unwrap();
            slowest = slowest.max(call.elapsed());
            calls += 1;
            thread::sleep(Duration::from_millis(20));
        }
        slowest
    });
    // Were every worker waiting on a busy client, this one would wait
    // until they stopped: seconds.
    assert!(
        slowest < Duration::from_secs(1),
        "a call waited {slowest:?} while four other clients were busy"
    );
    drop(daemon);
}

/// A client making large calls back to back is served as one making small
/// ones: by one worker waiting on its connection alone, with no poller
/// wake-up per call (on loopback a large message wakes an idle worker per
/// packet, each of them for nothing). Over 40 calls of 1 MB, the daemon's
/// threads other than the one serving them hardly wait at all.
#[test]
fn back_to_back_bulk_calls_are_served_by_one_worker() {
    const CALLS: u64 = 40;
    let sandbox = Sandbox::new();
    let (daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let sample = proxy(&location, "sample");
    let data = Bytes::from(vec![7u8; 1 << 20]);
    let echo = || {
        let back: Bytes = sample.call("echo_bytes", (&data,)).unwrap();
        assert_eq!(back.len(), data.len());
    };
    for _ in 0..3 {
        echo();
    }
    let before = waits_per_thread(daemon.pid());
    for _ in 0..CALLS {
        echo();
    }
    let after = waits_per_thread(daemon.pid());
    let mut waits: Vec<u64> = after
        .iter()
        .map(|(thread, waits)| waits - before.get(thread).copied().unwrap_or(0))
        .collect();
    waits.sort_unstable_by(|a, b| b.cmp(a));
    let others: u64 = waits[1..].iter().sum();
    assert!(
        others <= CALLS / 4,
        "waits per daemon thread over {CALLS} back-to-back 1 MB calls: {waits:?}"
    );
    drop(daemon);
}

/// How many times each thread of process `pid` has waited (its voluntary
/// context switches), from /proc.
fn waits_per_thread(pid: u32) -> std::collections::HashMap<String, u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("read /proc");
    tasks
        .filter_map(|task| {
            let task = task.ok()?;
            let status = std::fs::read_to_string(task.path().join("status")).ok()?;
            let waits = status
                .lines()
                .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))?
                .trim()
                .parse()
                .ok()?;
            Some((task.file_name().to_string_lossy().into_owned(), waits))
        })
        .collect()
}

/// A client that stops reading does not hold up anyone else, even on a
/// multiplex daemon, whose one worker would otherwise wait on its socket:
/// the unsent rest of its reply waits in the daemon instead.
#[test]
fn a_client_that_stops_reading_holds_up_no_one() {
    use pyrolab_host::wire::message::{Message, kind};
    use pyrolab_plugin_api::value;

    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "multiplex", ""));
    let mut stalled = TcpStream::connect(&location).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let native = 16;
    let hello = Value::Map(vec![
        ("handshake".into(), "hello".into()),
        ("object".into(), "sample".into()),
    ]);
    let connect = Message::new(kind::CONNECT, native, 0, 0, value::encode(&hello));
    stalled.write_all(&connect.encode(false)).unwrap();
    let mut header = [0u8; 40];
    stalled.read_exact(&mut header).unwrap();
    let welcome_len = u32::from_be_bytes(header[12..16].try_into().unwrap())
        + u32::from_be_bytes(header[16..20].try_into().unwrap());
    let mut welcome = vec![0u8; welcome_len as usize];
    stalled.read_exact(&mut welcome).unwrap();
    // 16 MB back: far more than the sockets' buffers hold.
    let call = Value::List(vec![
        "sample".into(),
        "echo_bytes".into(),
        Value::List(vec![Value::Bytes(vec![7; 16 << 20])]),
        Value::Map(Vec::new()),
    ]);
    let invoke = Message::new(kind::INVOKE, native, 0, 1, value::encode(&call));
    stalled.write_all(&invoke.encode(false)).unwrap();
    // It reads nothing now. Others are served all the same.
    let other = proxy(&location, "sample");
    let start = Instant::now();
    for i in 0..20 {
        assert_eq!(other.call::<i64>("add", (i, 1)).unwrap(), i + 1);
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "calls took {:?} while a client was not reading",
        start.elapsed()
    );
    // And the stalled client gets its whole reply once it reads.
    let mut reply = Vec::new();
    let mut chunk = vec![0u8; 1 << 20];
    while reply.len() < 40 + (16 << 20) {
        let read = stalled.read(&mut chunk).unwrap();
        assert!(read > 0, "the reply ended early at {} bytes", reply.len());
        reply.extend_from_slice(&chunk[..read]);
    }
    assert_eq!(reply[6], kind::RESULT);
}
