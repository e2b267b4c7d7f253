//! Stock Python Pyro5 clients (pinned, from PyPI) against a real
//! `pyrolab-host run daemon`, with each of Pyro5's serializers.

use std::process::Command;
use std::time::Duration;

use pyrolab_test_support::python_peers::PythonPeer;
use pyrolab_test_support::{
    Sandbox, lab_config, python_with_pyro5, repo_root, run, start_lab_daemon,
};

/// Pyro5's serializers. With marshal, Pyro5's client cannot use
/// properties or batches (it crashes before sending them); the `sample`
/// flow skips those steps for it.
const SERIALIZERS: &[&str] = &["serpent", "marshal", "json", "msgpack"];

fn python_flow(flow: &str, uri: &str, serializer: &str) -> pyrolab_test_support::Output {
    python_flow_with(flow, uri, serializer, &[])
}

fn python_flow_with(
    flow: &str,
    uri: &str,
    serializer: &str,
    extra: &[&str],
) -> pyrolab_test_support::Output {
    let script = repo_root().join("tests/python/client_flows.py");
    let mut command = Command::new(python_with_pyro5());
    command
        .arg(script)
        .args([flow, uri, serializer])
        .args(extra);
    run(&mut command, Duration::from_secs(60))
}

/// Tuples, sets, frozensets, integers beyond 64 bits and complex numbers
/// through a driver method come back unchanged in type and value where the
/// serializer carries them, and otherwise exactly as a stock Pyro5 daemon
/// gives them back (the flow asks both).
#[test]
fn python_s_types_survive_a_driver_method_as_they_survive_a_stock_pyro5_daemon() {
    let sandbox = Sandbox::new();
    let config = lab_config(&sandbox, "thread", "");
    let (daemon, location) = start_lab_daemon(&sandbox, &config);
    let stock = PythonPeer::start("pyro5-daemon", &[], sandbox.path());
    for serializer in SERIALIZERS {
        let output = python_flow_with(
            "types",
            &format!("PYRO:sample@{location}"),
            serializer,
            &[stock.ready.trim()],
        );
        assert_eq!(output.code, Some(0), "{serializer}\n{output}");
    }
    drop(daemon);
}

#[test]
fn the_library_catalog_client_works_unchanged_with_every_serializer() {
    let sandbox = Sandbox::new();
    let config = lab_config(&sandbox, "thread", "");
    let (daemon, location) = start_lab_daemon(&sandbox, &config);
    for serializer in SERIALIZERS {
        let output = python_flow("library", &format!("PYRO:library@{location}"), serializer);
        assert_eq!(output.code, Some(0), "{serializer}\n{output}");
        assert!(
            output
                .stdout
                .contains("ValueError Cannot checkout: Not enough copies of C Programming."),
            "{output}"
        );
        assert!(
            output
                .stdout
                .contains("LookupError Cannot checkin: Book 'Dune' not found."),
            "{output}"
        );
    }
    drop(daemon);
}

/// A driver method that takes a `CallContext` sees the Python client's
/// address, correlation id and annotations, and the annotation it sets
/// reaches the client's `current_context.response_annotations`, with
/// every serializer, on both kinds of daemon.
#[test]
fn drivers_see_the_call_context_and_annotate_replies_with_every_serializer() {
    let sandbox = Sandbox::new();
    for servertype in ["thread", "multiplex"] {
        let config = lab_config(&sandbox, servertype, "");
        let (daemon, location) = start_lab_daemon(&sandbox, &config);
        for serializer in SERIALIZERS {
            let output = python_flow("context", &format!("PYRO:sample@{location}"), serializer);
            assert_eq!(output.code, Some(0), "{servertype}, {serializer}\n{output}");
        }
        drop(daemon);
    }
}

#[test]
fn properties_batches_exceptions_and_the_daemon_object_work_with_every_serializer() {
    let sandbox = Sandbox::new();
    let config = lab_config(&sandbox, "thread", "");
    let (daemon, location) = start_lab_daemon(&sandbox, &config);
    for serializer in SERIALIZERS {
        for (flow, object) in [
            ("sample", "sample"),
            ("daemon", "Pyro.Daemon"),
            ("oneway", "faulty"),
        ] {
            let output = python_flow(flow, &format!("PYRO:{object}@{location}"), serializer);
            assert_eq!(output.code, Some(0), "{flow} with {serializer}\n{output}");
        }
    }
    let output = python_flow("daemon", &format!("PYRO:Pyro.Daemon@{location}"), "serpent");
    let registered = output
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("registered "))
        .unwrap_or_else(|| panic!("no registered line\n{output}"));
    for name in ["Pyro.Daemon", "library", "sample", "faulty"] {
        assert!(
            registered.contains(&format!("\"{name}\"")),
            "{name} in {registered}"
        );
    }
    drop(daemon);
}

#[test]
fn python_types_round_trip_unchanged_through_a_driver_with_marshal() {
    let sandbox = Sandbox::new();
    let config = lab_config(&sandbox, "thread", "");
    let (daemon, location) = start_lab_daemon(&sandbox, &config);
    let output = python_flow(
        "types_marshal",
        &format!("PYRO:sample@{location}"),
        "marshal",
    );
    assert_eq!(output.code, Some(0), "{output}");
    assert!(output.stdout.contains("types ok"), "{output}");
    drop(daemon);
}

#[cfg(unix)]
#[test]
fn python_clients_reach_a_daemon_on_a_unix_socket() {
    let sandbox = Sandbox::new();
    let socket = sandbox.path().join("lab.sock");
    let extra = format!("    unixsocket: {}\n", socket.display());
    let config = lab_config(&sandbox, "thread", &extra);
    let (daemon, location) = start_lab_daemon(&sandbox, &config);
    for serializer in SERIALIZERS {
        let output = python_flow("sample", &format!("PYRO:sample@{location}"), serializer);
        assert_eq!(output.code, Some(0), "{serializer}\n{output}");
    }
    drop(daemon);
}

#[test]
fn locks_work_across_two_python_proxies_with_every_serializer() {
    let sandbox = Sandbox::new();
    let config = lab_config(&sandbox, "thread", "    classname: LockableDaemon\n");
    let (daemon, location) = start_lab_daemon(&sandbox, &config);
    for serializer in SERIALIZERS {
        let output = python_flow("lock", &format!("PYRO:sample@{location}"), serializer);
        assert_eq!(output.code, Some(0), "{serializer}\n{output}");
    }
    drop(daemon);
}

#[cfg(unix)]
#[test]
fn sigint_stops_the_daemon_gracefully_with_exit_code_zero() {
    let sandbox = Sandbox::new();
    let config = lab_config(&sandbox, "thread", "");
    let (daemon, _location) = start_lab_daemon(&sandbox, &config);
    let output = daemon.interrupt(Duration::from_secs(30));
    assert_eq!(output.code, Some(0), "{output}");
    assert!(output.stderr.contains("stopped"), "{output}");
}
