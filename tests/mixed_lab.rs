//! Mixed labs, in both directions: pyrolab-host's daemons, client (`call`,
//! the Rust `Proxy`), `nslist` and monitor against stock Python Pyro5 5.17
//! and PyroLab 0.5.0 name servers and daemons (the pinned packages from
//! PyPI), and PyroLab's example client scripts against pyrolab-host's demo
//! lab. A real lab is mixed for years while its drivers are ported.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pyrolab_host::client::{ClientError, Proxy};
use pyrolab_host::wire::serializer;
use pyrolab_plugin_api::{BigInt, CallArgs, Complex, Value};
use pyrolab_test_support::browser::http_get;
use pyrolab_test_support::managed_lab::Lab;
use pyrolab_test_support::python_peers::PythonPeer;
use pyrolab_test_support::{
    Background, Output, Sandbox, free_port, process_running, python_with_pyro5, repo_root, run,
    run_host, wait_until,
};

/// The serializers a stock Pyro5 peer may choose, as `PYRO_SERIALIZER`
/// names them for our side too.
const SERIALIZERS: &[&str] = &["serpent", "marshal", "json", "msgpack"];

/// A lab whose one daemon registers its services with a name server it
/// does not run (`pyns`, at 127.0.0.1:`ns_port`): a Python one.
fn lab_registering_with(ns_port: u16) -> Lab {
    let sandbox = Sandbox::new();
    for lib in ["sample", "libservice"] {
        sandbox.install_plugin(lib);
    }
    let text = format!(
        "version: '1.0'
plugin_dirs: [{plugins}]
nameservers:
  pyns: {{host: 127.0.0.1, ns_port: {ns_port}}}
daemons:
  instruments: {{host: 127.0.0.1, servertype: thread, nameservers: [pyns]}}
services:
  sample:
    module: sample
    classname: SampleService
    description: PyroLab's sample service
    instancemode: session
    daemon: instruments
    nameservers: [pyns]
  library:
    module: libservice
    classname: LibraryCatalog
    parameters: {{catalog: {{Dune: 2}}}}
    daemon: instruments
    nameservers: [pyns]
autolaunch:
  daemons: [instruments]
",
        plugins = sandbox.plugin_dir().display()
    );
    let config = sandbox.path().join("lab.yaml");
    fs::write(&config, text).expect("write lab.yaml");
    Lab {
        sandbox,
        ns_port,
        config,
    }
}

/// `up`, with our side choosing `serializer` for Python peers.
fn up_with(lab: &Lab, serializer: &str) -> Output {
    run_host(
        lab.host()
            .env("PYRO_SERIALIZER", serializer)
            .arg("up")
            .arg("--config")
            .arg(&lab.config),
    )
}

/// Runs a Python snippet with the pinned Pyro5 and PyroLab, using
/// `serializer`; PyroLab's files go to `data_dir`.
fn python(code: &str, serializer: &str, data_dir: &Path) -> Output {
    let mut command = Command::new(python_with_pyro5());
    command
        .args(["-c", code])
        .env("PYRO_SERIALIZER", serializer)
        .env("PYROLAB_DATA_DIR", data_dir)
        .env("PYROLAB_NO_VERSION_CHECK", "1")
        .env_remove("PYRO_NS_HOST")
        .env_remove("PYRO_NS_PORT");
    run(&mut command, Duration::from_secs(60))
}

