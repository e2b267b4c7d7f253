//! Connections: what idle connections cost a daemon, whether thousands of
//! them slow its calls, and how it serves 256 concurrent Python clients,
//! next to stock Python Pyro5 servers measured in the same run.
//!
//! Run: `cargo build -j1 --release && cargo bench -j1 -p pyrolab-host --bench daemon_connections`
//! (add `-- idle`, `-- many`, `-- python` or `-- multiplex` to run only
//! those sections). Linux only (it reads `/proc`). The stock servers and
//! the Python clients need the test suite's Python environment
//! (`target/python-venv`, made by `cargo test --test e2e python_interop::`);
//! without it those parts are skipped.
//!
//! Our daemons are the real binary as users run it (`pyrolab-host run
//! daemon NAME --config FILE`), serving the sample driver (`instancemode:
//! single`); the stock ones are Pyro5's own `Daemon` serving the same
//! `echo` (one instance), each in a process of its own
//! (`daemon_connections.py`). Every server listens on 127.0.0.1, on a port
//! it picked.
//!
//! - `idle`: each server in turn, a fresh process per trial, trials
//!   alternating between the four: RSS and thread count (`/proc/PID/status`)
//!   before, with 1,000 idle connections (each a real Pyro5 connection:
//!   serpent CONNECT sent and CONNECTOK read, then nothing), and after they
//!   close (once the server has closed every socket, and again later).
//! - `many`: one of our daemons (thread, then multiplex) holding 10,000
//!   idle connections while one Rust client makes sequential small calls,
//!   against the same client with no idle connections, in alternating
//!   trials (the idle connections are opened and closed between them).
//! - `python`: 8 client processes x 32 threads of stock Python Pyro5
//!   clients, each thread its own proxy, calling `echo("hello")` for a
//!   fixed time on each of the four servers, trials alternating.
//! - `multiplex`: one Rust client's sequential small calls on our multiplex
//!   daemon against our thread daemon, alternating trials.
//!
//! Each figure is the median over trials, with the range of the trials.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_host::client::Proxy;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const IDLE_CONNECTIONS: usize = 1_000;
const IDLE_TRIALS: usize = 3;
const MANY_CONNECTIONS: usize = 10_000;
const MANY_TRIALS: usize = 7;
/// Our daemons' connection limit (the default, 256, is far below the
/// sections' counts).
const MAX_CONNECTIONS: usize = 11_000;
const MANY_CALLS: usize = 20_000;
/// Short trials, many of them: a spell of load from elsewhere on the
/// machine then spoils a few trials of both sides, not one side's figure.
const MULTIPLEX_CALLS: usize = 10_000;
const MULTIPLEX_TRIALS: usize = 15;
const PYTHON_PROCESSES: usize = 8;
const PYTHON_THREADS: usize = 32;
const PYTHON_SECONDS: f64 = 5.0;
const PYTHON_TRIALS: usize = 3;
/// The stock thread server serves each connection on a thread of its pool
/// and refuses connections beyond it, so its pool must be this large.
const STOCK_IDLE_POOL: usize = IDLE_CONNECTIONS + 100;
const STOCK_PYTHON_POOL: usize = PYTHON_PROCESSES * PYTHON_THREADS + 44;
/// How long the servers are left after their connections arrive, before
/// their RSS is read.
const SETTLE: Duration = Duration::from_millis(500);
/// When RSS is read again after the connections close: counted from the
/// moment the server had closed all their sockets.
const AFTER_CLOSE: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(5)];
const TIMEOUT: Duration = Duration::from_secs(60);

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("<profile>/deps")
        .to_owned()
}

fn python() -> Option<PathBuf> {
    let path = profile_dir().parent()?.join("python-venv/bin/python");
    path.is_file().then_some(path)
}

fn helper_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benches/daemon_connections.py")
}

// ---------------------------------------------------------------------
// Servers: child processes, killed when dropped (and, through the
// parent-death signal, when this process dies).

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    OursThread,
    OursMultiplex,
    StockThread,
    StockMultiplex,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::OursThread => "pyrolab-host thread",
            Kind::OursMultiplex => "pyrolab-host multiplex",
            Kind::StockThread => "stock Pyro5 5.17 thread",
            Kind::StockMultiplex => "stock Pyro5 5.17 multiplex",
        }
    }

    fn is_stock(self) -> bool {
        matches!(self, Kind::StockThread | Kind::StockMultiplex)
    }
}

