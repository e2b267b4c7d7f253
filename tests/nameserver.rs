//! `pyrolab-host run nameserver` against the stock Python Pyro5 client
//! (pinned, from PyPI): the registry methods with each serializer, PYRONAME
//! resolution to a driver on our daemon, persistence across kill -9, an
//! sql file shared with stock Pyro5's name server, autoclean, broadcast
//! discovery and bad input.

use std::fs;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_host::client::Proxy;
use pyrolab_host::daemon::registrar::CHECK_PERIOD;
use pyrolab_test_support::managed_lab::Lab;
use pyrolab_test_support::postgres::Postgres;
use pyrolab_test_support::{
    Background, Output, Sandbox, free_port, lab_config, python_with_pyro5, repo_root, run,
    run_host, start_lab_daemon, wait_until,
};

const SERIALIZERS: &[&str] = &["serpent", "marshal", "json", "msgpack"];

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

/// A name server's connection limit was a fixed 1,024: now
/// `max_connections` sets it, and a client over it is told why.
#[test]
fn a_name_servers_connection_limit_is_configurable() {
    use pyrolab_host::client::{ClientError, Proxy};

    let sandbox = Sandbox::new();
    let config = ns_config(&sandbox, "    max_connections: 2\n");
    let (_ns, port) = start_nameserver(&sandbox, &config);
    let uri = format!("PYRO:Pyro.NameServer@127.0.0.1:{port}");
    let held: Vec<Proxy> = (0..2).map(|_| Proxy::connect(&uri).unwrap()).collect();
    match Proxy::connect(&uri) {
        Err(ClientError::Refused(reason)) => assert!(reason.contains("at most 2"), "{reason}"),
        other => panic!(
            "a third connection was not refused: {:?}",
            other.map(|_| ())
        ),
    }
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Proxy::connect(&uri).is_err() {
        assert!(
            Instant::now() < deadline,
            "no place came free after two clients left"
        );
        thread::sleep(Duration::from_millis(50));
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

/// dbm storage jammed after a full disk: after one "No space left on
/// device" every later write failed ("Previous I/O error occurred. Please
/// close and re-open the database") even once space was freed. The name
/// server runs on a 2 MB tmpfs of its own (a user and mount namespace, so
/// no privileges are needed), the disk is filled, and once it is emptied
/// registering works again, with everything registered before kept.
#[test]
fn dbm_storage_recovers_once_a_full_disk_has_room_again() {
    use pyrolab_host::client::NameServerProxy;
    use std::collections::BTreeSet;

    let sandbox = Sandbox::new();
    let disk = sandbox.path().join("small-disk");
    fs::create_dir(&disk).expect("create the mount point");
    let config = ns_config(
        &sandbox,
        &format!(
            "    storage: dbm\n    storage_file: {}\n",
            disk.join("names.dbm").display()
        ),
    );
    let host = sandbox.host();
    let mut command = Command::new("unshare");
    command
        .args(["--user", "--map-root-user", "--mount", "--", "sh", "-c"])
        .arg("mount -t tmpfs -o size=2m tmpfs \"$1\" && shift && exec \"$@\"")
        .arg("sh")
        .arg(&disk)
        .arg(host.get_program())
        .args(host.get_args())
        .args(["run", "nameserver", "ns", "--config"])
        .arg(&config);
    for (key, value) in host.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    let mut ns = Background::start(&mut command);
    let line = ns.wait_for_line("name server ns listening on ", Duration::from_secs(30));
    let port: u16 = line
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let client = NameServerProxy::connect("127.0.0.1", port, Some(Duration::from_secs(20)), None)
        .expect("connect to the name server");
    let tags = BTreeSet::from(["a tag of some length, to fill pages faster".to_owned()]);
    let register = |name: &str| client.register(name, "PYRO:obj@127.0.0.1:5555", false, &tags);
    register("before.full").expect("register with room on the disk");
    // The name server's view of the disk: its mount namespace, seen through /proc.
    let filler = PathBuf::from(format!("/proc/{}/root", ns.pid()))
        .join(disk.strip_prefix("/").unwrap())
        .join("filler");
    let mut file = fs::File::create(&filler).expect("create the filler");
    let chunk = vec![7u8; 64 * 1024];
    while std::io::Write::write_all(&mut file, &chunk).is_ok() {}
    drop(file);
    let mut full = None;
    for i in 0..2000 {
        if let Err(err) = register(&format!("while.full.{i}")) {
            full = Some(err.to_string());
            break;
        }
    }
    let full = full.expect("registering never failed on a full disk");
    assert!(full.to_lowercase().contains("space"), "{full}");
    // Still full: the error says why, not that an earlier error happened.
    let again = register("still.full")
        .expect_err("the disk is still full")
        .to_string();
    assert!(!again.contains("Previous I/O error"), "{again}");
    fs::remove_file(&filler).expect("remove the filler");
    register("after.full").expect("register once the disk has room again");
    let names = client.list(None).expect("list");
    for name in ["before.full", "after.full"] {
        assert!(names.contains_key(name), "{name} missing from {names:?}");
    }
    drop(ns);
}

/// `storage` and `storage_file` settings for a file store in `sandbox`.
fn file_storage(sandbox: &Sandbox, storage: &str) -> String {
    let file = sandbox.path().join(format!("names.{storage}"));
    format!(
        "    storage: {storage}\n    storage_file: {}\n",
        file.display()
    )
}

fn registrations_survive_kill_9(storage: &str) {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join(format!("names.{storage}"));
    let config = ns_config(&sandbox, &file_storage(&sandbox, storage));
    let (ns, port) = start_nameserver(&sandbox, &config);
    python(
        "register",
        port,
        "serpent",
        &["lab.scope", "PYRO:scope@127.0.0.1:5555"],
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o600,
            "{storage} file mode {mode:o}: the lab's, not every user's"
        );
    }
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

/// kill -9 while a client registers names as fast as it can: the store
/// must open again, and hold every registration that was acknowledged.
fn a_crash_mid_write_loses_nothing_acknowledged(sandbox: &Sandbox, storage_settings: &str) {
    let config = ns_config(sandbox, storage_settings);
    let (ns, port) = start_nameserver(sandbox, &config);
    let script = repo_root().join("tests/python/ns_flows.py");
    let mut writer = Background::start(Command::new(python_with_pyro5()).arg(script).args([
        "register_many",
        &port.to_string(),
        "serpent",
        "100000",
    ]));
    writer.wait_for_line("acked 200", Duration::from_secs(60));
    drop(ns.stop()); // SIGKILL in the middle of the stream of writes
    let output = writer.stop();
    let acknowledged = output
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("acked "))
        .filter_map(|n| n.parse::<usize>().ok())
        .max()
        .expect("acknowledged registrations");
    let (_ns, port) = start_nameserver(sandbox, &config);
    let output = python("list", port, "serpent", &[]);
    let stored = output
        .stdout
        .lines()
        .filter(|l| l.starts_with("entry bulk."))
        .count();
    assert!(
        stored > acknowledged,
        "{stored} stored, but registrations 0..={acknowledged} were acknowledged"
    );
    // At most the one in flight when the kill came is extra.
    assert!(
        stored <= acknowledged + 2,
        "{stored} stored, {acknowledged} acknowledged"
    );
}

#[test]
fn sql_storage_survives_a_crash_mid_write() {
    let sandbox = Sandbox::new();
    a_crash_mid_write_loses_nothing_acknowledged(&sandbox, &file_storage(&sandbox, "sql"));
}

#[test]
fn dbm_storage_survives_a_crash_mid_write() {
    let sandbox = Sandbox::new();
    a_crash_mid_write_loses_nothing_acknowledged(&sandbox, &file_storage(&sandbox, "dbm"));
}

#[test]
fn postgresql_storage_survives_a_crash_mid_write() {
    let postgres = Postgres::start();
    let sandbox = Sandbox::new();
    let settings = format!(
        "    storage: postgresql\n    storage_url: {}\n",
        postgres.url()
    );
    a_crash_mid_write_loses_nothing_acknowledged(&sandbox, &settings);
}

/// Name servers `a` and `b` of one configuration, sharing the registry in
/// `postgres`, autocleaning every 3 s.
fn shared_registry_config(sandbox: &Sandbox, postgres: &Postgres) -> PathBuf {
    let path = sandbox.path().join("shared.yaml");
    let url = postgres.url();
    let text = format!(
        "version: '1.0'
nameservers:
  a: {{host: 127.0.0.1, ns_port: 0, storage: postgresql, storage_url: '{url}', ns_autoclean: 3}}
  b: {{host: 127.0.0.1, ns_port: 0, storage: '{url}', ns_autoclean: 3}}
"
    );
    fs::write(&path, text).expect("write shared.yaml");
    path
}

/// Starts `pyrolab-host run nameserver NAME` and returns it with its port.
fn start_named_nameserver(sandbox: &Sandbox, config: &Path, name: &str) -> (Background, u16) {
    let mut process = Background::start(
        sandbox
            .host()
            .args(["run", "nameserver", name, "--config"])
            .arg(config),
    );
    let line = process.wait_for_line(
        &format!("name server {name} listening on "),
        Duration::from_secs(30),
    );
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (process, port)
}

fn listed(port: u16) -> String {
    python("list", port, "serpent", &[]).stdout
}

#[test]
fn postgresql_storage_is_one_registry_for_two_name_servers() {
    let postgres = Postgres::start();
    let sandbox = Sandbox::new();
    let config = shared_registry_config(&sandbox, &postgres);
    let (a, a_port) = start_named_nameserver(&sandbox, &config, "a");
    let (b, b_port) = start_named_nameserver(&sandbox, &config, "b");

    // Registered through one, found through the other at once; in the
    // database before the registration was acknowledged.
    python(
        "register",
        a_port,
        "serpent",
        &["lab.scope", "PYRO:scope@127.0.0.1:5555"],
    );
    assert!(listed(b_port).contains("entry lab.scope PYRO:scope@127.0.0.1:5555"));
    assert_eq!(
        postgres
            .psql("SELECT uri FROM pyrolab_ns_names WHERE name = 'lab.scope'")
            .trim(),
        "PYRO:scope@127.0.0.1:5555"
    );
    // Each answers for itself as Pyro.NameServer.
    assert!(listed(a_port).contains(&format!(
        "entry Pyro.NameServer PYRO:Pyro.NameServer@127.0.0.1:{a_port}"
    )));
    assert!(listed(b_port).contains(&format!(
        "entry Pyro.NameServer PYRO:Pyro.NameServer@127.0.0.1:{b_port}"
    )));
    // Removed through the other, gone from both.
    python(
        "register",
        b_port,
        "msgpack",
        &["lab.laser", "PYRO:laser@127.0.0.1:5556"],
    );
    assert!(listed(a_port).contains("entry lab.laser"));
    let removed = python("remove", a_port, "json", &["lab.laser"]);
    assert!(removed.stdout.contains("removed 1"), "{removed}");
    assert!(!listed(b_port).contains("lab.laser"));

    // One killed: the other still answers, and the killed one comes back
    // with the whole registry.
    drop(a.stop());
    assert!(listed(b_port).contains("entry lab.scope"));
    python(
        "register",
        b_port,
        "serpent",
        &["lab.later", "PYRO:later@127.0.0.1:5557"],
    );
    let (a, a_port) = start_named_nameserver(&sandbox, &config, "a");
    let after = listed(a_port);
    assert!(
        after.contains("entry lab.scope") && after.contains("entry lab.later"),
        "{after}"
    );

    // Autoclean runs once for the lab: a dead registration is removed by
    // one of the two, and the other finds it gone.
    let dead = pyrolab_test_support::free_port();
    python(
        "register",
        b_port,
        "serpent",
        &["lab.dead", &format!("PYRO:dead@127.0.0.1:{dead}")],
    );
    let gone = pyrolab_test_support::wait_until(Duration::from_secs(20), || {
        !listed(a_port).contains("lab.dead")
    });
    assert!(gone, "lab.dead was not cleaned");
    assert!(!listed(b_port).contains("lab.dead"));
    let logs = [a.stop(), b.stop()]
        .map(|output| output.stderr.matches("autoclean: removed lab.dead").count());
    assert_eq!(
        logs.iter().sum::<usize>(),
        1,
        "cleaned by exactly one: {logs:?}"
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

/// A configuration with name server `ns` at `ns_port` and daemon `lab`
/// serving `library` and `sample`, both registered with `ns` (as is the
/// daemon itself).
fn registered_lab_config(sandbox: &Sandbox, ns_port: u16, daemon: &str) -> PathBuf {
    for lib in ["sample", "libservice"] {
        sandbox.install_plugin(lib);
    }
    let text = format!(
        "version: '1.0'
plugin_dirs: [{plugins}]
nameservers:
  ns: {{host: 127.0.0.1, ns_port: {ns_port}}}
daemons:
  {daemon}: {{host: 127.0.0.1, port: 0, nameservers: [ns]}}
services:
  library: {{module: libservice, classname: LibraryCatalog, description: The library catalog, daemon: {daemon}, nameservers: [ns]}}
  sample: {{module: sample, classname: SampleService, daemon: {daemon}, nameservers: [ns]}}
",
        plugins = sandbox.plugin_dir().display()
    );
    let path = sandbox.path().join(format!("{daemon}.yaml"));
    fs::write(&path, text).expect("write the lab config");
    path
}

fn start_daemon(sandbox: &Sandbox, config: &Path, daemon: &str) -> (Background, String) {
    let mut process = Background::start(
        sandbox
            .host()
            .args(["run", "daemon", daemon, "--config"])
            .arg(config),
    );
    let line = process.wait_for_line(
        &format!("daemon {daemon} listening on "),
        Duration::from_secs(30),
    );
    let location = line.rsplit(' ').next().expect("a location").to_owned();
    (process, location)
}

/// `nslist --json` rows as (name, uri, description).
fn nslist(sandbox: &Sandbox, port: u16) -> Vec<(String, String, String)> {
    let output = run(
        sandbox.host().args([
            "nslist",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--json",
        ]),
        Duration::from_secs(30),
    )
    .success();
    output
        .json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|row| {
            let field = |key: &str| row[key].as_str().unwrap_or_default().to_owned();
            (field("name"), field("uri"), field("description"))
        })
        .collect()
}

/// Waits until `check` holds for the name server's listing.
#[track_caller]
fn wait_for_listing(
    sandbox: &Sandbox,
    port: u16,
    what: &str,
    check: impl Fn(&[(String, String, String)]) -> bool,
) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = nslist(sandbox, port);
        if check(&rows) {
            return rows;
        }
        assert!(Instant::now() < deadline, "{what}: listing was {rows:#?}");
        thread::sleep(Duration::from_millis(200));
    }
}