fn service_status(lab: &Lab, name: &str) -> serde_json::Value {
    let status = lab.ps();
    status["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or_else(|| panic!("no service {name} in {status:#}"))
}

#[test]
fn our_daemons_register_with_a_stock_pyro5_name_server_and_python_finds_them_by_name() {
    let scratch = Sandbox::new();
    let ns = PythonPeer::pyro5_nameserver(scratch.path());
    for serializer in SERIALIZERS {
        let lab = lab_registering_with(ns.port());
        up_with(&lab, serializer).success();
        let sample = service_status(&lab, "sample");
        assert_eq!(
            sample["registered_with"][0], "pyns",
            "{serializer}: {sample}"
        );
        let client = python(
            &format!(
                r#"
import Pyro5.api as p
sample = p.Proxy("PYRONAME:sample@127.0.0.1:{port}")
assert sample.echo("x") == "SERVER RECEIVED: x", sample.echo("x")
library = p.Proxy("PYRONAME:library@127.0.0.1:{port}")
assert library.get_catalog() == {{"Dune": 2}}, library.get_catalog()
if p.config.SERIALIZER != "marshal":
    # (Pyro5's name server cannot send a URI inside a tuple with marshal:
    # "unmarshallable object".)
    uri, metadata = p.locate_ns("127.0.0.1", {port}).lookup("sample", return_metadata=True)
    assert "pyrolab:service" in metadata, metadata
    assert "description:PyroLab's sample service" in metadata, metadata
print("found")
"#,
                port = ns.port()
            ),
            serializer,
            scratch.path(),
        );
        assert_eq!(client.code, Some(0), "{serializer}\n{client}");
        // `down` removes the names again.
        run_host(lab.host().arg("down")).success();
        let gone = python(
            &format!(
                "import Pyro5.api as p; print(sorted(p.locate_ns('127.0.0.1', {}).list()))",
                ns.port()
            ),
            "serpent",
            scratch.path(),
        );
        assert_eq!(
            gone.stdout.trim(),
            "['Pyro.NameServer']",
            "{serializer}\n{gone}"
        );
    }
}

#[test]
fn our_daemons_register_with_a_pyrolab_started_name_server() {
    let scratch = Sandbox::new();
    let ns = PythonPeer::pyrolab_nameserver(free_port(), scratch.path());
    let lab = lab_registering_with(ns.port());
    up_with(&lab, "serpent").success();
    let client = python(
        &format!(
            r#"
from pyrolab.api import locate_ns, Proxy
ns = locate_ns(host="127.0.0.1", port={port})
with Proxy(ns.lookup("sample")) as sample:
    print(sample.echo("from PyroLab"))
    print(sample.ping(), sample.pyrolab_version())
"#,
            port = ns.port()
        ),
        "serpent",
        scratch.path(),
    );
    assert_eq!(client.code, Some(0), "{client}");
    assert!(
        client
            .stdout
            .contains("SERVER RECEIVED: from PyroLab\nTrue 0.5.0"),
        "{client}"
    );
}

#[test]
fn call_and_the_rust_proxy_reach_a_stock_pyro5_daemon_with_every_serializer() {
    let scratch = Sandbox::new();
    let ns = PythonPeer::pyro5_nameserver(scratch.path());
    let ns_port = ns.port().to_string();
    let daemon = PythonPeer::start("pyro5-daemon", &[&ns_port], scratch.path());
    let uri = daemon.ready.trim().to_owned();
    let by_name = format!("PYRONAME:python.thing@127.0.0.1:{ns_port}");
    for name in SERIALIZERS {
        for target in [&uri, &by_name] {
            let echoed = run_host(scratch.host().env("PYRO_SERIALIZER", name).args([
                "call",
                target,
                "echo",
                "[1, two, 2.5]",
            ]))
            .success();
            assert_eq!(echoed.stdout.trim(), r#"[1,"two",2.5]"#, "{name}");
        }
        let failed = run_host(
            scratch
                .host()
                .env("PYRO_SERIALIZER", name)
                .args(["call", &uri, "fail"]),
        )
        .failure(1);
        assert!(
            failed.stderr.contains("builtins.ValueError: thing failed"),
            "{name}\n{failed}"
        );

        let mut proxy = Proxy::new(uri.parse().unwrap());
        proxy.negotiate_serializer(serializer::by_name(name).unwrap());
        proxy.set_timeout(Some(Duration::from_secs(20)));
        assert!(!proxy.peer_is_pyrolab_host().unwrap(), "{name}");
        assert_eq!(proxy.serializer().map(|s| s.name()), Some(*name));
        let big = Value::BigInt("1180591620717411303424".parse::<BigInt>().unwrap());
        let mut sent = vec![
            Value::Tuple(vec![1.into()]),
            Value::Set(vec![2.into()]),
            big.clone(),
        ];
        if *name != "json" {
            sent.push(Value::Complex(Complex::new(1.0, 2.0)));
        }
        let kinds: Vec<String> = proxy.call("kinds", (Value::List(sent.clone()),)).unwrap();
        let expected: &[&str] = match *name {
            "serpent" | "marshal" => &["tuple", "set", "int", "complex"],
            "json" => &["list", "list", "int"],
            _ => &["list", "list", "int", "complex"],
        };
        assert_eq!(kinds, expected, "what Python received over {name}");
        let back = proxy
            .call_with("echo", CallArgs::positional(vec![big.clone()]))
            .unwrap();
        assert_eq!(back, big, "{name}");
        let err = proxy.call_with("fail", CallArgs::default()).unwrap_err();
        match err {
            ClientError::Remote(remote) => {
                assert_eq!(remote.class, "builtins.ValueError");
                assert_eq!(remote.message, "thing failed");
                assert!(!remote.traceback.is_empty());
            }
            other => panic!("{name}: {other}"),
        }
    }
}

#[test]
fn call_and_the_rust_proxy_lock_a_pyrolab_lockable_daemon_service() {
    let scratch = Sandbox::new();
    let ns = PythonPeer::pyro5_nameserver(scratch.path());
    let ns_port = ns.port().to_string();
    let _daemon = PythonPeer::start("pyrolab-daemon", &[&ns_port], scratch.path());
    let by_name = format!("PYRONAME:python.sample@127.0.0.1:{ns_port}");

    let holder = Proxy::connect(&by_name).unwrap();
    let other = Proxy::connect(&by_name).unwrap();
    assert!(holder.call::<bool>("lock", ("rust",)).unwrap());
    assert!(holder.call::<bool>("islocked", ()).unwrap());
    let echoed: String = holder.call("echo", ("hi",)).unwrap();
    assert_eq!(echoed, "SERVER RECEIVED: hi");
    match other.call::<String>("echo", ("hi",)).unwrap_err() {
        ClientError::Remote(refusal) => {
            assert_eq!(refusal.kind(), "ConnectionRefusedError");
            assert!(refusal.message.contains("locked (by 'rust')"), "{refusal}");
        }
        err => panic!("{err}"),
    }
    let locked = run_host(scratch.host().args(["call", &by_name, "echo", "hi"])).failure(1);
    assert!(locked.stderr.contains("locked (by 'rust')"), "{locked}");
    assert!(holder.call::<bool>("unlock", ()).unwrap());
    let echoed: String = other.call("echo", ("free",)).unwrap();
    assert_eq!(echoed, "SERVER RECEIVED: free");
    let free = run_host(scratch.host().args(["call", &by_name, "islocked"])).success();
    assert_eq!(free.stdout.trim(), "false");
    let version = run_host(scratch.host().args(["call", &by_name, "pyrolab_version"])).success();
    assert_eq!(version.stdout.trim(), r#""0.5.0""#, "PyroLab's own version");
}

#[test]
fn nslist_lists_a_stock_name_server_with_pyrolab_descriptions_and_reads_pyro_ns_variables() {
    let scratch = Sandbox::new();
    let ns = PythonPeer::pyro5_nameserver(scratch.path());
    let ns_port = ns.port().to_string();
    let _pyrolab = PythonPeer::start("pyrolab-daemon", &[&ns_port], scratch.path());
    let _stock = PythonPeer::start("pyro5-daemon", &[&ns_port], scratch.path());

    let listed =
        run_host(
            scratch
                .host()
                .args(["nslist", "--host", "127.0.0.1", "--port", &ns_port]),
        )
        .success();
    let line = |name: &str| {
        listed
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} not listed\n{listed}"))
            .to_owned()
    };
    assert!(
        line("python.sample").ends_with("PyroLab's sample service"),
        "{listed}"
    );
    assert!(
        line("python.thing").ends_with("A stock Pyro5 thing"),
        "{listed}"
    );
    assert!(line("Pyro.NameServer").contains(&format!("@127.0.0.1:{ns_port}")));

    // No flags and no configuration: Pyro5's variables say where.
    let env_listed = run_host(
        scratch
            .host()
            .env("PYRO_NS_HOST", "127.0.0.1")
            .env("PYRO_NS_PORT", &ns_port)
            .args(["nslist", "--json"]),
    )
    .success();
    let rows = env_listed.json();
    let sample = rows
        .as_array()
        .and_then(|all| all.iter().find(|r| r["name"] == "python.sample"))
        .unwrap_or_else(|| panic!("{rows:#}"));
    assert_eq!(sample["description"], "PyroLab's sample service");
    let called = run_host(
        scratch
            .host()
            .env("PYRO_NS_HOST", "127.0.0.1")
            .env("PYRO_NS_PORT", &ns_port)
            .args(["call", "PYRONAME:python.thing", "echo", "5"]),
    )
    .success();
    assert_eq!(called.stdout.trim(), "5");
    let bad = run_host(
        scratch
            .host()
            .env("PYRO_NS_PORT", "ninety")
            .args(["nslist"]),
    );
    assert_ne!(bad.code, Some(0), "{bad}");
    assert!(
        bad.stderr
            .contains("PYRO_NS_PORT=\"ninety\" is not a port number"),
        "{bad}"
    );
}

fn get_json(url: &str) -> serde_json::Value {
    let (_, body) = http_get(url);
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

#[test]
fn the_monitor_shows_a_python_daemons_service_available_then_locked_by_a_python_client() {
    let scratch = Sandbox::new();
    let ns = PythonPeer::pyro5_nameserver(scratch.path());
    let ns_port = ns.port().to_string();
    let daemon = PythonPeer::start("pyrolab-daemon", &[&ns_port], scratch.path());
    let mut monitor = Background::start(scratch.host().args([
        "monitor",
        "--port",
        "0",
        "--ns-host",
        "127.0.0.1",
        "--ns-port",
        &ns_port,
        "--polling",
        "0.2",
    ]));
    let line = monitor.wait_for_line("monitor listening on ", Duration::from_secs(30));
    let url = format!("{}api/services", line.rsplit(' ').next().expect("a URL"));
    let sample = || {
        get_json(&url)
            .as_array()
            .and_then(|all| all.iter().find(|s| s["name"] == "python.sample").cloned())
            .unwrap_or_default()
    };
    let shows = |status: &str| wait_until(Duration::from_secs(20), || sample()["status"] == status);
    assert!(shows("available"), "{}", sample());
    assert_eq!(sample()["description"], "PyroLab's sample service");

    let mut alice = PythonPeer::start("hold-lock", &[daemon.ready.trim(), "alice"], scratch.path());
    assert!(shows("locked"), "{}", sample());
    assert_eq!(sample()["locked_by"], "alice", "{}", sample());
    alice.close_stdin();
    assert!(shows("available"), "{}", sample());
    drop(monitor.interrupt(Duration::from_secs(10)));
}

/// A client remembers which addresses speak the native serializer; when a
/// Python daemon takes over such an address, it asks again instead of
/// failing.
#[test]
fn a_remembered_pyrolab_host_address_now_served_by_python_is_asked_again() {
    let sandbox = Sandbox::new();
    sandbox.install_plugin("sample");
    let port = free_port();
    let config = sandbox.path().join("lab.yaml");
    fs::write(
        &config,
        format!(
            "version: '1.0'
plugin_dirs: [{}]
daemons:
  lab: {{host: 127.0.0.1, port: {port}}}
services:
  sample: {{module: sample, classname: SampleService, daemon: lab}}
",
            sandbox.plugin_dir().display()
        ),
    )
    .unwrap();
    let start_ours = || {
        let mut ours = Background::start(
            sandbox
                .host()
                .args(["run", "daemon", "lab", "--config"])
                .arg(&config),
        );
        ours.wait_for_line("daemon lab listening on ", Duration::from_secs(30));
        ours
    };
    let ours = start_ours();
    let native = Proxy::connect(&format!("PYRO:sample@127.0.0.1:{port}")).unwrap();
    assert_eq!(native.serializer().map(|s| s.name()), Some("native"));
    drop(native);
    drop(ours);

    let python = PythonPeer::start("pyro5-daemon", &["-", &port.to_string()], sandbox.path());
    let thing = Proxy::connect(&format!("PYRO:thing@127.0.0.1:{port}")).unwrap();
    assert_eq!(thing.serializer().map(|s| s.name()), Some("serpent"));
    let echoed: i64 = thing.call("echo", (7,)).unwrap();
    assert_eq!(echoed, 7);
    drop(thing);
    drop(python);

    let _ours = start_ours();
    let again = Proxy::connect(&format!("PYRO:sample@127.0.0.1:{port}")).unwrap();
    assert_eq!(again.serializer().map(|s| s.name()), Some("native"));
}

fn example(lab: &Lab, name: &str) -> Output {
    let mut command = Command::new(python_with_pyro5());
    command
        .arg(repo_root().join("tests/python/pyrolab_examples.py"))
        .arg(name)
        .env("PYRO_NS_PORT", lab.ns_port.to_string())
        .env("PYROLAB_DATA_DIR", lab.sandbox.path())
        .env("PYROLAB_NO_VERSION_CHECK", "1")
        .env_remove("PYRO_NS_HOST")
        .env_remove("PYRO_SERIALIZER");
    run(&mut command, Duration::from_secs(60))
}

/// PyroLab's example clients (library-catalog, 101.simpleserver, locking,
/// autoconnect), as PyroLab 0.5 users run them, against the demo lab.
#[test]
fn pyrolab_s_example_clients_run_against_the_demo_lab() {
    let lab = Lab::demo();
    lab.up().success();

    let library = example(&lab, "library-catalog");
    assert_eq!(library.code, Some(0), "{library}");
    for expected in [
        "Initial Catalog...",
        "Cannot checkout: Not enough copies of C Programming.",
        "Cannot checkin: Book 'Dune' not found.",
    ] {
        assert!(library.stdout.contains(expected), "{expected}\n{library}");
    }

    let simple = example(&lab, "101.simpleserver");
    assert_eq!(simple.code, Some(0), "{simple}");
    assert!(
        simple.stdout.contains(
            "<class 'str'> SERVER RECEIVED: Hello, server!\n\
             <class 'str'> SERVER RECEIVED: This response will be delayed by 2 seconds.\n\
             <class 'int'> 2000"
        ),
        "{simple}"
    );

    // The example's last line is refused, as PyroLab refuses it.
    let locking = example(&lab, "locking");
    assert_eq!(locking.code, Some(1), "{locking}");
    assert!(locking.stdout.contains("<class 'int'> 2000"), "{locking}");
    assert!(
        locking
            .stderr
            .contains("ConnectionRefusedError: Pyro object is locked"),
        "{locking}"
    );
    // Its lock went with its connection.
    let after = example(&lab, "101.simpleserver");
    assert_eq!(after.code, Some(0), "{after}");

    let autoconnect = example(&lab, "autoconnect");
    assert_eq!(autoconnect.code, Some(0), "{autoconnect}");
    assert!(
        autoconnect
            .stdout
            .contains("<class 'bool'> True\n<class 'bool'> True"),
        "{autoconnect}"
    );
}

/// A lab whose one name server is ours and whose one service is PyroLab's
/// own: a Python LockableDaemon script run as a `command` component,
/// ready once its name is registered and its daemon answers.
fn lab_running_a_python_daemon_script() -> Lab {
    let sandbox = Sandbox::new();
    let ns_port = free_port();
    let pyrolab_files = sandbox.path().join("pyrolab");
    let text = format!(
        "version: '1.0'
nameservers:
  production: {{host: 127.0.0.1, ns_port: {ns_port}}}
commands:
  legacy:
    run: [{python}, {script}, 127.0.0.1, '{ns_port}', python.legacy]
    env:
      PYROLAB_DATA_DIR: {pyrolab_files}
      PYROLAB_NO_VERSION_CHECK: 1
    ready: {{name: python.legacy}}
autolaunch:
  nameservers: [production]
  commands: [legacy]
",
        python = python_with_pyro5().display(),
        script = repo_root()
            .join("tests/python/pyrolab_daemon_script.py")
            .display(),
        pyrolab_files = pyrolab_files.display(),
    );
    let config = sandbox.path().join("lab.yaml");
    fs::write(&config, text).expect("write lab.yaml");
    Lab {
        sandbox,
        ns_port,
        config,
    }
}

#[test]
fn a_pyrolab_python_daemon_script_runs_as_a_command_and_is_restarted_after_kill_9() {
    let lab = lab_running_a_python_daemon_script();
    let up = lab.up().success();
    assert!(
        up.stdout
            .lines()
            .any(|l| l.contains("legacy") && l.contains("command")),
        "{up}"
    );
    let legacy = lab.component("legacy");
    assert_eq!(legacy["kind"], "command", "{legacy:#}");
    assert_eq!(legacy["status"], "running", "{legacy:#}");
    assert!(
        legacy["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "its daemon's address, from its registration: {legacy:#}"
    );
    let first_pid = lab.pid("legacy");
    let service = service_status(&lab, "python.legacy");
    assert_eq!(service["daemon"], "legacy", "{service:#}");
    assert_eq!(
        service["registered_with"],
        serde_json::json!(["production"])
    );

    // Stock Pyro5 reaches it by name through our name server, and locks it.
    let client = format!(
        "import Pyro5.api\n\
         p = Pyro5.api.Proxy('PYRONAME:python.legacy@127.0.0.1:{}')\n\
         assert p.lock('py') is True\n\
         print(p.echo('hello'))\n\
         print(p.islocked())\n\
         p.unlock()\n",
        lab.ns_port
    );
    let reached = python(&client, "serpent", lab.sandbox.path()).success();
    assert_eq!(
        reached.stdout, "SERVER RECEIVED: hello\nTrue\n",
        "{reached}"
    );

    // kill -9: the manager starts it again, and it is reached again.
    kill_9(first_pid);
    let restarted = wait_until(Duration::from_secs(90), || {
        let c = lab.component("legacy");
        c["status"] == "running" && c["restarts"] == 1 && c["pid"] != first_pid
    });
    assert!(restarted, "not restarted: {:#}", lab.component("legacy"));
    let reached = python(&client, "msgpack", lab.sandbox.path()).success();
    assert_eq!(
        reached.stdout, "SERVER RECEIVED: hello\nTrue\n",
        "{reached}"
    );

    // Its output, stdout and stderr, is in its log, with the manager's
    // notes on what happened.
    let logs = run_host(lab.host().args(["logs", "legacy", "-n", "100"])).success();
    assert_eq!(
        logs.stdout
            .matches("serving python.legacy at PYRO:")
            .count(),
        2,
        "{logs}"
    );
    assert!(logs.stdout.contains("a line on stderr"), "{logs}");
    assert!(logs.stdout.contains("killed by SIGKILL"), "{logs}");
    assert!(
        logs.stdout
            .contains("ready: python.legacy is on name server production"),
        "{logs}"
    );

    // A manager killed by kill -9 leaves the command running (it has no
    // stdin pipe to notice by); the next `up` stops it before starting
    // its own.
    let orphan = lab.pid("legacy");
    let manager = lab.manager_pid();
    kill_9(manager);
    assert!(wait_until(Duration::from_secs(10), || !process_running(
        manager
    )));
    assert!(process_running(orphan));
    lab.up().success();
    assert!(
        !process_running(orphan),
        "the old command outlived the new up"
    );
    let legacy = lab.component("legacy");
    assert_eq!(legacy["status"], "running", "{legacy:#}");

    // Stopped on request: SIGTERM, and not started again.
    let second_pid = lab.pid("legacy");
    let stopped = run_host(lab.host().args(["stop", "command", "legacy"])).success();
    assert!(
        stopped.stdout.contains("command legacy: stopped"),
        "{stopped}"
    );
    assert!(
        wait_until(Duration::from_secs(10), || !process_running(second_pid)),
        "pid {second_pid} still runs"
    );
    assert_eq!(lab.component("legacy")["status"], "stopped");
}

fn kill_9(pid: u32) {
    let killed = run(
        Command::new("kill").args(["-9", &pid.to_string()]),
        Duration::from_secs(10),
    );
    assert_eq!(killed.code, Some(0), "{killed}");
}
