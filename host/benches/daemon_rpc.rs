//! Calls through a daemon on loopback, next to raw TCP in the same run.
//!
//! Run: `cargo build --release -p pyrolab-sample && cargo bench -p pyrolab-host --bench daemon_rpc`
//! (add `-- small`, `-- bulk`, `-- msgpack`, `-- streams`, `-- python` or
//! `-- tls` to run only those sections).
//! On a virtual machine whose cross-core wake-ups are slow and erratic,
//! run the built benchmark on one core for stable ratios:
//! `taskset -c 0 target/release/deps/daemon_rpc-*` (see docs/protocol.md).
//!
//! Reports: raw TCP ping-pong (the baseline); the Rust client's calls/s and
//! p50/p99 latency, sequential and over 16 concurrent connections, on a
//! thread and on a multiplex daemon; 1 MB and 16 MB bytes echo against a
//! raw TCP echo of the same size; and, when the test suite's Python
//! environment exists (`target/python-venv`), 1 MB msgpack echo from the
//! Rust and from the stock Python client against this daemon and a stock
//! Pyro5 daemon, streamed items/s (small and 1 MB items) from both clients
//! against both daemons, and the stock Python client's small calls against
//! both; and TLS beside plain TCP (small calls, 16 connections, a new
//! connection per call, 1 MB echo; Rust and stock Python clients).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_host::client::Proxy;
use pyrolab_host::config::schema::{InstanceMode, ServerType};
use pyrolab_host::daemon::{Daemon, DaemonSettings, HostedService};
use pyrolab_host::loader::Loader;
use pyrolab_host::net::{Bound, Listener};
use pyrolab_host::tls::authority::{Authority, Request, Usage};
use pyrolab_host::tls::{ClientTls, ServerTls, ServerTlsFiles};
use pyrolab_host::wire::serializer;
use pyrolab_plugin_api::{Bytes, Value};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SEQUENTIAL_CALLS: usize = 5_000;
const SEQUENTIAL_TRIALS: usize = 5;
const CONCURRENT_CONNECTIONS: usize = 16;
const CALLS_PER_CONNECTION: usize = 2_000;
const BULK_BYTES: usize = 1 << 20;
const BULK_ROUNDS: usize = 40;
const BULK_TRIALS: usize = 21;
const HUGE_BYTES: usize = 16 << 20;
const HUGE_ROUNDS: usize = 4;

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("<profile>/deps")
        .to_owned()
}

fn sample_library() -> PathBuf {
    let name = format!(
        "{}sample{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = profile_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release -p pyrolab-sample` first",
        path.display()
    );
    path
}

/// Starts a daemon of `servertype` serving `sample` on 127.0.0.1; returns
/// its `host:port`.
fn start_daemon(servertype: ServerType) -> String {
    start_daemon_with(servertype, None)
}

/// [`start_daemon`], serving TLS with `tls`.
fn start_daemon_with(servertype: ServerType, tls: Option<ServerTls>) -> String {
    let library = Loader::new().load(&sample_library()).expect("load sample");
    let service = HostedService::new(
        "sample",
        library,
        "SampleService",
        Value::Null,
        InstanceMode::Single,
    )
    .expect("construct SampleService");
    let daemon = Daemon::new(
        DaemonSettings {
            name: "bench".into(),
            servertype,
            lockable: false,
            threadpool_size: 80,
            max_connections: 256,
            max_message_size: 1 << 30,
            max_message_memory: 2 << 30,
            max_reply_size: 1 << 30,
            handshake_timeout: Some(Duration::from_secs(5)),
            idle_timeout: None,
            comm_timeout: None,
            streams: Default::default(),
            metrics: true,
        },
        vec![service],
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let location = listener.local_addr().unwrap().to_string();
    let shutdown = daemon.shutdown_handle();
    let bound = Bound {
        listener: Listener::Tcp(listener),
        location: location.clone(),
        tls,
    };
    thread::spawn(move || daemon.serve(bound, &shutdown));
    location
}

struct Stats {
    calls: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn per_second(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }

    /// The trial with the median rate.
    fn median(mut trials: Vec<Stats>) -> Stats {
        trials.sort_by(|a, b| a.per_second().total_cmp(&b.per_second()));
        trials.swap_remove(trials.len() / 2)
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let at = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[at]
    }

    fn report(&mut self, what: &str) -> f64 {
        let rate = self.per_second();
        let (p50, p99) = (self.percentile(0.50), self.percentile(0.99));
        println!(
            "{what:<52} {rate:>10.0} calls/s   p50 {:>7.1} µs   p99 {:>7.1} µs",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        );
        rate
    }
}

fn timed(calls: usize, mut one: impl FnMut()) -> Stats {
    for _ in 0..calls / 10 {
        one();
    }
    let mut latencies = Vec::with_capacity(calls);
    let start = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        one();
        latencies.push(t.elapsed());
    }
    Stats {
        calls,
        elapsed: start.elapsed(),
        latencies,
    }
}