struct Server {
    kind: Kind,
    child: Child,
    /// `host:port`.
    location: String,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn uri(&self) -> String {
        format!("PYRO:sample@{}", self.location)
    }

    fn status(&self) -> ProcStatus {
        ProcStatus::of(self.pid())
    }

    fn open_files(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }

    /// The lines of its log (stderr) that are warnings or errors.
    fn complaints(&self) -> Vec<String> {
        fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| {
                let lower = line.to_ascii_lowercase();
                ["warn", "error", "traceback", "exception"]
                    .iter()
                    .any(|word| lower.contains(word))
            })
            .map(str::to_owned)
            .collect()
    }
}

/// Starts `command` as a child that dies with this process, its stdout
/// read line by line into the returned channel and its stderr going to
/// `log`.
fn spawn(command: &mut Command, log: &Path) -> (Child, Receiver<String>) {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(File::create(log).expect("create a log file"));
    // SAFETY: prctl is async-signal-safe, and the closure touches nothing
    // else of the parent's.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(Into::into)
        });
    }
    let mut child = command.spawn().expect("start a server");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, receiver) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                // Keep draining, so the child never blocks on its stdout.
                continue;
            }
        }
    });
    (child, receiver)
}

/// The first line from `lines` containing `marker`, within [`TIMEOUT`].
fn wait_for_line(lines: &Receiver<String>, marker: &str, what: &str) -> String {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(marker) => return line,
            Ok(_) => {}
            Err(_) => panic!("{what} did not print {marker:?} within {TIMEOUT:?}"),
        }
    }
}

fn start(kind: Kind, dir: &Path, stock_pool: usize) -> Server {
    let log = dir.join(format!("{kind:?}-{}.log", unique()));
    let (mut command, marker) = match kind {
        Kind::OursThread | Kind::OursMultiplex => {
            let servertype = if kind == Kind::OursThread {
                "thread"
            } else {
                "multiplex"
            };
            let config = dir.join(format!("{servertype}.yaml"));
            fs::write(
                &config,
                format!(
                    "version: '1.0'
daemons:
  {servertype}:
    host: 127.0.0.1
    port: 0
    servertype: {servertype}
    max_connections: {MAX_CONNECTIONS}
services:
  sample: {{module: sample, classname: SampleService, instancemode: single, daemon: {servertype}}}
"
                ),
            )
            .expect("write the launch configuration");
            let mut command = Command::new(env!("CARGO_BIN_EXE_pyrolab-host"));
            command
                .arg("--data-dir")
                .arg(dir.join("data"))
                .arg("--plugin-dir")
                .arg(profile_dir())
                .args(["run", "daemon", servertype, "--config"])
                .arg(&config);
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("PYROLAB") {
                    command.env_remove(name);
                }
            }
            (command, format!("daemon {servertype} listening on "))
        }
        Kind::StockThread | Kind::StockMultiplex => {
            let servertype = if kind == Kind::StockThread {
                "thread"
            } else {
                "multiplex"
            };
            let mut command = Command::new(python().expect("the Python environment"));
            command
                .arg(helper_script())
                .args(["serve", servertype, &stock_pool.to_string()]);
            for (name, _) in std::env::vars_os() {
                if name.to_string_lossy().starts_with("PYRO") {
                    command.env_remove(name);
                }
            }
            (command, "PYRO:".to_owned())
        }
    };
    let (child, lines) = spawn(&mut command, &log);
    let mut server = Server {
        kind,
        child,
        location: String::new(),
        log,
    };
    let line = wait_for_line(&lines, &marker, kind.label());
    server.location = match kind.is_stock() {
        true => line.rsplit('@').next(),
        false => line.rsplit(' ').next(),
    }
    .expect("a location")
    .trim()
    .to_owned();
    // Warm up: a proxy's calls, and a few connections opened and closed,
    // so that what the first connection and call set up once is in the
    // starting figures.
    let proxy = Proxy::connect(&server.uri()).expect("connect to the server");
    for _ in 0..200 {
        let _: String = proxy.call("echo", ("hello",)).expect("echo");
    }
    drop(proxy);
    let warm: Vec<_> = (0..20)
        .map(|_| open_idle(&server.location).expect("a warm-up connection"))
        .collect();
    drop(warm);
    server
}

