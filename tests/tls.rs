//! TLS end to end: a lab CA made by `pyrolab-host tls`, a name server and a
//! lockable daemon serving TLS with client certificates required, and stock
//! Python Pyro5 clients set up by the `PYRO_SSL_*` variables alone (an
//! unchanged script), the Rust client and the CLI: calls, locks and
//! `PYRONAME` lookups with a certificate of the lab; refused, and logged,
//! without one, with one from another CA, and with an expired one.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use pyrolab_host::client::Proxy;
use pyrolab_host::tls::ClientTls;
use pyrolab_host::tls::authority::{Authority, Request, Usage};
use pyrolab_test_support::{
    Background, Output, Sandbox, free_port, python_with_pyro5, repo_root, run, wait_until,
};

const SERIALIZERS: &[&str] = &["serpent", "json", "msgpack"];

/// A client's TLS: the CA it trusts and the certificate it presents.
struct Credentials {
    ca: PathBuf,
    identity: Option<(PathBuf, PathBuf)>,
}

impl Credentials {
    /// Sets Pyro5's variables on `command` (both our CLI and Python read
    /// them).
    fn apply(&self, command: &mut Command) {
        command
            .env("PYRO_SSL", "1")
            .env("PYRO_SSL_CACERTS", &self.ca);
        match &self.identity {
            Some((cert, key)) => command
                .env("PYRO_SSL_CLIENTCERT", cert)
                .env("PYRO_SSL_CLIENTKEY", key),
            None => command
                .env_remove("PYRO_SSL_CLIENTCERT")
                .env_remove("PYRO_SSL_CLIENTKEY"),
        };
    }
}

/// Access rules for the lab, as YAML lines: the lab's (`access:` at the
/// top), the name server's and the service's (indented for their entry).
#[derive(Default)]
struct Rules {
    lab: &'static str,
    nameserver: &'static str,
    service: &'static str,
}

/// A lab with TLS: its CA and certificates, a name server and a lockable
/// daemon registered with it.
struct TlsLab {
    sandbox: Sandbox,
    nameserver: Background,
    daemon: Background,
    ns_port: u16,
    daemon_location: String,
}

impl TlsLab {
    fn start() -> TlsLab {
        TlsLab::start_with(&Rules::default())
    }

    fn start_with(rules: &Rules) -> TlsLab {
        let sandbox = Sandbox::new();
        sandbox.install_plugin("sample");
        run_tls(&sandbox, &["init", "--name", "test"]);
        run_tls(&sandbox, &["issue", "ns", "--host", "127.0.0.1"]);
        run_tls(&sandbox, &["issue", "lab", "--host", "127.0.0.1"]);
        for person in ["alice", "bob", "admin", "mallory"] {
            run_tls(&sandbox, &["issue", person, "--client"]);
        }
        let ns_port = free_port();
        let config = sandbox.path().join("lab.yaml");
        fs::write(
            &config,
            format!(
                "version: '1.0'
plugin_dirs: [{plugins}]
tls:
  require_client_cert: true
{lab}nameservers:
  ns:
    host: 127.0.0.1
    ns_port: {ns_port}
{ns}daemons:
  lab: {{classname: LockableDaemon, host: 127.0.0.1, port: 0, nameservers: [ns]}}
services:
  sample:
    module: sample
    classname: SampleService
    daemon: lab
    nameservers: [ns]
{service}",
                plugins = sandbox.plugin_dir().display(),
                lab = rules.lab,
                ns = rules.nameserver,
                service = rules.service,
            ),
        )
        .expect("write lab.yaml");
        let mut nameserver = Background::start(
            sandbox
                .host()
                .args(["run", "nameserver", "ns", "--config"])
                .arg(&config),
        );
        nameserver.wait_for_line("name server ns listening on ", Duration::from_secs(30));
        let mut daemon = Background::start(
            sandbox
                .host()
                .args(["run", "daemon", "lab", "--config"])
                .arg(&config),
        );
        let line = daemon.wait_for_line("daemon lab listening on ", Duration::from_secs(30));
        let daemon_location = line.rsplit(' ').next().expect("a location").to_owned();
        let lab = TlsLab {
            sandbox,
            nameserver,
            daemon,
            ns_port,
            daemon_location,
        };
        // Registered over TLS, with the daemon's own certificate.
        let by_name = format!("PYRONAME:sample@127.0.0.1:{ns_port}");
        let alice = lab.credentials("alice");
        assert!(
            wait_until(Duration::from_secs(30), || lab
                .call(Some(&alice), &by_name)
                .code
                == Some(0)),
            "the daemon did not register over TLS"
        );
        lab
    }