fn has(rows: &[(String, String, String)], name: &str) -> bool {
    rows.iter().any(|(n, _, _)| n == name)
}

#[test]
fn daemons_register_their_services_and_remove_them_on_shutdown() {
    let sandbox = Sandbox::new();
    let (_ns, port) = start_nameserver(&sandbox, &ns_config(&sandbox, ""));
    let config = registered_lab_config(&sandbox, port, "lab");
    let (daemon, location) = start_daemon(&sandbox, &config, "lab");
    let rows = wait_for_listing(&sandbox, port, "registration", |rows| {
        has(rows, "library") && has(rows, "sample") && has(rows, "lab")
    });
    let library = rows.iter().find(|(n, _, _)| n == "library").unwrap();
    assert_eq!(library.1, format!("PYRO:library@{location}"));
    assert_eq!(library.2, "The library catalog");
    let lab = rows.iter().find(|(n, _, _)| n == "lab").unwrap();
    assert_eq!(lab.1, format!("PYRO:Pyro.Daemon@{location}"));
    assert_eq!(lab.2, "daemon for library, sample");

    // The stock Python client finds the service by name.
    let output = python("pyroname", port, "serpent", &["library"]);
    assert!(output.stdout.contains("catalog"), "{output}");
    // So does the command-line client, through the configuration.
    let called = run(
        sandbox
            .host()
            .args(["call", "sample", "add", "2", "3", "--config"])
            .arg(&config),
        Duration::from_secs(30),
    )
    .success();
    assert_eq!(called.stdout.trim(), "5");

    let output = daemon.interrupt(Duration::from_secs(30));
    assert_eq!(output.code, Some(0), "{output}");
    let rows = nslist(&sandbox, port);
    assert!(
        !has(&rows, "library") && !has(&rows, "sample") && !has(&rows, "lab"),
        "entries left after a graceful shutdown: {rows:#?}"
    );
}

