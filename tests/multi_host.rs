//! A lab of three hosts on one machine: each host a network namespace
//! with its own address on one switch (a bridge in a namespace of its
//! own), made here and removed afterwards (needs root and iproute2).
//!
//! - host1 (10.77.0.1): name server `ns1`, daemon `d1` (service `s1`);
//! - host2 (10.77.0.2): name server `ns2`, daemon `d2` (service `s2`);
//! - host3 (10.77.0.3): the PostgreSQL server both name servers share,
//!   and the web monitor.
//!
//! Every host runs `pyrolab-host up` with a `manager:` section, over the
//! lab's TLS; `admin` may act on any host, `alice` may only read.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use pyrolab_test_support::managed_lab::Lab;
use pyrolab_test_support::postgres::Postgres;
use pyrolab_test_support::{
    Output, Sandbox, copy_tree, free_port, process_running, python_with_pyro5, repo_root, run,
    run_host, wait_until,
};

const SUBNET: &str = "10.77.0";

/// The namespaces: a switch and the hosts, deleted when dropped.
struct Network {
    prefix: String,
    hosts: usize,
}

impl Network {
    fn new(hosts: usize) -> Network {
        assert!(
            rustix::process::geteuid().is_root(),
            "the multi-host test makes network namespaces: it needs root and iproute2 (`ip`)"
        );
        let network = Network {
            prefix: format!("pl{}", std::process::id()),
            hosts,
        };
        let switch = network.switch();
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        for host in 1..=hosts {
            let ns = network.namespace(host);
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            let (inside, port) = (format!("{}h{host}", network.prefix), network.port(host));
            ip(&[
                "link", "add", &inside, "type", "veth", "peer", "name", &port,
            ]);
            ip(&["link", "set", &inside, "netns", &ns, "name", "eth0"]);
            ip(&["link", "set", &port, "netns", &switch]);
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"]);
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", address(host)),
                "dev",
                "eth0",
            ]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            // Broadcasts (a Python client's locate_ns) go out on the lab's
            // network, and nowhere else: there is nothing else.
            ip(&["-n", &ns, "route", "add", "default", "dev", "eth0"]);
        }
        network
    }

    fn switch(&self) -> String {
        format!("{}-sw", self.prefix)
    }

    fn namespace(&self, host: usize) -> String {
        format!("{}-h{host}", self.prefix)
    }

    /// The switch's port host `host` is plugged into.
    fn port(&self, host: usize) -> String {
        format!("{}p{host}", self.prefix)
    }

    /// Unplugs host `host` from the switch (`up: false`), or plugs it in.
    fn link(&self, host: usize, up: bool) {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.switch(), "link", "set", &self.port(host), state]);
    }

    /// `command` run on host `host`.
    fn on(&self, host: usize, command: &Command) -> Command {
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", &self.namespace(host)])
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        wrapped
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for host in 1..=self.hosts {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.namespace(host)])
                .status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch()])
            .status();
    }
}

fn ip(args: &[&str]) {
    let done = run(Command::new("ip").args(args), Duration::from_secs(30));
    assert_eq!(done.code, Some(0), "ip {}\n{done}", args.join(" "));
}

fn address(host: usize) -> String {
    format!("{SUBNET}.{host}")
}

/// The lab's CA and certificates, made once and copied to every host.
fn certificates(scratch: &Sandbox) -> PathBuf {
    let issue = |args: &[&str]| {
        run_host(scratch.host().arg("tls").args(args)).success();
    };
    issue(&["init", "--name", "three hosts"]);
    issue(&["issue", "ns1", "--host", &address(1)]);
    issue(&["issue", "d1", "--host", &address(1)]);
    issue(&["issue", "ns2", "--host", &address(2)]);
    issue(&["issue", "d2", "--host", &address(2)]);
    issue(&[
        "issue",
        "manager",
        "--host",
        &address(1),
        "--host",
        &address(2),
        "--host",
        &address(3),
    ]);
    issue(&["issue", "monitor", "--host", &address(3)]);
    issue(&["issue", "admin", "--client"]);
    issue(&["issue", "alice", "--client"]);
    scratch.data_dir().join("tls")
}