    fn authority(&self) -> Authority {
        Authority::at(self.sandbox.data_dir().join("tls"))
    }

    fn credentials(&self, identity: &str) -> Credentials {
        let authority = self.authority();
        Credentials {
            ca: authority.ca_cert(),
            identity: Some((authority.cert_path(identity), authority.key_path(identity))),
        }
    }

    fn anonymous(&self) -> Credentials {
        Credentials {
            ca: self.authority().ca_cert(),
            identity: None,
        }
    }

    /// The unchanged Python script, with `credentials` and `serializer`.
    fn python(&self, credentials: &Credentials, serializer: &str) -> Output {
        let mut command = Command::new(python_with_pyro5());
        command
            .arg(repo_root().join("tests/python/tls_client.py"))
            .args([&self.ns_port.to_string(), "sample"])
            .env("PYRO_SERIALIZER", serializer);
        credentials.apply(&mut command);
        run(&mut command, Duration::from_secs(60))
    }

    /// `pyrolab-host call`, with `credentials` (none: plain TCP).
    fn call(&self, credentials: Option<&Credentials>, uri: &str) -> Output {
        let mut command = self.sandbox.host();
        command.args(["call", uri, "echo", "from the CLI"]);
        if let Some(credentials) = credentials {
            credentials.apply(&mut command);
        }
        run(&mut command, Duration::from_secs(60))
    }

    /// A Rust client's proxy for `uri` with `credentials`.
    fn rust_proxy(&self, uri: &str, credentials: &Credentials) -> Proxy {
        let identity = credentials
            .identity
            .as_ref()
            .map(|(cert, key)| (cert.as_path(), key.as_path()));
        let tls = ClientTls::load(&credentials.ca, identity).expect("the client's TLS");
        let mut proxy = Proxy::new(uri.parse().expect("a URI"));
        proxy.set_timeout(Some(Duration::from_secs(30)));
        proxy.set_tls(Some(tls));
        proxy
    }

    /// Stops both servers and returns what they logged.
    fn stop(self) -> String {
        let daemon = self.daemon.stop();
        let nameserver = self.nameserver.stop();
        format!("{daemon}\n{nameserver}")
    }
}

fn run_tls(sandbox: &Sandbox, args: &[&str]) -> Output {
    run(
        sandbox.host().arg("tls").args(args),
        Duration::from_secs(60),
    )
    .success()
}

/// A certificate for `name` from a CA of its own, in `dir`.
fn foreign_credentials(dir: &Path, name: &str) -> Credentials {
    let authority = Authority::at(dir);
    authority.init("elsewhere", 30).expect("a second CA");
    authority
        .issue(&Request::new(name, Usage::Client, vec![], 30))
        .expect("a certificate of the second CA");
    Credentials {
        ca: authority.ca_cert(),
        identity: Some((authority.cert_path(name), authority.key_path(name))),
    }
}

#[test]
fn stock_python_clients_call_lock_and_look_up_over_tls_with_a_lab_certificate() {
    let lab = TlsLab::start();
    let alice = lab.credentials("alice");
    for serializer in SERIALIZERS {
        let output = lab.python(&alice, serializer).success();
        for step in [
            "lookup PYRO:sample@",
            "echo SERVER RECEIVED: over TLS",
            "lock True",
            "locked SERVER RECEIVED: while locked",
            "release True",
            "stream 499500",
            "bulk 1048576 True",
        ] {
            assert!(
                output.stdout.contains(step),
                "{serializer}: no {step:?}\n{output}"
            );
        }
    }
    // The Rust client and the CLI, by the same variables.
    let by_name = format!("PYRONAME:sample@127.0.0.1:{}", lab.ns_port);
    let output = lab.call(Some(&alice), &by_name).success();
    assert_eq!(output.stdout.trim(), "\"SERVER RECEIVED: from the CLI\"");
    let direct = format!("PYRO:sample@{}", lab.daemon_location);
    lab.call(Some(&alice), &direct).success();
    // The Rust client as a program uses it.
    let proxy = lab.rust_proxy(&direct, &alice);
    let echoed: String = proxy.call("echo", ("from Rust",)).expect("a call over TLS");
    assert_eq!(echoed, "SERVER RECEIVED: from Rust");
    assert!(proxy.call::<bool>("lock", ()).expect("lock"));
    assert!(proxy.call::<bool>("release", ()).expect("release"));
    // Plain TCP to a TLS daemon: told what to set.
    let output = lab.call(None, &direct).failure(1);
    assert!(output.stderr.contains("speaks TLS"), "{output}");
    assert!(output.stderr.contains("PYRO_SSL=1"), "{output}");
    lab.stop();
}