#[test]
fn a_daemon_registers_again_when_the_name_server_forgets() {
    let sandbox = Sandbox::new();
    let ns_file = ns_config(&sandbox, "");
    let (ns, port) = start_nameserver(&sandbox, &ns_file);
    let config = registered_lab_config(&sandbox, port, "lab");
    let (_daemon, _location) = start_daemon(&sandbox, &config, "lab");
    wait_for_listing(&sandbox, port, "first registration", |rows| {
        has(rows, "library")
    });
    drop(ns.stop());
    // The same name server comes back on the same port, with memory
    // storage: empty.
    let again = sandbox.path().join("ns-again.yaml");
    fs::write(
        &again,
        format!("version: '1.0'\nnameservers:\n  ns: {{host: 127.0.0.1, ns_port: {port}}}\n"),
    )
    .unwrap();
    let (_ns, port_again) = start_nameserver(&sandbox, &again);
    assert_eq!(port_again, port);
    let restarted = Instant::now();
    wait_for_listing(&sandbox, port, "registration after the restart", |rows| {
        has(rows, "library") && has(rows, "sample") && has(rows, "lab")
    });
    assert!(restarted.elapsed() < Duration::from_secs(10));
}

#[test]
fn taking_over_a_name_a_live_daemon_holds_is_a_loud_warning() {
    let sandbox = Sandbox::new();
    let (_ns, port) = start_nameserver(&sandbox, &ns_config(&sandbox, ""));
    let first_config = registered_lab_config(&sandbox, port, "lab");
    let (_first, first_location) = start_daemon(&sandbox, &first_config, "lab");
    wait_for_listing(&sandbox, port, "first registration", |rows| {
        has(rows, "library")
    });
    let other = Sandbox::new();
    let second_config = registered_lab_config(&other, port, "lab2");
    let (second, second_location) = start_daemon(&other, &second_config, "lab2");
    wait_for_listing(&sandbox, port, "second registration", |rows| {
        rows.iter()
            .any(|(n, uri, _)| n == "library" && uri.contains(&second_location))
    });
    let output = second.stop();
    let warning = output
        .stderr
        .lines()
        .find(|l| l.contains("already registered by another running daemon"))
        .unwrap_or_else(|| panic!("no warning\n{output}"));
    assert!(
        warning.contains(&format!("PYRO:library@{first_location}"))
            && warning.contains(&format!("PYRO:library@{second_location}")),
        "{warning}"
    );
}

