//! Name-server lookups on loopback: our name server against a stock Python
//! Pyro5 name server, from the Rust client and from the stock Python
//! client, in one run.
//!
//! Run: `cargo bench -p pyrolab-host --bench ns_lookup`
//!
//! The Python parts need the test suite's Python environment
//! (`target/python-venv`, made by `cargo test`); without it only the Rust
//! client against our name server is measured.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_host::client::NameServerProxy;
use pyrolab_host::config::schema::ServerType;
use pyrolab_host::daemon::{Daemon, DaemonSettings, NativeObject};
use pyrolab_host::nameserver::storage::MemoryStore;
use pyrolab_host::nameserver::{NAMESERVER_OBJECT, NameServer};
use pyrolab_host::net::{Bound, Listener};
use pyrolab_host::wire::serializer;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const LOOKUPS: usize = 3_000;
const TRIALS: usize = 5;
/// Names registered before measuring, so lookups search a realistic table.
const NAMES: usize = 200;

fn python() -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("bench executable");
    let python = exe
        .parent()
        .and_then(|deps| deps.parent())
        .and_then(|profile| profile.parent())
        .expect("target dir")
        .join("python-venv/bin/python");
    python.is_file().then_some(python)
}

/// Our name server in this process, on 127.0.0.1; returns its port.
fn start_our_nameserver() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let location = format!("127.0.0.1:{port}");
    let nameserver = Arc::new(NameServer::open(Box::new(MemoryStore)).unwrap());
    nameserver
        .register_self(&format!("PYRO:{NAMESERVER_OBJECT}@{location}"))
        .unwrap();
    let object: Arc<dyn NativeObject> = nameserver;
    let daemon = Daemon::with_objects(
        DaemonSettings {
            name: "bench-ns".into(),
            servertype: ServerType::Thread,
            lockable: false,
            threadpool_size: 80,
            max_connections: 256,
            max_message_size: 1 << 20,
            max_message_memory: 2 << 30,
            max_reply_size: 1 << 30,
            handshake_timeout: Some(Duration::from_secs(5)),
            idle_timeout: None,
            comm_timeout: None,
            streams: Default::default(),
            metrics: true,
        },
        Vec::new(),
        vec![(NAMESERVER_OBJECT.to_owned(), object)],
    );
    let shutdown = daemon.shutdown_handle();
    let bound = Bound {
        listener: Listener::Tcp(listener),
        location,
        tls: None,
    };
    thread::spawn(move || daemon.serve(bound, &shutdown));
    port
}

/// A stock Pyro5 name server in a Python process; returns it and its port.
fn start_stock_nameserver(python: &PathBuf) -> (Child, u16) {
    let mut child = Command::new(python)
        .args([
            "-c",
            "from Pyro5 import nameserver; nameserver.start_ns_loop('127.0.0.1', 0, enableBroadcast=False)",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the stock Pyro5 name server");
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(uri) = line.strip_prefix("URI = ") {
                let _ = sender.send(uri.to_owned());
            }
        }
    });
    let uri = receiver
        .recv_timeout(Duration::from_secs(30))
        .expect("the stock name server printed no URI within 30 s");
    let port = uri.rsplit(':').next().unwrap().parse().unwrap();
    (child, port)
}

fn register_names(ns: &NameServerProxy) {
    for i in 0..NAMES {
        ns.register(
            &format!("lab.instrument{i}"),
            &format!("PYRO:instrument{i}@127.0.0.1:5555"),
            false,
            &["pyrolab:service".to_owned()].into_iter().collect(),
        )
        .unwrap();
    }
}

fn lookups_per_second(ns: &NameServerProxy) -> f64 {
    for i in 0..LOOKUPS / 10 {
        ns.lookup(&format!("lab.instrument{}", i % NAMES)).unwrap();
    }
    let start = Instant::now();
    for i in 0..LOOKUPS {
        ns.lookup(&format!("lab.instrument{}", i % NAMES)).unwrap();
    }
    LOOKUPS as f64 / start.elapsed().as_secs_f64()
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn report(what: &str, rate: f64) {
    println!("{what:<56} {rate:>10.0} lookups/s");
}

fn main() {
    println!(
        "name-server lookup benchmark ({} cores)\n",
        thread::available_parallelism().map_or(1, |n| n.get())
    );
    let ours_port = start_our_nameserver();
    let ours = NameServerProxy::connect("127.0.0.1", ours_port, None, None).unwrap();
    register_names(&ours);
    let Some(python) = python() else {
        report(
            "Rust client -> pyrolab-host name server",
            median((0..TRIALS).map(|_| lookups_per_second(&ours)).collect()),
        );
        println!("\n(no target/python-venv: run `cargo test` once for the Python comparisons)");
        return;
    };
    let (mut stock_process, stock_port) = start_stock_nameserver(&python);
    let serpent = serializer::by_name("serpent");
    let ours_serpent = NameServerProxy::connect("127.0.0.1", ours_port, None, serpent).unwrap();
    let stock = NameServerProxy::connect("127.0.0.1", stock_port, None, serpent).unwrap();
    register_names(&stock);
    let (mut native, mut ours_s, mut stock_s) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..TRIALS {
        native.push(lookups_per_second(&ours));
        ours_s.push(lookups_per_second(&ours_serpent));
        stock_s.push(lookups_per_second(&stock));
    }
    let (ours_serpent_rate, stock_rate) = (median(ours_s), median(stock_s));
    report(
        "Rust client (native) -> pyrolab-host name server",
        median(native),
    );
    report(
        "Rust client (serpent) -> pyrolab-host name server",
        ours_serpent_rate,
    );
    report(
        "Rust client (serpent) -> stock Pyro5 name server",
        stock_rate,
    );
    println!(
        "{:<56} {:>9.1}x",
        "  pyrolab-host vs stock Pyro5 (Rust client, serpent)",
        ours_serpent_rate / stock_rate
    );
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/ns_compare.py");
    let status = Command::new(&python)
        .arg(script)
        .args([
            ours_port.to_string(),
            stock_port.to_string(),
            NAMES.to_string(),
        ])
        .status()
        .expect("run ns_compare.py");
    let _ = stock_process.kill();
    let _ = stock_process.wait();
    assert!(status.success(), "ns_compare.py failed");
}