/// `PYRO_SSL_*` for `identity`, as both our CLI and Python read them.
fn as_identity(command: &mut Command, tls: &Path, identity: &str) {
    command
        .env("PYRO_SSL", "1")
        .env("PYRO_SSL_CACERTS", tls.join("ca.crt"))
        .env("PYRO_SSL_CLIENTCERT", tls.join(format!("{identity}.crt")))
        .env("PYRO_SSL_CLIENTKEY", tls.join(format!("{identity}.key")));
}

struct ThreeHosts {
    // Dropped in this order: the labs (`down`), the database, then the
    // network they ran on.
    labs: Vec<Lab>,
    postgres: Postgres,
    tls: PathBuf,
    ports: Ports,
    _scratch: Sandbox,
    network: Network,
}

/// The lab's ports (any: each host's namespace has all of them free).
struct Ports {
    ns1: u16,
    ns2: u16,
    broadcast: u16,
    monitor: u16,
}

impl ThreeHosts {
    fn start() -> ThreeHosts {
        let network = Network::new(3);
        let scratch = Sandbox::new();
        let tls = certificates(&scratch);
        let postgres = Postgres::start_on(&address(3), Some(&network.namespace(3)));
        let ports = Ports {
            ns1: free_port(),
            ns2: free_port(),
            broadcast: free_port(),
            monitor: free_port(),
        };
        let url = postgres.url();
        let nameservers = format!(
            "nameservers:
  ns1: {{host: {h1}, ns_port: {p1}, storage: postgresql, storage_url: '{url}', broadcast: true, ns_bchost: 0.0.0.0, ns_bcport: {bc}, ns_autoclean: 3}}
  ns2: {{host: {h2}, ns_port: {p2}, storage: postgresql, storage_url: '{url}', broadcast: true, ns_bchost: 0.0.0.0, ns_bcport: {bc}, ns_autoclean: 3}}
",
            h1 = address(1),
            h2 = address(2),
            p1 = ports.ns1,
            p2 = ports.ns2,
            bc = ports.broadcast,
        );
        let own = |host: usize| match host {
            1 | 2 => format!(
                "daemons:
  d{host}: {{host: {a}, nameservers: [ns1, ns2]}}
services:
  s{host}: {{module: sample, classname: SampleService, daemon: d{host}, nameservers: [ns1, ns2]}}
autolaunch: {{nameservers: [ns{host}], daemons: [d{host}]}}
",
                a = address(host)
            ),
            _ => format!(
                "monitor: {{host: {a}, port: {port}, polling: 0.5}}\n",
                a = address(host),
                port = ports.monitor
            ),
        };
        let mut labs = Vec::new();
        for host in 1..=3 {
            let sandbox = Sandbox::new();
            sandbox.install_plugin("sample");
            copy_tree(&tls, &sandbox.data_dir().join("tls"));
            let text = format!(
                "version: '1.0'
plugin_dirs: [{plugins}]
tls: {{require_client_cert: true}}
{nameservers}{own}manager: {{name: host{host}, host: {a}, access: {{act: [admin]}}}}
",
                plugins = sandbox.plugin_dir().display(),
                own = own(host),
                a = address(host),
            );
            let config = sandbox.path().join("lab.yaml");
            fs::write(&config, text).expect("write lab.yaml");
            labs.push(Lab {
                sandbox,
                ns_port: ports.ns1,
                config,
            });
        }
        let hosts = ThreeHosts {
            labs,
            postgres,
            tls,
            ports,
            _scratch: scratch,
            network,
        };
        // Name server hosts first, so that daemons find both at once.
        for host in [1, 2, 3] {
            let lab = hosts.lab(host);
            let up = hosts.run(
                host,
                "admin",
                lab.host().arg("up").arg("--config").arg(&lab.config),
            );
            assert_eq!(up.code, Some(0), "up on host{host}\n{up}");
        }
        hosts
    }

    fn lab(&self, host: usize) -> &Lab {
        &self.labs[host - 1]
    }

    /// `command` on host `host` as `identity`.
    fn run(&self, host: usize, identity: &str, command: &mut Command) -> Output {
        as_identity(command, &self.tls, identity);
        run(
            &mut self.network.on(host, command),
            Duration::from_secs(120),
        )
    }