fn unique() -> u64 {
    static NEXT: Mutex<u64> = Mutex::new(0);
    let mut next = NEXT.lock().unwrap();
    *next += 1;
    *next
}

#[derive(Clone, Copy, Debug, Default)]
struct ProcStatus {
    rss_kb: u64,
    threads: u64,
}

impl ProcStatus {
    fn of(pid: u32) -> ProcStatus {
        let text =
            fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
        let field = |name: &str| {
            text.lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        ProcStatus {
            rss_kb: field("VmRSS:"),
            threads: field("Threads:"),
        }
    }
}

// ---------------------------------------------------------------------
// Idle connections: a raw TCP stream that did a Pyro5 handshake.

const HEADER: usize = 40;
const MSG_CONNECT: u8 = 1;
const MSG_CONNECTOK: u8 = 2;
const MSG_CONNECTFAIL: u8 = 3;
const SERPENT: u8 = 1;

/// A serpent CONNECT for object `sample`, as a stock Python Pyro5 proxy
/// sends it.
fn connect_frame() -> Vec<u8> {
    let payload: &[u8] = b"# serpent utf-8 python3.2\n{'handshake':'hello','object':'sample'}";
    let mut frame = b"PYRO".to_vec();
    frame.extend_from_slice(&502u16.to_be_bytes());
    frame.extend_from_slice(&[MSG_CONNECT, SERPENT, 0, 0, 0, 1]);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(&[0; 4 + 16 + 2]);
    frame.extend_from_slice(&[0x4d, 0xc5]);
    frame.extend_from_slice(payload);
    frame
}

#[derive(Debug)]
enum OpenError {
    /// The server answered CONNECTFAIL.
    Refused(String),
    Failed(String),
}

/// Connects and handshakes; the stream then stays idle until dropped.
fn open_idle(location: &str) -> Result<TcpStream, OpenError> {
    thread_local! {
        static FRAME: Vec<u8> = connect_frame();
    }
    let failed = |what: &str, err: std::io::Error| OpenError::Failed(format!("{what}: {err}"));
    let mut stream = TcpStream::connect(location).map_err(|e| failed("connect", e))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| failed("set a timeout", e))?;
    FRAME
        .with(|frame| stream.write_all(frame))
        .map_err(|e| failed("send CONNECT", e))?;
    let mut header = [0u8; HEADER];
    stream
        .read_exact(&mut header)
        .map_err(|e| failed("read the reply's header", e))?;
    if &header[..4] != b"PYRO" {
        return Err(OpenError::Failed("the reply is not a Pyro5 message".into()));
    }
    let length = |at: usize| u32::from_be_bytes(header[at..at + 4].try_into().unwrap()) as usize;
    let mut rest = vec![0u8; length(12) + length(16)];
    stream
        .read_exact(&mut rest)
        .map_err(|e| failed("read the reply", e))?;
    match header[6] {
        MSG_CONNECTOK => Ok(stream),
        MSG_CONNECTFAIL => Err(OpenError::Refused(
            String::from_utf8_lossy(&rest).into_owned(),
        )),
        other => Err(OpenError::Failed(format!("reply of type {other}"))),
    }
}

/// Opens `count` idle connections one after another; returns them and how
/// many were refused or failed (with the first reason).
fn open_many(location: &str, count: usize) -> (Vec<TcpStream>, usize, Option<String>) {
    let mut streams = Vec::with_capacity(count);
    let (mut lost, mut reason) = (0, None);
    for _ in 0..count {
        match open_idle(location) {
            Ok(stream) => streams.push(stream),
            Err(OpenError::Refused(why)) | Err(OpenError::Failed(why)) => {
                lost += 1;
                reason.get_or_insert(why);
            }
        }
    }
    (streams, lost, reason)
}

/// Waits (bounded) until the server has no more open files than
/// `baseline`: it has closed every connection. Returns how long it took.
fn wait_for_closes(server: &Server, baseline: usize) -> Duration {
    let started = Instant::now();
    while server.open_files() > baseline && started.elapsed() < TIMEOUT {
        thread::sleep(Duration::from_millis(10));
    }
    started.elapsed()
}

