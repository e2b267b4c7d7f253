//! `pyrolab-host run nameserver` against the stock Python Pyro5 client
//! (pinned, from PyPI): the registry methods with each serializer, PYRONAME
//! resolution to a driver on our daemon, persistence across kill -9,
//! autoclean, broadcast discovery and bad input.

use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_test_support::{
    Background, Output, Sandbox, lab_config, python_with_pyro5, repo_root, run, start_lab_daemon,
};

const SERIALIZERS: &[&str] = &["serpent", "json", "msgpack"];

/// A configuration with one name server `ns` on loopback, any port.
fn ns_config(sandbox: &Sandbox, settings: &str) -> PathBuf {
    let path = sandbox.path().join("ns.yaml");
    let text = format!(
        "version: '1.0'\nnameservers:\n  ns:\n    host: 127.0.0.1\n    ns_port: 0\n{settings}"
    );
    fs::write(&path, text).expect("write ns.yaml");
    path
}

/// Starts `pyrolab-host run nameserver ns` and returns it with its port.
fn start_nameserver(sandbox: &Sandbox, config: &Path) -> (Background, u16) {
    let mut process = Background::start(
        sandbox
            .host()
            .args(["run", "nameserver", "ns", "--config"])
            .arg(config),
    );
    let line = process.wait_for_line("name server ns listening on ", Duration::from_secs(30));
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (process, port)
}

fn python(flow: &str, port: u16, serializer: &str, args: &[&str]) -> Output {
    let script = repo_root().join("tests/python/ns_flows.py");
    let mut command = Command::new(python_with_pyro5());
    command
        .arg(script)
        .args([flow, &port.to_string(), serializer])
        .args(args);
    let output = run(&mut command, Duration::from_secs(60));
    assert_eq!(output.code, Some(0), "{flow} with {serializer}\n{output}");
    output
}

#[test]
fn python_clients_use_every_name_server_method_with_every_serializer() {
    let sandbox = Sandbox::new();
    let (_ns, port) = start_nameserver(&sandbox, &ns_config(&sandbox, ""));
    for serializer in SERIALIZERS {
        let output = python("registry", port, serializer, &[]);
        assert!(output.stdout.contains("registry ok"), "{output}");
    }
}

#[test]
fn a_pyroname_proxy_reaches_a_driver_on_our_daemon() {
    let sandbox = Sandbox::new();
    let (_ns, port) = start_nameserver(&sandbox, &ns_config(&sandbox, ""));
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    python(
        "register",
        port,
        "serpent",
        &["library", &format!("PYRO:library@{location}")],
    );
    for serializer in SERIALIZERS {
        let output = python("pyroname", port, serializer, &["library"]);
        assert!(output.stdout.contains("catalog"), "{output}");
    }
}

#[test]
fn garbage_on_the_name_server_port_closes_only_that_connection() {
    let sandbox = Sandbox::new();
    let (ns, port) = start_nameserver(&sandbox, &ns_config(&sandbox, ""));
    let output = python("garbage", port, "serpent", &[]);
    assert!(output.stdout.contains("still serving"), "{output}");
    let output = ns.interrupt(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{output}");
    assert!(
        output.stderr.contains("closing connection"),
        "the reason is logged\n{output}"
    );
}

fn registrations_survive_kill_9(storage: &str) {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join(format!("names.{storage}"));
    let config = ns_config(
        &sandbox,
        &format!(
            "    storage: {storage}\n    storage_file: {}\n",
            file.display()
        ),
    );
    let (ns, port) = start_nameserver(&sandbox, &config);
    python(
        "register",
        port,
        "serpent",
        &["lab.scope", "PYRO:scope@127.0.0.1:5555"],
    );
    drop(ns.stop()); // SIGKILL: no chance to flush anything
    let (_ns, port) = start_nameserver(&sandbox, &config);
    let output = python("list", port, "serpent", &[]);
    assert!(
        output
            .stdout
            .contains("entry lab.scope PYRO:scope@127.0.0.1:5555"),
        "{output}"
    );
    assert!(
        output.stdout.contains(&format!(
            "entry Pyro.NameServer PYRO:Pyro.NameServer@127.0.0.1:{port}"
        )),
        "the name server registers its new address\n{output}"
    );
}

#[test]
fn sql_storage_keeps_registrations_across_kill_9() {
    registrations_survive_kill_9("sql");
}

#[test]
fn dbm_storage_keeps_registrations_across_kill_9() {
    registrations_survive_kill_9("dbm");
}

#[test]
fn autoclean_drops_a_dead_daemons_entries_and_keeps_a_live_ones() {
    let sandbox = Sandbox::new();
    let (_ns, port) = start_nameserver(&sandbox, &ns_config(&sandbox, "    ns_autoclean: 3\n"));
    let (_live, live_location) = start_lab_daemon(&sandbox, &lab_config(&sandbox, "thread", ""));
    let other = Sandbox::new();
    let (dead, dead_location) = start_lab_daemon(&other, &lab_config(&other, "thread", ""));
    python(
        "register",
        port,
        "serpent",
        &["live.sample", &format!("PYRO:sample@{live_location}")],
    );
    python(
        "register",
        port,
        "serpent",
        &["dead.sample", &format!("PYRO:sample@{dead_location}")],
    );
    drop(dead.stop());
    let killed = Instant::now();
    // Two missed checks 3 s apart: gone within about two periods (plus
    // one for where in its period the kill fell).
    let deadline = killed + Duration::from_secs(15);
    loop {
        let output = python("list", port, "serpent", &[]);
        if !output.stdout.contains("dead.sample") {
            assert!(output.stdout.contains("live.sample"), "{output}");
            assert!(
                killed.elapsed() >= Duration::from_secs(3),
                "removed after a single miss"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "dead.sample still listed\n{output}"
        );
        thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn a_unicast_get_nsuri_gets_the_name_server_uri() {
    let sandbox = Sandbox::new();
    let config = ns_config(&sandbox, "    broadcast: true\n    ns_bcport: 0\n");
    let (mut ns, port) = start_nameserver(&sandbox, &config);
    let line = ns.wait_for_line("broadcast responder on ", Duration::from_secs(10));
    let responder = line.rsplit(' ').next().unwrap().to_owned();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut reply = [0u8; 200];
    // UDP may drop a datagram: ask up to three times, as Pyro5 does.
    let len = (0..3)
        .find_map(|_| {
            socket.send_to(b"GET_NSURI", &responder).unwrap();
            socket.recv_from(&mut reply).ok()
        })
        .map(|(len, _)| len)
        .expect("no answer to GET_NSURI");
    assert_eq!(
        std::str::from_utf8(&reply[..len]).unwrap(),
        format!("PYRO:Pyro.NameServer@127.0.0.1:{port}")
    );
}