    /// `pyrolab-host ARGS` on host `host` (with its stored configuration)
    /// as `identity`.
    fn cli(&self, host: usize, identity: &str, args: &[&str]) -> Output {
        self.run(host, identity, self.lab(host).host().args(args))
    }

    fn lab_status(&self, from: usize) -> serde_json::Value {
        let output = self.cli(from, "alice", &["ps", "--lab", "--json"]);
        assert_eq!(output.code, Some(0), "{output}");
        serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output}"))
    }

    /// The monitor's `/api/hosts`, over HTTPS, from host 3.
    fn monitor_hosts(&self) -> serde_json::Value {
        let url = format!("https://{}:{}/api/hosts", address(3), self.ports.monitor);
        let mut get = Command::new(python_with_pyro5());
        get.arg(repo_root().join("tests/python/https_get.py"))
            .arg(&self.tls)
            .arg(&url)
            .arg("admin");
        let output = run(&mut self.network.on(3, &get), Duration::from_secs(30));
        serde_json::from_str(&output.stdout).unwrap_or_else(|e| panic!("{e}: {output}"))
    }

    /// A stock Python Pyro5 client on host `host` that finds a name server
    /// by broadcast (`locate_ns()`), looks `service` up and calls it.
    fn python_by_broadcast(&self, host: usize, service: &str) -> Output {
        let script = format!(
            "import Pyro5.api\n\
             ns = Pyro5.api.locate_ns()\n\
             print('found', ns._pyroUri.location)\n\
             print(Pyro5.api.Proxy(ns.lookup({service:?})).echo('by broadcast'))\n"
        );
        let mut python = Command::new(python_with_pyro5());
        python
            .args(["-c", &script])
            .env("PYRO_NS_BCPORT", self.ports.broadcast.to_string())
            .env("PYRO_SERIALIZER", "serpent")
            .env("PYROLAB_NO_VERSION_CHECK", "1")
            .env_remove("PYRO_NS_HOST")
            .env_remove("PYRO_NS_PORT");
        self.run(host, "alice", &mut python)
    }
}

fn host<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["hosts"]
        .as_array()
        .and_then(|hosts| hosts.iter().find(|h| h["host"] == name))
        .unwrap_or_else(|| panic!("no host {name} in {status:#}"))
}

fn component<'a>(host: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    host["status"]["components"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no component {name} in {host:#}"))
}