#[test]
fn clients_without_a_valid_lab_certificate_are_refused_and_logged() {
    let lab = TlsLab::start();
    let foreign = foreign_credentials(&lab.sandbox.path().join("other-ca"), "mallory");
    // Trusting the lab CA, presenting a certificate the lab did not issue.
    let impostor = Credentials {
        ca: lab.authority().ca_cert(),
        identity: foreign.identity.clone(),
    };
    let mut expired = Request::new("carol", Usage::Client, vec![], 1);
    expired.not_before = SystemTime::now() - Duration::from_secs(30 * 86_400);
    expired.not_after = SystemTime::now() - Duration::from_secs(86_400);
    lab.authority()
        .issue(&expired)
        .expect("an expired certificate");
    let expired = lab.credentials("carol");
    let cases = [
        ("no certificate", lab.anonymous()),
        ("another CA's certificate", impostor),
        ("an expired certificate", expired),
    ];
    let direct = format!("PYRO:sample@{}", lab.daemon_location);
    for (case, credentials) in &cases {
        let output = lab.python(credentials, "serpent");
        assert_eq!(
            output.code,
            Some(1),
            "{case}: Python was not refused\n{output}"
        );
        assert!(
            output.stderr.contains("CommunicationError") || output.stderr.contains("NamingError"),
            "{case}: {output}"
        );
        let output = lab.call(Some(credentials), &direct).failure(1);
        assert!(output.stderr.contains("TLS"), "{case}: {output}");
        let refused = lab
            .rust_proxy(&direct, credentials)
            .call::<String>("echo", ("x",));
        assert!(refused.is_err(), "{case}: the Rust client was not refused");
    }
    // The lab still serves those with a certificate of its own.
    lab.python(&lab.credentials("alice"), "serpent").success();
    let logs = lab.stop();
    for reason in [
        "peer sent no certificates",
        "invalid peer certificate: UnknownIssuer",
        "invalid peer certificate: certificate expired",
    ] {
        assert!(logs.contains(reason), "no {reason:?} in the logs:\n{logs}");
    }
}

#[test]
fn a_listener_beyond_loopback_without_tls_refuses_to_start_unless_insecure() {
    let sandbox = Sandbox::new();
    sandbox.install_plugin("sample");
    let config = |insecure: &str| {
        let path = sandbox.path().join("open.yaml");
        fs::write(
            &path,
            format!(
                "version: '1.0'
plugin_dirs: [{plugins}]
nameservers:
  ns: {{host: 0.0.0.0, ns_port: 0{insecure}}}
daemons:
  lab: {{host: 0.0.0.0, port: 0{insecure}}}
services:
  sample: {{module: sample, classname: SampleService, daemon: lab}}
",
                plugins = sandbox.plugin_dir().display()
            ),
        )
        .expect("write open.yaml");
        path
    };
    let refused = config("");
    for (kind, name, what) in [
        ("daemon", "lab", "daemon lab"),
        ("nameserver", "ns", "name server ns"),
    ] {
        let output = run(
            sandbox
                .host()
                .args(["run", kind, name, "--config"])
                .arg(&refused),
            Duration::from_secs(60),
        )
        .failure(1);
        let errors: Vec<&str> = output
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{output}");
        assert!(
            errors[0].starts_with(&format!("error: {what}: refusing to listen on 0.0.0.0:"))
                && errors[0].contains("without TLS")
                && errors[0].contains("insecure: true"),
            "{output}"
        );
    }
    // The monitor too.
    let output = run(
        sandbox
            .host()
            .args(["monitor", "--host", "0.0.0.0", "--port", "0"]),
        Duration::from_secs(60),
    )
    .failure(1);
    assert!(
        output.stderr.contains("refusing to listen on 0.0.0.0:")
            && output.stderr.contains("--insecure"),
        "{output}"
    );
    // Allowed explicitly, it starts and says so.
    let allowed = config(", insecure: true");
    let mut daemon = Background::start(
        sandbox
            .host()
            .args(["run", "daemon", "lab", "--config"])
            .arg(&allowed),
    );
    daemon.wait_for_line("daemon lab listening on 0.0.0.0:", Duration::from_secs(30));
    let output = daemon.stop();
    assert!(
        output.stderr.contains("listens on 0.0.0.0:")
            && output.stderr.contains("without TLS (insecure: true)"),
        "{output}"
    );
}