/// A daemon that left a name to another running daemon takes it back once
/// that daemon is gone, even when it died without removing its entries
/// (killed): the name does not keep pointing at a dead address.
#[test]
fn a_name_left_to_another_daemon_is_taken_back_when_that_daemon_dies() {
    let sandbox = Sandbox::new();
    let (_ns, port) = start_nameserver(&sandbox, &ns_config(&sandbox, ""));
    let (first, first_location) = start_daemon(
        &sandbox,
        &registered_lab_config(&sandbox, port, "lab"),
        "lab",
    );
    wait_for_listing(&sandbox, port, "first registration", |rows| {
        has(rows, "library")
    });
    let other = Sandbox::new();
    let (_second, second_location) =
        start_daemon(&other, &registered_lab_config(&other, port, "lab2"), "lab2");
    // The second takes the name over as it starts; the first takes it back
    // (once) at its next check, and from then on the second leaves it.
    let holder = |rows: &[(String, String, String)], location: &str| {
        rows.iter()
            .any(|(n, uri, _)| n == "library" && uri.contains(location))
    };
    let started = Instant::now();
    while started.elapsed() < 3 * CHECK_PERIOD && !holder(&nslist(&sandbox, port), &second_location)
    {
    }
    wait_for_listing(
        &sandbox,
        port,
        "the first daemon taking the name back",
        |rows| holder(rows, &first_location),
    );
    thread::sleep(2 * CHECK_PERIOD);
    assert!(
        holder(&nslist(&sandbox, port), &first_location),
        "the first keeps it"
    );
    drop(first.stop());
    wait_for_listing(&sandbox, port, "the second taking the name back", |rows| {
        holder(rows, &second_location)
    });
}