// ---------------------------------------------------------------------
// Figures.

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn low(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn high(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// "median (low–high)" with `decimals` decimals.
fn spread(values: &[f64], decimals: usize) -> String {
    format!(
        "{:.*} ({:.*}–{:.*})",
        decimals,
        median(values),
        decimals,
        low(values),
        decimals,
        high(values)
    )
}

struct Latencies {
    calls_per_second: f64,
    p50_us: f64,
    p99_us: f64,
}

/// `calls` sequential calls of `one` (after a tenth as many to warm up).
fn timed(calls: usize, mut one: impl FnMut()) -> Latencies {
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
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Latencies {
        calls_per_second: calls as f64 / elapsed.as_secs_f64(),
        p50_us: at(0.50).as_secs_f64() * 1e6,
        p99_us: at(0.99).as_secs_f64() * 1e6,
    }
}

fn echo_calls(proxy: &Proxy, calls: usize) -> Latencies {
    timed(calls, || {
        let _: String = proxy.call("echo", ("hello",)).expect("echo");
    })
}

/// Prints the trials' calls/s and latencies: medians and ranges.
fn report_latencies(what: &str, trials: &[Latencies]) {
    let rates: Vec<f64> = trials.iter().map(|t| t.calls_per_second).collect();
    let p50: Vec<f64> = trials.iter().map(|t| t.p50_us).collect();
    let p99: Vec<f64> = trials.iter().map(|t| t.p99_us).collect();
    println!(
        "  {what:<44} {} calls/s   p50 {} µs   p99 {} µs",
        spread(&rates, 0),
        spread(&p50, 1),
        spread(&p99, 1)
    );
}

fn report_ratio(what: &str, ratios: &[f64]) {
    println!(
        "  {what:<44} {:.0}% (trials {:.0}–{:.0}%)",
        100.0 * median(ratios),
        100.0 * low(ratios),
        100.0 * high(ratios)
    );
}

fn report_complaints(servers: &[&Server]) {
    for server in servers {
        let complaints = server.complaints();
        if !complaints.is_empty() {
            println!(
                "  {} logged {} warnings/errors; the first: {}",
                server.kind.label(),
                complaints.len(),
                complaints[0]
            );
        }
    }
}

// ---------------------------------------------------------------------
// Sections.

/// The sections named on the command line, or all of them. Cargo passes
/// its own `--bench` flag, which is ignored.
fn selected_sections() -> Vec<String> {
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    if named.is_empty() {
        ["idle", "many", "python", "multiplex"]
            .map(String::from)
            .to_vec()
    } else {
        named
    }
}

fn main() {
    let library = profile_dir().join(format!(
        "{}sample{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        library.is_file(),
        "{} is missing: run `cargo build --release` first",
        library.display()
    );
    // This process holds the client ends of the connections.
    let limit = pyrolab_host::net::raise_open_file_limit();
    let dir = tempfile::tempdir().expect("a temporary directory");
    println!(
        "pyrolab-host connections benchmark ({} cores, open-file limit {})\n",
        thread::available_parallelism().map_or(1, |n| n.get()),
        limit.map_or("unlimited".into(), |l| l.to_string())
    );
    if python().is_none() {
        println!(
            "(no target/python-venv: the stock Pyro5 servers and Python clients are skipped; \
             `cargo test --test e2e python_interop::` creates it)\n"
        );
    }
    let sections = selected_sections();
    let wants = |name: &str| sections.iter().any(|s| s == name);
    if wants("idle") {
        idle(dir.path());
    }
    if wants("many") {
        many(dir.path());
    }
    if wants("python") {
        python_clients(dir.path());
    }
    if wants("multiplex") {
        multiplex(dir.path());
    }
}

#[derive(Default)]
struct IdleTrial {
    start: ProcStatus,
    with: ProcStatus,
    after: Vec<ProcStatus>,
    lost: usize,
    reason: Option<String>,
    close_wait: Duration,
}

fn idle(dir: &Path) {
    println!(
        "idle: {IDLE_CONNECTIONS} idle connections (handshake done), {IDLE_TRIALS} trials, \
         a fresh server process each"
    );
    let mut kinds = vec![Kind::OursThread, Kind::OursMultiplex];
    if python().is_some() {
        kinds.extend([Kind::StockThread, Kind::StockMultiplex]);
    }
    let mut trials: Vec<Vec<IdleTrial>> = kinds.iter().map(|_| Vec::new()).collect();
    let mut complaints: Vec<(Kind, Vec<String>)> = Vec::new();
    for trial in 0..IDLE_TRIALS {
        for (index, &kind) in kinds.iter().enumerate() {
            let server = start(kind, dir, STOCK_IDLE_POOL);
            thread::sleep(SETTLE);
            let files = server.open_files();
            let start = server.status();
            let (streams, lost, reason) = open_many(&server.location, IDLE_CONNECTIONS);
            thread::sleep(SETTLE);
            let with = server.status();
            drop(streams);
            let close_wait = wait_for_closes(&server, files);
            let closed = Instant::now();
            let after = AFTER_CLOSE
                .iter()
                .map(|&at| {
                    thread::sleep(at.saturating_sub(closed.elapsed()));
                    server.status()
                })
                .collect();
            if trial == 0 {
                complaints.push((kind, server.complaints()));
            }
            trials[index].push(IdleTrial {
                start,
                with,
                after,
                lost,
                reason,
                close_wait,
            });
        }
    }
    let mb = |kb: u64| kb as f64 / 1024.0;
    for (kind, trials) in kinds.iter().zip(&trials) {
        let per_connection: Vec<f64> = trials
            .iter()
            .map(|t| (t.with.rss_kb as f64 - t.start.rss_kb as f64) / IDLE_CONNECTIONS as f64)
            .collect();
        let of = |f: &dyn Fn(&IdleTrial) -> f64| trials.iter().map(f).collect::<Vec<f64>>();
        println!("  {}", kind.label());
        println!(
            "    per idle connection     {} KB",
            spread(&per_connection, 2)
        );
        println!(
            "    RSS start / with / after close  {} / {} / {} MB",
            spread(&of(&|t| mb(t.start.rss_kb)), 1),
            spread(&of(&|t| mb(t.with.rss_kb)), 1),
            spread(&of(&|t| mb(t.after[0].rss_kb)), 1),
        );
        for (at, when) in AFTER_CLOSE.iter().enumerate() {
            println!(
                "    RSS {:>2} s after close      {}% of start   (threads {})",
                when.as_secs(),
                spread(
                    &of(&|t| 100.0 * t.after[at].rss_kb as f64 / t.start.rss_kb as f64),
                    1
                ),
                spread(&of(&|t| t.after[at].threads as f64), 0),
            );
        }
        println!(
            "    threads start / with    {} / {}",
            spread(&of(&|t| t.start.threads as f64), 0),
            spread(&of(&|t| t.with.threads as f64), 0)
        );
        println!(
            "    closing took            {} ms (until the server had closed every socket)",
            spread(&of(&|t| t.close_wait.as_secs_f64() * 1e3), 0)
        );
        let lost: usize = trials.iter().map(|t| t.lost).sum();
        if lost > 0 {
            println!(
                "    {lost} connections refused or failed; the first: {}",
                trials
                    .iter()
                    .find_map(|t| t.reason.as_deref())
                    .unwrap_or("?")
            );
        }
    }
    for (kind, lines) in complaints {
        if !lines.is_empty() {
            println!(
                "  {} logged {} warnings/errors in trial 1; the first: {}",
                kind.label(),
                lines.len(),
                lines[0]
            );
        }
    }
    println!();
}

fn many(dir: &Path) {
    println!(
        "many: one Rust client's sequential echo(\"hello\") ({MANY_CALLS} calls a trial), \
         with no idle connections and with {MANY_CONNECTIONS}, alternating, {MANY_TRIALS} trials"
    );
    for kind in [Kind::OursThread, Kind::OursMultiplex] {
        let server = start(kind, dir, 0);
        let proxy = Proxy::connect(&server.uri()).expect("connect");
        let files = server.open_files();
        let (mut none, mut with, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        let (mut opening, mut closing, mut lost) = (Vec::new(), Vec::new(), 0);
        let mut reason = None;
        // Each trial's status before opening, with the connections, and
        // after they closed.
        let mut statuses = Vec::new();
        for _ in 0..MANY_TRIALS {
            let alone = echo_calls(&proxy, MANY_CALLS);
            let before = server.status();
            let began = Instant::now();
            let (streams, lost_now, why) = open_many(&server.location, MANY_CONNECTIONS);
            opening.push(began.elapsed().as_secs_f64());
            lost += lost_now;
            if reason.is_none() {
                reason = why;
            }
            thread::sleep(SETTLE);
            let held = server.status();
            let crowded = echo_calls(&proxy, MANY_CALLS);
            ratios.push(crowded.p99_us / alone.p99_us);
            none.push(alone);
            with.push(crowded);
            drop(streams);
            closing.push(wait_for_closes(&server, files).as_secs_f64());
            thread::sleep(SETTLE);
            statuses.push((before, held, server.status()));
        }
        println!("  {}", kind.label());
        report_latencies("no idle connections", &none);
        report_latencies(&format!("{MANY_CONNECTIONS} idle connections"), &with);
        report_ratio("p99 with them / p99 without", &ratios);
        // Only the first trial's: the daemon keeps the memory its
        // connections had (see `idle`), and later trials reuse it.
        let (before, held, _) = statuses[0];
        println!(
            "    {:<42} {:.2} KB (first trial: RSS from {:.1} to {:.1} MB)",
            "per idle connection",
            (held.rss_kb as f64 - before.rss_kb as f64) / MANY_CONNECTIONS as f64,
            before.rss_kb as f64 / 1024.0,
            held.rss_kb as f64 / 1024.0
        );
        let trial_by_trial = |f: &dyn Fn(&ProcStatus) -> String| {
            statuses
                .iter()
                .map(|(before, held, after)| format!("{}>{}>{}", f(before), f(held), f(after)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "    {:<42} {}",
            "RSS MB before>with>after, trial by trial",
            trial_by_trial(&|s| format!("{:.1}", s.rss_kb as f64 / 1024.0))
        );
        println!(
            "    {:<42} {}",
            "threads before>with>after",
            trial_by_trial(&|s| s.threads.to_string())
        );
        println!(
            "    {:<42} {} s to open them, {} s until the daemon had closed them \
             (after: {} s later)",
            format!("{MANY_CONNECTIONS} connections"),
            spread(&opening, 2),
            spread(&closing, 2),
            SETTLE.as_secs_f64()
        );
        if lost > 0 {
            println!(
                "    {lost} connections refused or failed; the first: {}",
                reason.as_deref().unwrap_or("?")
            );
        }
        report_complaints(&[&server]);
    }
    println!();
}

struct PythonRun {
    calls_per_second: f64,
    p50_us: f64,
    p99_us: f64,
    errors: u64,
    first_error: Option<String>,
    max_threads: u64,
}

/// Runs the Python client processes against `server` for
/// [`PYTHON_SECONDS`], sampling the server's thread count meanwhile.
fn python_run(server: &Server, dir: &Path) -> PythonRun {
    let log = dir.join(format!("clients-{}.log", unique()));
    let mut command = Command::new(python().expect("the Python environment"));
    command.arg(helper_script()).args([
        "clients",
        &server.uri(),
        &PYTHON_PROCESSES.to_string(),
        &PYTHON_THREADS.to_string(),
        &PYTHON_SECONDS.to_string(),
    ]);
    let (mut child, lines) = spawn(&mut command, &log);
    let pid = server.pid();
    let max_threads = Arc::new(Mutex::new(0u64));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (max_threads, sampling) = (Arc::clone(&max_threads), Arc::clone(&sampling));
        thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let threads = ProcStatus::of(pid).threads;
                let mut max = max_threads.lock().unwrap();
                *max = (*max).max(threads);
                drop(max);
                thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let line = lines
        .recv_timeout(TIMEOUT + Duration::from_secs_f64(PYTHON_SECONDS))
        .ok()
        .filter(|line| line.starts_with("RESULT"));
    let first_error = lines
        .recv_timeout(Duration::from_secs(2))
        .ok()
        .and_then(|line| line.strip_prefix("FIRST ERROR ").map(str::to_owned));
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let Some(line) = line else {
        panic!(
            "the Python clients against {} gave no result: {}",
            server.kind.label(),
            fs::read_to_string(&log).unwrap_or_default()
        );
    };
    let field = |name: &str| -> f64 {
        line.split_whitespace()
            .find_map(|part| part.strip_prefix(name))
            .and_then(|value| value.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let max_threads = *max_threads.lock().unwrap();
    PythonRun {
        calls_per_second: field("calls=") / field("seconds="),
        p50_us: field("p50_us="),
        p99_us: field("p99_us="),
        errors: field("errors=") as u64,
        first_error,
        max_threads,
    }
}

fn python_clients(dir: &Path) {
    if python().is_none() {
        return;
    }
    println!(
        "python: {PYTHON_PROCESSES} processes x {PYTHON_THREADS} threads of stock Pyro5 \
         clients (serpent), echo(\"hello\") for {PYTHON_SECONDS} s, {PYTHON_TRIALS} trials"
    );
    let kinds = [
        Kind::OursThread,
        Kind::StockThread,
        Kind::OursMultiplex,
        Kind::StockMultiplex,
    ];
    let servers: Vec<Server> = kinds
        .iter()
        .map(|&kind| start(kind, dir, STOCK_PYTHON_POOL))
        .collect();
    let mut runs: Vec<Vec<PythonRun>> = kinds.iter().map(|_| Vec::new()).collect();
    for trial in 0..PYTHON_TRIALS {
        // Alternate which server goes first.
        for step in 0..kinds.len() {
            let index = (step + trial) % kinds.len();
            runs[index].push(python_run(&servers[index], dir));
        }
    }
    for (kind, runs) in kinds.iter().zip(&runs) {
        let of = |f: &dyn Fn(&PythonRun) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
        let errors: u64 = runs.iter().map(|r| r.errors).sum();
        println!(
            "  {:<30} {} calls/s   p50 {} µs   p99 {} µs   threads up to {}{}",
            kind.label(),
            spread(&of(&|r| r.calls_per_second), 0),
            spread(&of(&|r| r.p50_us), 0),
            spread(&of(&|r| r.p99_us), 0),
            spread(&of(&|r| r.max_threads as f64), 0),
            if errors > 0 {
                format!(
                    "   {errors} failed calls, the first: {}",
                    runs.iter()
                        .find_map(|r| r.first_error.as_deref())
                        .unwrap_or("?")
                )
            } else {
                String::new()
            }
        );
    }
    // Each trial's ratio: ours against stock of the same server type.
    for (ours, stock, what) in [(0, 1, "thread"), (2, 3, "multiplex")] {
        let rates: Vec<f64> = runs[ours]
            .iter()
            .zip(&runs[stock])
            .map(|(o, s)| o.calls_per_second / s.calls_per_second)
            .collect();
        let p99: Vec<f64> = runs[ours]
            .iter()
            .zip(&runs[stock])
            .map(|(o, s)| o.p99_us / s.p99_us)
            .collect();
        println!(
            "  {what:<9} ours / stock: calls/s {:.2}x (trials {:.2}–{:.2}x), p99 {:.2}x (trials {:.2}–{:.2}x)",
            median(&rates),
            low(&rates),
            high(&rates),
            median(&p99),
            low(&p99),
            high(&p99)
        );
    }
    report_complaints(&servers.iter().collect::<Vec<_>>());
    println!();
}

fn multiplex(dir: &Path) {
    println!(
        "multiplex: one Rust client's sequential echo(\"hello\"), {MULTIPLEX_CALLS} calls a trial, \
         {MULTIPLEX_TRIALS} trials alternating"
    );
    let thread_daemon = start(Kind::OursThread, dir, 0);
    let multiplex_daemon = start(Kind::OursMultiplex, dir, 0);
    let on_thread = Proxy::connect(&thread_daemon.uri()).expect("connect");
    let on_multiplex = Proxy::connect(&multiplex_daemon.uri()).expect("connect");
    let (mut threads, mut multiplexes, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..MULTIPLEX_TRIALS {
        let t = echo_calls(&on_thread, MULTIPLEX_CALLS);
        let m = echo_calls(&on_multiplex, MULTIPLEX_CALLS);
        ratios.push(m.calls_per_second / t.calls_per_second);
        threads.push(t);
        multiplexes.push(m);
    }
    report_latencies("thread daemon", &threads);
    report_latencies("multiplex daemon", &multiplexes);
    report_ratio("multiplex / thread calls/s", &ratios);
    report_complaints(&[&thread_daemon, &multiplex_daemon]);
    println!();
}