/// The rules the access tests run under: anyone of the lab may call, only
/// alice and admin lock, only admin force-releases and touches others'
/// names.
const ACCESS_RULES: Rules = Rules {
    lab: "access:\n  force_release: [admin]\n",
    nameserver: "    access: {register: [lab, alice, bob], remove: [lab, alice, bob], manage: [admin]}\n",
    service: "    access: {call: [alice, bob, admin], lock: [alice, admin]}\n",
};

impl TlsLab {
    /// One step of `access_flows.py` as `identity`: `ok ...` or
    /// `refused CLASS: MESSAGE`.
    fn step(&self, identity: &str, step: &[&str]) -> String {
        let mut command = Command::new(python_with_pyro5());
        command
            .arg(repo_root().join("tests/python/access_flows.py"))
            .arg(self.ns_port.to_string())
            .args(step);
        self.credentials(identity).apply(&mut command);
        let output = run(&mut command, Duration::from_secs(60)).success();
        output.stdout.trim().to_owned()
    }
}

#[track_caller]
fn assert_refused(answer: &str, what: &str) {
    assert!(
        answer.starts_with("refused PermissionError: access denied: ") && answer.contains(what),
        "expected a PermissionError naming {what:?}, got {answer:?}"
    );
}

#[test]
fn only_identities_with_the_right_may_lock_force_release_and_touch_others_names() {
    let lab = TlsLab::start_with(&ACCESS_RULES);
    // Calls: anyone the service names.
    assert!(lab.step("bob", &["call"]).starts_with("ok SERVER RECEIVED"));
    // Locks: bob may not; alice may, and holds it.
    assert_refused(
        &lab.step("bob", &["lock"]),
        "may not lock or unlock service sample",
    );
    let mut holder = Command::new(python_with_pyro5());
    holder
        .arg(repo_root().join("tests/python/access_flows.py"))
        .args([&lab.ns_port.to_string(), "hold"]);
    lab.credentials("alice").apply(&mut holder);
    let mut holder = Background::start_holding_stdin(&mut holder);
    holder.wait_for_line("ok True", Duration::from_secs(60));
    // Force-release: bob may not; admin may.
    assert_refused(
        &lab.step("bob", &["release"]),
        "may not force-release the lock of service sample",
    );
    assert_eq!(lab.step("admin", &["release"]), "ok True");
    holder.close_stdin();
    holder.stop();
    // Names: bob may not remove the daemon's, nor all of them; alice may
    // not remove bob's; admin may.
    assert_refused(
        &lab.step("bob", &["remove", "sample"]),
        "sample, which \"lab\" registered",
    );
    assert_refused(
        &lab.step("bob", &["remove-regex", ".*"]),
        "which \"lab\" registered",
    );
    assert_eq!(lab.step("bob", &["register", "bob.scope"]), "ok None");
    assert_refused(
        &lab.step("alice", &["register", "bob.scope"]),
        "replace bob.scope",
    );
    assert_refused(
        &lab.step("alice", &["remove", "bob.scope"]),
        "remove bob.scope",
    );
    assert_refused(
        &lab.step("mallory", &["register", "mallory.thing"]),
        "may not register names",
    );
    assert_eq!(lab.step("admin", &["remove", "bob.scope"]), "ok 1");
    assert_eq!(lab.step("bob", &["register", "bob.scope"]), "ok None");
    assert_eq!(lab.step("bob", &["remove", "bob.scope"]), "ok 1", "its own");
    // The daemon's names are all still there.
    assert!(lab.step("bob", &["call"]).starts_with("ok SERVER RECEIVED"));
    let logs = lab.stop();
    for refusal in [
        "refused: access denied: \"bob\" may not lock or unlock service sample",
        "refused: access denied: \"bob\" may not force-release the lock of service sample",
        "refused: access denied: \"bob\" may not remove sample, which \"lab\" registered",
        "refused: access denied: \"alice\" may not remove bob.scope",
        "refused: access denied: \"mallory\" may not register names",
    ] {
        assert!(
            logs.contains(refusal),
            "no {refusal:?} in the logs:\n{logs}"
        );
    }
    // A lock taken without a user name is held in the caller's.
    assert!(logs.contains("locked service=sample user=alice"), "{logs}");
    assert!(
        logs.contains("identity=\"bob\" peer=\"127.0.0.1:"),
        "refusals name the identity and address:\n{logs}"
    );
}