#[test]
fn python_registrations_are_listed_by_nslist() {
    let sandbox = Sandbox::new();
    let (_ns, port) = start_nameserver(&sandbox, &ns_config(&sandbox, ""));
    python(
        "register",
        port,
        "json",
        &["python.thing", "PYRO:thing@127.0.0.1:5555"],
    );
    let output = run(
        sandbox
            .host()
            .args(["nslist", "--host", "127.0.0.1", "--port", &port.to_string()]),
        Duration::from_secs(30),
    )
    .success();
    let header = output.stdout.lines().next().unwrap_or_default();
    assert!(header.starts_with("NAME") && header.contains("URI") && header.contains("DESCRIPTION"));
    assert!(
        output
            .stdout
            .lines()
            .any(|l| l.starts_with("python.thing") && l.contains("PYRO:thing@127.0.0.1:5555")),
        "{output}"
    );
    assert!(output.stdout.contains("Pyro.NameServer"), "{output}");
}

#[test]
fn the_rust_client_locates_the_name_server_and_resolves_pyroname() {
    use pyrolab_host::client::{ClientError, Proxy, locate_ns};
    let sandbox = Sandbox::new();
    let (_ns, port) = start_nameserver(&sandbox, &ns_config(&sandbox, ""));
    let config = registered_lab_config(&sandbox, port, "lab");
    let (_daemon, location) = start_daemon(&sandbox, &config, "lab");
    wait_for_listing(&sandbox, port, "registration", |rows| has(rows, "sample"));
    let ns = locate_ns("127.0.0.1", port).unwrap();
    ns.ping().unwrap();
    assert_eq!(
        ns.lookup("sample").unwrap().to_string(),
        format!("PYRO:sample@{location}")
    );
    let (_, metadata) = ns.lookup_with_metadata("library").unwrap();
    assert!(
        metadata.contains("description:The library catalog"),
        "{metadata:?}"
    );
    let tags = ["rust".to_owned()].into_iter().collect();
    ns.register("rust.thing", "PYRO:thing@127.0.0.1:1", false, &tags)
        .unwrap();
    assert!(ns.list(Some("rust.")).unwrap().contains_key("rust.thing"));
    assert_eq!(ns.remove("rust.thing").unwrap(), 1);
    match ns.lookup("rust.thing") {
        Err(ClientError::Remote(err)) => {
            assert_eq!(err.class, "Pyro5.errors.NamingError");
            assert_eq!(err.message, "unknown name: rust.thing");
        }
        other => panic!("expected a NamingError, got {other:?}"),
    }
    let sample = Proxy::connect(&format!("PYRONAME:sample@127.0.0.1:{port}")).unwrap();
    assert_eq!(sample.call::<i64>("add", (20, 22)).unwrap(), 42);
}