/// A TCP echo server: reads `size`-byte messages and sends them back.
fn raw_echo_server(size: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            stream.set_nodelay(true).unwrap();
            thread::spawn(move || {
                let mut buffer = vec![0u8; size];
                while stream.read_exact(&mut buffer).is_ok() {
                    if stream.write_all(&buffer).is_err() {
                        break;
                    }
                }
            });
        }
    });
    address
}

/// A connection to the raw echo server at `address`.
fn raw_connection(address: &str) -> TcpStream {
    let stream = TcpStream::connect(address).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Prints the median of the per-trial ratios (each trial of ours against
/// the raw trial just before it), and their range.
fn report_ratio(what: &str, ratios: Vec<f64>) {
    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let high = ratios.iter().copied().fold(0.0, f64::max);
    println!(
        "{what:<52} {:>9.0}%   (trials {:.0}-{:.0}%)",
        100.0 * median(ratios),
        100.0 * low,
        100.0 * high
    );
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

/// The sections named on the command line (`small`, `bulk`, `python`), or
/// all of them. Cargo passes its own `--bench` flag, which is ignored.
fn selected_sections() -> Vec<String> {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    if named.is_empty() {
        vec![
            "small".into(),
            "bulk".into(),
            "msgpack".into(),
            "streams".into(),
            "python".into(),
            "tls".into(),
        ]
    } else {
        named
    }
}

fn main() {
    let location = start_daemon(ServerType::Thread);
    let uri = format!("PYRO:sample@{location}");
    println!(
        "pyrolab-host daemon benchmark ({} cores)\n",
        thread::available_parallelism().map_or(1, |n| n.get())
    );
    let sections = selected_sections();
    let wants = |name: &str| sections.iter().any(|s| s == name);
    if wants("small") {
        small_calls(&uri);
    }
    if wants("bulk") {
        bulk_transfer(&uri);
        huge_transfer(&uri);
    }
    if wants("msgpack") {
        msgpack_bulk(&uri);
    }
    if wants("streams") {
        streams(&uri);
    }
    // Not in the default run: for counting copies (see docs/protocol.md).
    if sections.iter().any(|s| s == "copies") {
        copies(&uri);
    }
    // Not in the default run: small calls alone, for counting system calls
    // per call (`strace -f -c`) or profiling.
    if sections.iter().any(|s| s == "sequential") {
        sequential_only(&uri);
    }
    if wants("python") {
        python_clients(&uri);
    }
    if wants("tls") {
        tls_cost();
    }
}

/// TLS beside plain TCP, in alternating trials: the same daemon settings,
/// one plain and one serving TLS with client certificates required (a lab
/// CA made for the run), from the Rust client and from the stock Python
/// client.
fn tls_cost() {
    let lab = tempfile::tempdir().expect("a folder for the lab CA");
    let authority = Authority::at(lab.path());
    authority.init("bench", 1).expect("a CA");
    let hosts = vec!["127.0.0.1".to_owned()];
    for (name, usage) in [("daemon", Usage::Server), ("client", Usage::Client)] {
        authority
            .issue(&Request::new(name, usage, hosts.clone(), 1))
            .expect("a certificate");
    }
    let files = ServerTlsFiles {
        cert: authority.cert_path("daemon"),
        key: authority.key_path("daemon"),
        ca: Some(authority.ca_cert()),
        require_client_cert: true,
    };
    let server = ServerTls::load(&files).expect("the daemon's TLS");
    let client_cert = (authority.cert_path("client"), authority.key_path("client"));
    let client = ClientTls::load(&authority.ca_cert(), Some((&client_cert.0, &client_cert.1)))
        .expect("the client's TLS");
    let plain = format!("PYRO:sample@{}", start_daemon(ServerType::Thread));
    let secure = format!(
        "PYRO:sample@{}",
        start_daemon_with(ServerType::Thread, Some(server))
    );
    let proxy = |uri: &str, tls: Option<&ClientTls>| {
        let mut proxy = Proxy::new(uri.parse().unwrap());
        proxy.set_tls(tls.cloned());
        proxy
    };
    println!("\nTLS (client certificates required) beside plain TCP, alternating trials");

    // Sequential small calls.
    let (plain_proxy, tls_proxy) = (proxy(&plain, None), proxy(&secure, Some(&client)));
    let (mut plain_trials, mut tls_trials, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..SEQUENTIAL_TRIALS {
        let one = timed(SEQUENTIAL_CALLS, || {
            let _: String = plain_proxy.call("echo", ("hello",)).unwrap();
        });
        let other = timed(SEQUENTIAL_CALLS, || {
            let _: String = tls_proxy.call("echo", ("hello",)).unwrap();
        });
        ratios.push(other.per_second() / one.per_second());
        plain_trials.push(one);
        tls_trials.push(other);
    }
    Stats::median(plain_trials).report("Rust client, echo, sequential, plain");
    Stats::median(tls_trials).report("Rust client, echo, sequential, TLS");
    report_ratio("  sequential: TLS vs plain", ratios);

    // 16 connections at once.
    let (mut plain_rates, mut tls_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let one = concurrent_with(&plain, None, CALLS_PER_CONNECTION / 4).per_second();
        let other = concurrent_with(&secure, Some(&client), CALLS_PER_CONNECTION / 4).per_second();
        ratios.push(other / one);
        plain_rates.push(one);
        tls_rates.push(other);
    }
    println!(
        "{:<52} {:>10.0} calls/s plain, {:.0} TLS",
        format!("Rust client, echo, {CONCURRENT_CONNECTIONS} connections"),
        median(plain_rates),
        median(tls_rates)
    );
    report_ratio(
        &format!("  {CONCURRENT_CONNECTIONS} connections: TLS vs plain"),
        ratios,
    );

    // A new connection per call: what the TLS handshake costs.
    let mut ratios = Vec::new();
    for _ in 0..3 {
        let one = timed(200, || {
            let fresh = proxy(&plain, None);
            let _: String = fresh.call("echo", ("hello",)).unwrap();
        });
        let other = timed(200, || {
            let fresh = proxy(&secure, Some(&client));
            let _: String = fresh.call("echo", ("hello",)).unwrap();
        });
        ratios.push(other.per_second() / one.per_second());
    }
    report_ratio("  connect + handshake + one call: TLS vs plain", ratios);

    // 1 MB echo, connections of their own for each trial.
    let data = Bytes::from(vec![42u8; BULK_BYTES]);
    let echo = |p: &Proxy| {
        timed(BULK_ROUNDS / 2, || {
            let back: Bytes = p.call("echo_bytes", (&data,)).unwrap();
            assert_eq!(back.len(), BULK_BYTES);
        })
        .per_second()
    };
    let (mut plain_rates, mut tls_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        let one = echo(&proxy(&plain, None));
        let other = echo(&proxy(&secure, Some(&client)));
        ratios.push(other / one);
        plain_rates.push(one);
        tls_rates.push(other);
    }
    let megabytes = 2.0 * BULK_BYTES as f64 / 1e6;
    println!(
        "{:<52} {:>10.0} MB/s plain, {:.0} TLS (both directions)",
        "Rust client, echo_bytes(1 MB)",
        megabytes * median(plain_rates),
        megabytes * median(tls_rates)
    );
    report_ratio("  1 MB echo: TLS vs plain", ratios);

    // The stock Python client, set up by PYRO_SSL_* alone.
    let Some(python) = python() else { return };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/tls_python.py");
    let run_python = |uri: &str, tls: bool| {
        let mut command = Command::new(&python);
        command.arg(&script).arg(uri);
        if tls {
            command
                .env("PYRO_SSL", "1")
                .env("PYRO_SSL_CACERTS", authority.ca_cert())
                .env("PYRO_SSL_CLIENTCERT", &client_cert.0)
                .env("PYRO_SSL_CLIENTKEY", &client_cert.1);
        }
        let output = command.output().expect("run python");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let rate = |what: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(what)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {what} in {text}"))
        };
        (rate("small"), rate("bulk"))
    };
    let (mut small, mut bulk) = (Vec::new(), Vec::new());
    let (mut plain_rates, mut tls_rates) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let one = run_python(&plain, false);
        let other = run_python(&secure, true);
        small.push(other.0 / one.0);
        bulk.push(other.1 / one.1);
        plain_rates.push(one.0);
        tls_rates.push(other.0);
    }
    println!(
        "{:<52} {:>10.0} calls/s plain, {:.0} TLS",
        "stock Python client, echo, sequential",
        median(plain_rates),
        median(tls_rates)
    );
    report_ratio("  Python sequential: TLS vs plain", small);
    report_ratio("  Python 1 MB echo (msgpack): TLS vs plain", bulk);

    // Where the Python client's TLS cost lies: the same client over TLS
    // against a stock Pyro5 daemon in SSL mode, alternating with ours.
    let ssl = [
        ("PYRO_SSL", PathBuf::from("1")),
        ("PYRO_SSL_SERVERCERT", authority.cert_path("daemon")),
        ("PYRO_SSL_SERVERKEY", authority.key_path("daemon")),
        ("PYRO_SSL_CACERTS", authority.ca_cert()),
        ("PYRO_SSL_REQUIRECLIENTCERT", PathBuf::from("1")),
    ];
    let stock = StockDaemon::start_with(&python, &ssl);
    let (mut small, mut bulk) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        let theirs = run_python(&stock.uri, true);
        let ours = run_python(&secure, true);
        small.push(ours.0 / theirs.0);
        bulk.push(ours.1 / theirs.1);
    }
    report_ratio_times(
        "  Python over TLS, sequential: ours vs stock Pyro5 SSL",
        small,
    );
    report_ratio_times(
        "  Python over TLS, 1 MB echo: ours vs stock Pyro5 SSL",
        bulk,
    );
}

/// Raw ping-pong and the Rust client alternate in trials, and each reports
/// its median trial (see [`bulk_transfer`] for why).
fn small_calls(uri: &str) {
    let raw_address = raw_echo_server(100);
    let mut raw_stream = TcpStream::connect(raw_address).unwrap();
    raw_stream.set_nodelay(true).unwrap();
    let (message, mut reply) = (vec![7u8; 100], vec![0u8; 100]);
    let proxy = Proxy::connect(uri).unwrap();
    let (mut raw_trials, mut rust_trials, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..SEQUENTIAL_TRIALS {
        let raw = timed(SEQUENTIAL_CALLS, || {
            raw_stream.write_all(&message).unwrap();
            raw_stream.read_exact(&mut reply).unwrap();
        });
        let rust = timed(SEQUENTIAL_CALLS, || {
            let _: String = proxy.call("echo", ("hello",)).unwrap();
        });
        ratios.push(rust.per_second() / raw.per_second());
        raw_trials.push(raw);
        rust_trials.push(rust);
    }
    Stats::median(raw_trials).report("raw TCP ping-pong, 100 bytes (baseline)");
    Stats::median(rust_trials).report("Rust client, echo(\"hello\"), sequential");
    report_ratio("  sequential Rust calls vs raw ping-pong", ratios);

    // The same calls on a multiplex daemon, alternating with the thread
    // daemon's.
    let multiplex_uri = format!("PYRO:sample@{}", start_daemon(ServerType::Multiplex));
    let multiplex = Proxy::connect(&multiplex_uri).unwrap();
    let (mut multiplex_trials, mut ratios) = (Vec::new(), Vec::new());
    for _ in 0..SEQUENTIAL_TRIALS {
        let thread = timed(SEQUENTIAL_CALLS, || {
            let _: String = proxy.call("echo", ("hello",)).unwrap();
        });
        let one = timed(SEQUENTIAL_CALLS, || {
            let _: String = multiplex.call("echo", ("hello",)).unwrap();
        });
        ratios.push(one.per_second() / thread.per_second());
        multiplex_trials.push(one);
    }
    Stats::median(multiplex_trials).report("Rust client, echo, sequential, multiplex daemon");
    report_ratio("  multiplex vs thread daemon", ratios);

    concurrent(uri, CALLS_PER_CONNECTION).report(&format!(
        "Rust client, echo, {CONCURRENT_CONNECTIONS} connections"
    ));

    // The same against a stock Pyro5 daemon in its own process (the Rust
    // client speaks serpent to it), alternating.
    let Some(python) = python() else { return };
    let stock = StockDaemon::start(&python);
    let mut ratios = Vec::new();
    for _ in 0..3 {
        let theirs = concurrent(&stock.uri, CALLS_PER_CONNECTION / 4).per_second();
        ratios.push(concurrent(uri, CALLS_PER_CONNECTION / 4).per_second() / theirs);
    }
    report_ratio_times(
        &format!("  {CONCURRENT_CONNECTIONS} connections: ours vs stock Pyro5 daemon"),
        ratios,
    );
}

/// `calls` sequential calls on each of [`CONCURRENT_CONNECTIONS`]
/// connections at once.
fn concurrent(uri: &str, calls: usize) -> Stats {
    concurrent_with(uri, None, calls)
}

/// [`concurrent`], over TLS with `tls`.
fn concurrent_with(uri: &str, tls: Option<&ClientTls>, calls: usize) -> Stats {
    let start = Instant::now();
    let mut all: Vec<Duration> = thread::scope(|scope| {
        let workers: Vec<_> = (0..CONCURRENT_CONNECTIONS)
            .map(|_| {
                scope.spawn(move || {
                    let mut proxy = Proxy::new(uri.parse().unwrap());
                    proxy.set_tls(tls.cloned());
                    proxy.bind().unwrap();
                    timed(calls, || {
                        let _: String = proxy.call("echo", ("hello",)).unwrap();
                    })
                    .latencies
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    let elapsed = start.elapsed();
    all.sort_unstable();
    let total = CONCURRENT_CONNECTIONS * calls;
    Stats {
        calls: total + total / 10,
        elapsed,
        latencies: all,
    }
}

/// Loopback speed swings with scheduling on a small virtual machine (the
/// raw baseline itself varies up to 3x between runs), so the raw baseline
/// and the daemon are measured in alternating trials and each side reports
/// its median trial; the ratio is the median of the per-trial ratios. A
/// brief fast or slow spell cannot make the ratio.
///
/// Each trial has connections of its own: a raw TCP connection settles
/// into a speed of its own for a while (1 MB round trips at about 2,000,
/// 2,700 or 4,000 a second here, on the same machine in the same run), so
/// one connection for every trial would make the baseline a draw.
fn bulk_transfer(uri: &str) {
    let raw_address = raw_echo_server(BULK_BYTES);
    let message = vec![7u8; BULK_BYTES];
    let mut reply = vec![0u8; BULK_BYTES];
    let data = Bytes::from(vec![42u8; BULK_BYTES]);

    let (mut raw_rates, mut echo_rates, mut upload_rates) = (Vec::new(), Vec::new(), Vec::new());
    let mut ratios = Vec::new();
    for _ in 0..BULK_TRIALS {
        let mut raw_stream = raw_connection(&raw_address);
        let proxy = Proxy::connect(uri).unwrap();
        let raw = timed(BULK_ROUNDS, || {
            raw_stream.write_all(&message).unwrap();
            raw_stream.read_exact(&mut reply).unwrap();
        });
        raw_rates.push(raw.per_second());
        let echo = timed(BULK_ROUNDS, || {
            let back: Bytes = proxy.call("echo_bytes", (&data,)).unwrap();
            assert_eq!(back.len(), BULK_BYTES);
        });
        ratios.push(echo.per_second() / raw.per_second());
        echo_rates.push(echo.per_second());
        let upload = timed(BULK_ROUNDS, || {
            let count: usize = proxy.call("byte_count", (&data,)).unwrap();
            assert_eq!(count, BULK_BYTES);
        });
        upload_rates.push(upload.per_second());
    }
    let megabytes = BULK_BYTES as f64 / 1e6;
    let raw_bandwidth = 2.0 * megabytes * median(raw_rates);
    let bandwidth = 2.0 * megabytes * median(echo_rates);
    println!(
        "{:<52} {raw_bandwidth:>10.0} MB/s (both directions)",
        "raw TCP 1 MB echo (baseline)"
    );
    println!(
        "{:<52} {bandwidth:>10.0} MB/s (both directions)",
        "Rust client, echo_bytes(1 MB)"
    );
    println!(
        "{:<52} {:>10.0} MB/s (one direction)",
        "Rust client, byte_count(1 MB)",
        megabytes * median(upload_rates)
    );
    report_ratio("  1 MB echo vs raw TCP", ratios);
}

/// 16 MB echo against a raw TCP 16 MB echo, alternating, connections of
/// their own for each trial (see [`bulk_transfer`]).
fn huge_transfer(uri: &str) {
    let raw_address = raw_echo_server(HUGE_BYTES);
    let message = vec![7u8; HUGE_BYTES];
    let mut reply = vec![0u8; HUGE_BYTES];
    let data = Bytes::from(vec![42u8; HUGE_BYTES]);
    let mut ratios = Vec::new();
    for _ in 0..BULK_TRIALS {
        let mut raw_stream = raw_connection(&raw_address);
        let proxy = Proxy::connect(uri).unwrap();
        let raw = timed(HUGE_ROUNDS, || {
            raw_stream.write_all(&message).unwrap();
            raw_stream.read_exact(&mut reply).unwrap();
        });
        let echo = timed(HUGE_ROUNDS, || {
            let back: Bytes = proxy.call("echo_bytes", (&data,)).unwrap();
            assert_eq!(back.len(), HUGE_BYTES);
        });
        ratios.push(echo.per_second() / raw.per_second());
    }
    report_ratio("  16 MB echo vs raw TCP", ratios);
}

/// The test suite's Python (with stock Pyro5), if it exists.
fn python() -> Option<PathBuf> {
    let python = profile_dir()
        .parent()
        .unwrap()
        .join("python-venv/bin/python");
    if python.is_file() {
        Some(python)
    } else {
        println!(
            "\n(no target/python-venv: run `cargo test --workspace` once to create it for the Python comparisons)"
        );
        None
    }
}

fn compare_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/pyro5_compare.py")
}

/// A stock Pyro5 daemon in its own process; killed on drop.
struct StockDaemon {
    process: Child,
    uri: String,
}

impl StockDaemon {
    fn start(python: &PathBuf) -> StockDaemon {
        StockDaemon::start_with(python, &[])
    }

    /// With `environment` set (Pyro5's `PYRO_SSL_*`, say).
    fn start_with(python: &PathBuf, environment: &[(&str, PathBuf)]) -> StockDaemon {
        let mut process = Command::new(python)
            .arg(compare_script())
            .arg("--serve")
            .envs(environment.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the stock Pyro5 daemon");
        let (sender, receiver) = std::sync::mpsc::channel();
        let stdout = process.stdout.take().expect("piped");
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let uri = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("the stock Pyro5 daemon prints its URI within 30 s");
        StockDaemon {
            process,
            uri: uri.trim().to_owned(),
        }
    }
}

impl Drop for StockDaemon {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// 1 MB echo in msgpack (what a Python client sends bulk data in when it
/// does not use serpent) against a stock Pyro5 daemon, from the Rust client
/// and from the stock Python client, alternating, with connections of
/// their own for each trial (see [`bulk_transfer`]).
fn msgpack_bulk(uri: &str) {
    let Some(python) = python() else { return };
    let stock = StockDaemon::start(&python);
    let msgpack = serializer::by_name("msgpack").expect("msgpack is spoken");
    let data = Bytes::from(vec![42u8; BULK_BYTES]);
    // A trial's rate, and the CPU time the client (this thread) and the
    // process `daemon_pid` took meanwhile.
    let echo = |uri: &str, daemon_pid: u32| {
        let mut proxy = Proxy::connect(uri).unwrap();
        proxy.set_serializer(msgpack);
        let (client, daemon) = (thread_cpu_time(), process_cpu_time(daemon_pid));
        let stats = timed(BULK_ROUNDS / 2, || {
            let back: Bytes = proxy.call("echo_bytes", (&data,)).unwrap();
            assert_eq!(back.len(), BULK_BYTES);
        });
        let per_call = |cpu: Duration| cpu.as_secs_f64() * 1e6 / stats.calls as f64;
        let client = per_call(thread_cpu_time() - client);
        let daemon = per_call(process_cpu_time(daemon_pid) - daemon);
        (stats.per_second(), client, daemon)
    };
    let (mut ratios, mut clients, mut stock_daemons, mut our_daemons) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..BULK_TRIALS {
        let (stock_rate, client, stock_daemon) = echo(&stock.uri, stock.process.id());
        clients.push(client);
        stock_daemons.push(stock_daemon);
        // Our daemon is this process: all of it but this thread.
        let (our_rate, client, process) = echo(uri, std::process::id());
        clients.push(client);
        our_daemons.push(process - client);
        ratios.push(our_rate / stock_rate);
    }
    report_ratio_times("  Rust msgpack client, 1 MB echo: ours vs stock", ratios);
    report_cpu_split(median(clients), median(stock_daemons), median(our_daemons));
    drop(stock);
    let status = Command::new(python)
        .arg(compare_script())
        .args(["--bulk", uri])
        .status()
        .expect("run python");
    assert!(status.success(), "the Python msgpack comparison failed");
}

/// Small items in a streamed trial.
const STREAM_ITEMS: i64 = 20_000;
/// 1 MB items in a streamed trial.
const STREAM_CHUNKS: i64 = 32;
const STREAM_TRIALS: usize = 7;

/// Streamed items/s: `count` (small items) and `chunks` (1 MB items) from
/// the Rust client in msgpack against this daemon and a stock Pyro5
/// daemon (a generator method), alternating, each trial on connections of
/// its own; then the same from the stock Python client.
fn streams(uri: &str) {
    let Some(python) = python() else { return };
    let stock = StockDaemon::start(&python);
    let msgpack = serializer::by_name("msgpack").expect("msgpack is spoken");
    let items_per_second = |uri: &str, method: &str, args: Vec<Value>, native: bool| {
        let mut proxy = Proxy::connect(uri).unwrap();
        if !native {
            proxy.set_serializer(msgpack);
        }
        let start = Instant::now();
        let mut items = 0usize;
        let stream = proxy
            .stream(method, pyrolab_plugin_api::CallArgs::positional(args))
            .unwrap();
        for item in stream {
            item.unwrap();
            items += 1;
        }
        items as f64 / start.elapsed().as_secs_f64()
    };
    for (what, method, args) in [
        ("small items", "count", vec![Value::Int(STREAM_ITEMS)]),
        (
            "1 MB items",
            "chunks",
            vec![Value::Int(STREAM_CHUNKS), Value::Int(BULK_BYTES as i64)],
        ),
    ] {
        let (mut ratios, mut ours, mut theirs, mut native) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..STREAM_TRIALS {
            theirs.push(items_per_second(&stock.uri, method, args.clone(), false));
            ours.push(items_per_second(uri, method, args.clone(), false));
            native.push(items_per_second(uri, method, args.clone(), true));
            ratios.push(ours.last().unwrap() / theirs.last().unwrap());
        }
        println!(
            "{:<52} {:>10.0} items/s (stock {:.0}; native {:.0})",
            format!("Rust msgpack client, stream of {what}"),
            median(ours),
            median(theirs),
            median(native)
        );
        report_ratio_times("  ours vs stock Pyro5 daemon", ratios);
    }
    drop(stock);
    let status = Command::new(python)
        .arg(compare_script())
        .args(["--streams", uri])
        .status()
        .expect("run python");
    assert!(status.success(), "the Python stream comparison failed");
}

/// Exactly [`COUNTED_CALLS`] 1 MB echoes in native, then as many in
/// msgpack, and nothing else: run under a probe on `memmove` to count the
/// daemon's copies per call (docs/protocol.md has the command).
fn copies(uri: &str) {
    let data = Bytes::from(vec![42u8; BULK_BYTES]);
    let native = Proxy::connect(uri).unwrap();
    let mut msgpack = Proxy::connect(uri).unwrap();
    msgpack.set_serializer(serializer::by_name("msgpack").expect("msgpack is spoken"));
    for proxy in [&native, &msgpack] {
        for _ in 0..COUNTED_CALLS {
            let back: Bytes = proxy.call("echo_bytes", (&data,)).unwrap();
            assert_eq!(back.len(), BULK_BYTES);
        }
    }
    println!("{COUNTED_CALLS} native, then {COUNTED_CALLS} msgpack 1 MB echoes done");
}

/// [`PROFILED_CALLS`] small calls on one connection, and nothing else.
fn sequential_only(uri: &str) {
    let proxy = Proxy::connect(uri).unwrap();
    let mut stats = timed(PROFILED_CALLS, || {
        let _: String = proxy.call("echo", ("hello",)).unwrap();
    });
    stats.report("Rust client, echo(\"hello\"), sequential");
}

/// Calls in the `sequential` section.
const PROFILED_CALLS: usize = 100_000;

/// Calls per serializer in the `copies` section.
const COUNTED_CALLS: usize = 20;

/// Like [`report_ratio`], as a factor (`1.5x`).
fn report_ratio_times(what: &str, ratios: Vec<f64>) {
    let low = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let high = ratios.iter().copied().fold(0.0, f64::max);
    println!(
        "{what:<52} {:>9.2}x   (trials {low:.2}-{high:.2}x)",
        median(ratios)
    );
}

/// Where a bulk call's CPU time goes (microseconds per call, each the
/// median trial): the client's share bounds the ratio, which a daemon
/// costing nothing would raise only to (client + stock) / client.
fn report_cpu_split(client: f64, stock_daemon: f64, our_daemon: f64) {
    println!(
        "    CPU per call: client {client:.0} µs, stock daemon {stock_daemon:.0} µs, ours \
         {our_daemon:.0} µs; a daemon costing nothing: at most {:.2}x",
        (client + stock_daemon) / client
    );
}

/// CPU time the calling thread has had (the scheduler's account, in
/// /proc: precise to the nanosecond, where `stat`'s ticks are 10 ms).
fn thread_cpu_time() -> Duration {
    schedstat_time("/proc/thread-self/schedstat")
}

/// CPU time the threads of process `pid` have had, those alive now.
fn process_cpu_time(pid: u32) -> Duration {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("read /proc")
        .filter_map(|task| task.ok())
        .map(|task| schedstat_time(task.path().join("schedstat")))
        .sum()
}

fn schedstat_time(path: impl AsRef<std::path::Path>) -> Duration {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let nanos = text
        .split_whitespace()
        .next()
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

/// The stock Python client against this daemon and a stock Pyro5 daemon,
/// when the test suite's Python environment exists.
fn python_clients(uri: &str) {
    let Some(python) = python() else { return };
    let status = Command::new(python)
        .arg(compare_script())
        .arg(uri)
        .status()
        .expect("run python");
    assert!(status.success(), "the Python comparison failed");
}