#[test]
fn a_stalled_or_garbled_tls_handshake_closes_only_that_connection() {
    use std::io::{Read, Write};
    let lab = TlsLab::start_with(&Rules {
        lab: "",
        nameserver: "",
        service: "",
    });
    let address: std::net::SocketAddr = lab.daemon_location.parse().expect("an address");
    // Sends nothing at all; half a ClientHello; then garbage.
    let stalled = std::net::TcpStream::connect(address).expect("connect");
    let mut half = std::net::TcpStream::connect(address).expect("connect");
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .expect("half a hello");
    let mut garbage = std::net::TcpStream::connect(address).expect("connect");
    garbage.write_all(&[0xff; 64]).expect("garbage");
    // Meanwhile the lab serves everyone else.
    let alice = lab.credentials("alice");
    lab.python(&alice, "serpent").success();
    for (what, mut socket) in [("stalled", stalled), ("half", half), ("garbage", garbage)] {
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        let closed = socket.read_to_end(&mut rest);
        assert!(
            closed.is_ok()
                || closed
                    .as_ref()
                    .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
            "{what}: {closed:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: closed only after {:?}",
            started.elapsed()
        );
    }
    // The daemon logs a cut just after making it.
    std::thread::sleep(Duration::from_millis(500));
    let logs = lab.stop();
    assert!(logs.contains("TLS: the peer does not speak TLS"), "{logs}");
    assert!(logs.contains("no handshake within 5 s"), "{logs}");
}

/// The other direction: a stock Pyro5 daemon in SSL mode (client
/// certificates required, set by Pyro5's own variables), called by our CLI
/// with a certificate of the lab CA, and refused without one.
#[test]
fn our_cli_calls_a_stock_pyro5_daemon_over_tls() {
    let sandbox = Sandbox::new();
    run_tls(&sandbox, &["init"]);
    run_tls(
        &sandbox,
        &["issue", "stock", "--server", "--host", "127.0.0.1"],
    );
    run_tls(&sandbox, &["issue", "alice", "--client"]);
    let authority = Authority::at(sandbox.data_dir().join("tls"));
    let mut stock = Command::new(python_with_pyro5());
    stock
        .args([
            "-u",
            "-c",
            "import Pyro5.api\n\
             @Pyro5.api.expose\n\
             class Echo:\n\
             \x20   def echo(self, message):\n\
             \x20       return 'stock: ' + message\n\
             daemon = Pyro5.api.Daemon(host='127.0.0.1', port=0)\n\
             print('uri', daemon.register(Echo, 'echo'))\n\
             daemon.requestLoop()",
        ])
        .env("PYRO_SSL", "1")
        .env("PYRO_SSL_SERVERCERT", authority.cert_path("stock"))
        .env("PYRO_SSL_SERVERKEY", authority.key_path("stock"))
        .env("PYRO_SSL_CACERTS", authority.ca_cert())
        .env("PYRO_SSL_REQUIRECLIENTCERT", "1");
    let mut stock = Background::start(&mut stock);
    let line = stock.wait_for_line("uri ", Duration::from_secs(60));
    let uri = line.trim_start_matches("uri ").trim().to_owned();
    let call = |credentials: &Credentials| {
        let mut command = sandbox.host();
        command.args(["call", &uri, "echo", "from Rust"]);
        credentials.apply(&mut command);
        run(&mut command, Duration::from_secs(60))
    };
    let alice = Credentials {
        ca: authority.ca_cert(),
        identity: Some((authority.cert_path("alice"), authority.key_path("alice"))),
    };
    let output = call(&alice).success();
    assert_eq!(output.stdout.trim(), "\"stock: from Rust\"", "{output}");
    let anonymous = Credentials {
        ca: authority.ca_cert(),
        identity: None,
    };
    let output = call(&anonymous).failure(1);
    assert!(output.stderr.contains("TLS"), "{output}");
    stock.stop();
}