fn registered_with(host: &serde_json::Value, service: &str) -> serde_json::Value {
    host["status"]["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == service))
        .map(|s| s["registered_with"].clone())
        .unwrap_or_default()
}

fn kill_9(pid: u64) {
    let killed = run(
        Command::new("kill").args(["-9", &pid.to_string()]),
        Duration::from_secs(10),
    );
    assert_eq!(killed.code, Some(0), "{killed}");
}

#[test]
fn a_lab_of_three_hosts_survives_losing_a_name_server_and_a_manager() {
    let lab = ThreeHosts::start();

    // Every host's components, seen from every host, and by the monitor.
    let all = wait_until(Duration::from_secs(30), || {
        lab.lab_status(3)["hosts"]
            .as_array()
            .is_some_and(|hosts| hosts.len() == 3 && hosts.iter().all(|h| h["reachable"] == true))
    });
    assert!(all, "{:#}", lab.lab_status(3));
    let status = lab.lab_status(1);
    assert_eq!(component(host(&status, "host1"), "d1")["status"], "running");
    assert_eq!(component(host(&status, "host2"), "d2")["status"], "running");
    assert_eq!(
        component(host(&status, "host2"), "ns2")["status"],
        "running"
    );
    let seen = wait_until(Duration::from_secs(20), || {
        lab.monitor_hosts()["lab"]["hosts_reachable"] == 3
    });
    assert!(seen, "{:#}", lab.monitor_hosts());
    assert_eq!(lab.monitor_hosts()["lab"]["configured_running"], 4);

    // Acting on another host: admin may, alice may not.
    let refused = lab.cli(1, "alice", &["restart", "daemon", "host2/d2"]);
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused
            .stderr
            .contains("access denied: \"alice\" may not restart a component on host host2"),
        "{refused}"
    );
    let restarted = lab.cli(1, "admin", &["restart", "daemon", "host2/d2"]);
    assert_eq!(restarted.code, Some(0), "{restarted}");
    assert!(
        restarted.stdout.starts_with("daemon host2/d2: running"),
        "{restarted}"
    );

    // host1 cut off the network: no name is lost; clients resolve through
    // ns2, the Rust CLI and stock Python by broadcast alike.
    lab.network.link(1, false);
    let cut = Instant::now();
    let called = lab.cli(3, "alice", &["call", "s2", "echo", "via ns2"]);
    assert_eq!(called.code, Some(0), "{called}");
    assert!(
        called.stdout.contains("SERVER RECEIVED: via ns2"),
        "{called}"
    );
    let listed = lab.cli(3, "alice", &["nslist"]);
    assert_eq!(listed.code, Some(0), "{listed}");
    assert!(
        listed.stdout.contains("s1") && listed.stdout.contains("s2"),
        "every name kept: {listed}"
    );
    let python = lab.python_by_broadcast(3, "s2");
    assert_eq!(python.code, Some(0), "{python}");
    assert!(
        python
            .stdout
            .contains(&format!("found {}:{}", address(2), lab.ports.ns2)),
        "{python}"
    );
    assert!(
        python.stdout.contains("SERVER RECEIVED: by broadcast"),
        "{python}"
    );
    // Its manager is unreachable from the others meanwhile.
    let status = lab.lab_status(3);
    assert_eq!(host(&status, "host1")["reachable"], false, "{status:#}");
    assert!(cut.elapsed() < Duration::from_secs(60));

    // Back on the network: the daemons register with ns1 again.
    lab.network.link(1, true);
    let again = wait_until(Duration::from_secs(30), || {
        let status = lab.lab_status(3);
        host(&status, "host1")["reachable"] == true
            && registered_with(host(&status, "host2"), "s2") == serde_json::json!(["ns1", "ns2"])
    });
    assert!(again, "{:#}", lab.lab_status(3));

    // ns2 killed: nothing lost; names resolve through ns1; it comes back
    // (its manager restarts it) with the whole registry.
    let ns2 = component(host(&lab.lab_status(3), "host2"), "ns2")["pid"]
        .as_u64()
        .expect("ns2's pid");
    kill_9(ns2);
    let through_ns1 = lab.cli(3, "alice", &["call", "s1", "echo", "via ns1"]);
    assert_eq!(through_ns1.code, Some(0), "{through_ns1}");
    let back = wait_until(Duration::from_secs(30), || {
        let listed = lab.cli(2, "alice", &["nslist", "--nameserver", "ns2"]);
        listed.code == Some(0) && listed.stdout.contains("s1") && listed.stdout.contains("s2")
    });
    assert!(back, "ns2 did not come back with the registry");

    // host2's manager killed: host1 and host3 go on untouched, and host2
    // is shown unreachable within seconds.
    let manager2 = host(&lab.lab_status(3), "host2")["status"]["manager"]["pid"]
        .as_u64()
        .expect("host2's manager pid");
    let d1_before = component(host(&lab.lab_status(3), "host1"), "d1")["pid"].clone();
    kill_9(manager2);
    let killed = Instant::now();
    assert!(wait_until(Duration::from_secs(10), || !process_running(
        manager2 as u32
    )));
    let marked = wait_until(Duration::from_secs(10), || {
        lab.monitor_hosts()["hosts"]
            .as_array()
            .and_then(|hosts| hosts.iter().find(|h| h["host"] == "host2").cloned())
            .is_some_and(|h| h["reachable"] == false && h["unreachable_since"].is_string())
    });
    assert!(marked, "{:#}", lab.monitor_hosts());
    assert!(
        killed.elapsed() < Duration::from_secs(10),
        "marked after {:?}",
        killed.elapsed()
    );
    let status = lab.lab_status(3);
    assert_eq!(host(&status, "host2")["reachable"], false);
    let host1 = host(&status, "host1");
    assert_eq!(component(host1, "d1")["pid"], d1_before, "host1 untouched");
    assert_eq!(component(host1, "d1")["status"], "running");
    let called = lab.cli(3, "alice", &["call", "s1", "echo", "still"]);
    assert_eq!(called.code, Some(0), "{called}");
    drop(lab.postgres.psql("SELECT 1"));
}