#[test]
fn the_rust_client_speaks_serpent_to_a_stock_pyro5_name_server() {
    use pyrolab_host::client::NameServerProxy;
    use pyrolab_host::wire::serializer;
    let mut stock = Background::start(Command::new(python_with_pyro5()).args([
        "-c",
        "from Pyro5 import nameserver; nameserver.start_ns_loop('127.0.0.1', 0, enableBroadcast=False)",
    ]));
    let line = stock.wait_for_line("URI = ", Duration::from_secs(30));
    let port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    let ns = NameServerProxy::connect(
        "127.0.0.1",
        port,
        Some(Duration::from_secs(20)),
        serializer::by_name("serpent"),
    )
    .unwrap();
    let tags = ["a".to_owned(), "b".to_owned()].into_iter().collect();
    ns.register("rust.thing", "PYRO:thing@127.0.0.1:5555", false, &tags)
        .unwrap();
    assert_eq!(
        ns.lookup("rust.thing").unwrap().to_string(),
        "PYRO:thing@127.0.0.1:5555"
    );
    let (_, metadata) = ns.lookup_with_metadata("rust.thing").unwrap();
    assert_eq!(metadata, tags);
    let listed = ns.list_with_metadata(None).unwrap();
    assert!(listed.contains_key("Pyro.NameServer"), "{listed:?}");
    assert_eq!(ns.remove("rust.thing").unwrap(), 1);
    drop(stock.stop());
}

/// A stock Pyro5 name server, started the way its users start it
/// (`python -m Pyro5.nameserver`), keeping its registrations in the sqlite
/// file `file`; returns it with its port.
fn start_stock_sql_nameserver(file: &Path) -> (Background, u16) {
    let storage = format!("sql:{}", file.display());
    let mut stock = Background::start(Command::new(python_with_pyro5()).args([
        "-m",
        "Pyro5.nameserver",
        "-n",
        "127.0.0.1",
        "-p",
        "0",
        "-s",
        &storage,
    ]));
    let line = stock.wait_for_line("URI = ", Duration::from_secs(30));
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (stock, port)
}

/// Serpent, which both name servers speak.
fn serpent_client(port: u16) -> pyrolab_host::client::NameServerProxy {
    pyrolab_host::client::NameServerProxy::connect(
        "127.0.0.1",
        port,
        Some(Duration::from_secs(20)),
        pyrolab_host::wire::serializer::by_name("serpent"),
    )
    .expect("connect to the name server")
}

fn tag_set(tags: &[&str]) -> std::collections::BTreeSet<String> {
    tags.iter().map(|t| (*t).to_owned()).collect()
}

/// What `name` holds, as `(uri, tags)`, or `None` for an unknown name.
fn lookup_entry(
    ns: &pyrolab_host::client::NameServerProxy,
    name: &str,
) -> Option<(String, std::collections::BTreeSet<String>)> {
    use pyrolab_host::client::ClientError;
    match ns.lookup_with_metadata(name) {
        Ok((uri, tags)) => Some((uri.to_string(), tags)),
        Err(ClientError::Remote(err)) if err.class == "Pyro5.errors.NamingError" => None,
        Err(err) => panic!("lookup {name}: {err}"),
    }
}

#[test]
fn an_sql_file_passes_between_stock_pyro5_and_our_name_server_both_ways() {
    let sandbox = Sandbox::new();
    let file = sandbox.path().join("names.sqlite");
    let entry = |uri: &str, tags: &[&str]| Some((uri.to_owned(), tag_set(tags)));

    // Stock Pyro5 creates the file and writes names with and without tags.
    let (stock, port) = start_stock_sql_nameserver(&file);
    let ns = serpent_client(port);
    for (name, uri, tags) in [
        ("py.tagged", "PYRO:tagged@127.0.0.1:5001", &["a", "b"][..]),
        ("py.bare", "PYRO:bare@127.0.0.1:5002", &[]),
        ("py.gone", "PYRO:gone@127.0.0.1:5003", &["c"]),
    ] {
        ns.register(name, uri, false, &tag_set(tags)).unwrap();
    }
    drop(ns);
    drop(stock.stop()); // Pyro5 commits each registration

    // Ours reads all of it, and changes it.
    let config = ns_config(
        &sandbox,
        &format!("    storage: sql\n    storage_file: {}\n", file.display()),
    );
    let (ours, port) = start_nameserver(&sandbox, &config);
    let ns = serpent_client(port);
    assert_eq!(
        lookup_entry(&ns, "py.tagged"),
        entry("PYRO:tagged@127.0.0.1:5001", &["a", "b"])
    );
    assert_eq!(
        lookup_entry(&ns, "py.bare"),
        entry("PYRO:bare@127.0.0.1:5002", &[])
    );
    assert_eq!(
        lookup_entry(&ns, "py.gone"),
        entry("PYRO:gone@127.0.0.1:5003", &["c"])
    );
    ns.register(
        "py.tagged",
        "PYRO:tagged@127.0.0.1:6001",
        false,
        &tag_set(&["a", "z"]),
    )
    .unwrap();
    ns.register(
        "rust.new",
        "PYRO:new@127.0.0.1:6002",
        false,
        &tag_set(&["r"]),
    )
    .unwrap();
    assert_eq!(ns.remove("py.gone").unwrap(), 1);
    drop(ns);
    let output = ours.interrupt(Duration::from_secs(20));
    assert_eq!(output.code, Some(0), "{output}");

    // Stock Pyro5 reads what ours wrote, and still writes the file (now
    // with our index in it).
    let (stock, port) = start_stock_sql_nameserver(&file);
    let ns = serpent_client(port);
    assert_eq!(
        lookup_entry(&ns, "py.tagged"),
        entry("PYRO:tagged@127.0.0.1:6001", &["a", "z"])
    );
    assert_eq!(
        lookup_entry(&ns, "py.bare"),
        entry("PYRO:bare@127.0.0.1:5002", &[])
    );
    assert_eq!(
        lookup_entry(&ns, "rust.new"),
        entry("PYRO:new@127.0.0.1:6002", &["r"])
    );
    assert_eq!(lookup_entry(&ns, "py.gone"), None);
    ns.register(
        "py.later",
        "PYRO:later@127.0.0.1:5004",
        false,
        &tag_set(&["l"]),
    )
    .unwrap();
    assert_eq!(ns.remove("rust.new").unwrap(), 1);
    drop(ns);
    drop(stock.stop());

    // And ours reads Pyro5's writes through the index.
    let (_ours, port) = start_nameserver(&sandbox, &config);
    let ns = serpent_client(port);
    assert_eq!(
        lookup_entry(&ns, "py.later"),
        entry("PYRO:later@127.0.0.1:5004", &["l"])
    );
    assert_eq!(lookup_entry(&ns, "rust.new"), None);
    assert_eq!(
        lookup_entry(&ns, "Pyro.NameServer"),
        entry(
            &format!("PYRO:Pyro.NameServer@127.0.0.1:{port}"),
            &["class:Pyro5.nameserver.NameServer"]
        )
    );
    let db = rusqlite::Connection::open(&file).unwrap();
    let indexes: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type='index' AND name='pyro_metadata_object'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(indexes, 1, "our index survives Pyro5's writes");
}

/// A lab of two name servers sharing one registry in `postgres`, and a
/// daemon registering its one service with both.
fn lab_with_two_nameservers(postgres: &Postgres) -> (Lab, u16, u16) {
    let sandbox = Sandbox::new();
    sandbox.install_plugin("sample");
    let (a, b) = (free_port(), free_port());
    let url = postgres.url();
    let text = format!(
        "version: '1.0'
plugin_dirs: [{plugins}]
nameservers:
  a: {{host: 127.0.0.1, ns_port: {a}, storage: postgresql, storage_url: '{url}'}}
  b: {{host: 127.0.0.1, ns_port: {b}, storage: postgresql, storage_url: '{url}'}}
daemons:
  instruments: {{host: 127.0.0.1, nameservers: [a, b]}}
services:
  sample:
    module: sample
    classname: SampleService
    daemon: instruments
    nameservers: [a, b]
autolaunch:
  nameservers: [a, b]
  daemons: [instruments]
",
        plugins = sandbox.plugin_dir().display()
    );
    let config = sandbox.path().join("lab.yaml");
    fs::write(&config, text).expect("write lab.yaml");
    (
        Lab {
            sandbox,
            ns_port: a,
            config,
        },
        a,
        b,
    )
}

#[test]
fn clients_fail_over_to_the_other_name_server_and_the_daemon_registers_again() {
    let postgres = Postgres::start();
    let (lab, a, b) = lab_with_two_nameservers(&postgres);
    lab.up().success();
    let listing = run_host(lab.host().arg("nslist")).success();
    assert!(listing.stdout.contains("sample"), "{listing}");
    assert!(listing.stderr.is_empty(), "the first answered: {listing}");

    // Name server a down: every client finds the service through b.
    run_host(lab.host().args(["stop", "nameserver", "a"])).success();
    let called = run_host(lab.host().args(["call", "sample", "echo", "hi"])).success();
    assert_eq!(called.stdout.trim(), r#""SERVER RECEIVED: hi""#, "{called}");
    let listing = run_host(lab.host().arg("nslist")).success();
    assert!(listing.stdout.contains("sample"), "{listing}");
    assert!(
        listing.stderr.contains(&format!(
            "name server 127.0.0.1:{a} did not answer; listing 127.0.0.1:{b}"
        )),
        "{listing}"
    );
    let both = format!("PYRONAME:sample@127.0.0.1:{a},127.0.0.1:{b}");
    let proxy = Proxy::connect(&both).expect("resolved through b");
    let echoed: String = proxy.call("echo", ("rust",)).unwrap();
    assert_eq!(echoed, "SERVER RECEIVED: rust");
    let by_name = python(
        "register",
        b,
        "serpent",
        &["lab.extra", "PYRO:extra@127.0.0.1:5555"],
    );
    assert!(by_name.stdout.contains("registered lab.extra"), "{by_name}");

    // Back: it has the whole registry (the database kept it) and the
    // daemon's registrations with it are current again.
    run_host(lab.host().args(["start", "nameserver", "a"])).success();
    let listing = run_host(lab.host().args(["nslist", "--nameserver", "a"])).success();
    assert!(
        listing.stdout.contains("sample") && listing.stdout.contains("lab.extra"),
        "{listing}"
    );
    let status = lab.ps();
    let sample = status["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "sample"))
        .cloned()
        .expect("sample in ps");
    assert_eq!(
        sample["registered_with"],
        serde_json::json!(["a", "b"]),
        "{sample:#}"
    );
}

#[test]
fn a_lost_database_leaves_lookups_answered_from_the_last_copy_and_changes_refused_until_it_is_back()
{
    let postgres = Postgres::start();
    let sandbox = Sandbox::new();
    let settings = format!(
        "    storage: postgresql\n    storage_url: {}\n",
        postgres.url()
    );
    let (ns, port) = start_nameserver(&sandbox, &ns_config(&sandbox, &settings));
    python(
        "register",
        port,
        "serpent",
        &["lab.scope", "PYRO:scope@127.0.0.1:5555"],
    );
    let client = pyrolab_host::client::NameServerProxy::connect(
        "127.0.0.1",
        port,
        Some(Duration::from_secs(30)),
        None,
    )
    .expect("connect");

    postgres.stop_server();
    // Lookups from the last copy, without waiting out a connect each time.
    for _ in 0..20 {
        let started = Instant::now();
        let uri = client.lookup("lab.scope").expect("answered from the copy");
        assert_eq!(uri.to_string(), "PYRO:scope@127.0.0.1:5555");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "a lookup took {:?}",
            started.elapsed()
        );
    }
    let refused = client
        .register(
            "lab.new",
            "PYRO:new@127.0.0.1:5556",
            false,
            &Default::default(),
        )
        .expect_err("no database, no change");
    assert!(
        refused.to_string().contains(
            "storage error: cannot connect to PostgreSQL at postgresql://postgres@127.0.0.1"
        ),
        "{refused}"
    );

    postgres.start_server();
    let accepted = wait_until(Duration::from_secs(30), || {
        client
            .register(
                "lab.new",
                "PYRO:new@127.0.0.1:5556",
                false,
                &Default::default(),
            )
            .is_ok()
    });
    assert!(accepted, "the database came back, the name server did not");
    let listed = listed(port);
    assert!(
        listed.contains("entry lab.new") && listed.contains("entry lab.scope"),
        "{listed}"
    );
    let log = ns.stop();
    assert_eq!(
        log.stderr
            .matches("name server storage unreadable, answering from the last copy")
            .count(),
        1,
        "said once\n{log}"
    );
}
