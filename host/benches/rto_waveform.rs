//! How fast an oscilloscope waveform reaches a client through a daemon,
//! beside the raw transport, in one run: the simulated R&S RTO on
//! loopback, its waveform read
//!
//! - raw: straight from the scope's socket with instrument-io
//!   (`FORM INT,8;:CHAN1:DATA?`, the block read whole), no daemon;
//! - through the daemon (the RTO driver's `get_waveform`) by the Rust
//!   client;
//! - through the daemon by stock Python Pyro5, with serpent (its default:
//!   bytes as base64 text) and with msgpack (bytes as they are).
//!
//! Run: `cargo build --release && cargo bench -p pyrolab-host --bench rto_waveform`
//!
//! Each round measures every path in turn, the order rotating between
//! rounds (this machine is noisy); reported are each path's median MB/s
//! (MB = 10^6 bytes) with its range over the rounds, and the median and
//! range of its ratio to the raw transport of the same round. The scope
//! makes each record's bytes once, so what is timed is the transfer.

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use instrument_io::{Options, Scpi};
use pyrolab_host::client::Proxy;
use pyrolab_plugin_api::{CallArgs, Value};
use pyrolab_test_support::{Background, Sandbox, python_with_pyro5};
use simulators::rto::Simulator;

const ROUNDS: usize = 7;
/// Record lengths (one byte a sample in INT,8).
const SIZES: [usize; 2] = [1_000_000, 10_000_000];
/// Bytes moved by each path in each round, at least.
const BYTES_PER_TRIAL: usize = 50_000_000;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Path {
    Raw,
    Rust,
    PythonSerpent,
    PythonMsgpack,
}

const PATHS: [Path; 4] = [
    Path::Raw,
    Path::Rust,
    Path::PythonSerpent,
    Path::PythonMsgpack,
];

impl Path {
    fn label(self) -> &'static str {
        match self {
            Path::Raw => "raw transport (instrument-io, no daemon)",
            Path::Rust => "daemon, Rust client",
            Path::PythonSerpent => "daemon, Python Pyro5 (serpent)",
            Path::PythonMsgpack => "daemon, Python Pyro5 (msgpack)",
        }
    }
}

fn call(proxy: &Proxy, method: &str, args: Vec<Value>) -> Value {
    proxy
        .call_with(method, CallArgs::positional(args))
        .unwrap_or_else(|err| panic!("{method}: {err}"))
}

/// The daemon serving the RTO driver; its `host:port`.
fn start_daemon(sandbox: &Sandbox, scope: &Simulator) -> (Background, String) {
    sandbox.install_plugin("rohdeschwarz");
    let config = sandbox.path().join("lab.yaml");
    fs::write(
        &config,
        format!(
            "version: '1.0'\nplugin_dirs: [{}]\ndaemons:\n  lab: {{host: 127.0.0.1, port: 0}}\nservices:\n  scope: {{module: rohdeschwarz, classname: RTO, parameters: {{address: '{}', timeout: 5000}}, instancemode: single, daemon: lab}}\n",
            sandbox.plugin_dir().display(),
            scope.resource()
        ),
    )
    .expect("config");
    let mut daemon = Background::start(
        sandbox
            .host()
            .args(["run", "daemon", "lab", "--config"])
            .arg(&config),
    );
    let line = daemon.wait_for_line("daemon lab listening on ", Duration::from_secs(60));
    let location = line.rsplit(' ').next().expect("a location").to_owned();
    (daemon, location)
}

/// Seconds for `count` waveforms by Python, timed inside the script (the
/// interpreter's start is not counted).
fn python_trial(location: &str, serializer: &str, count: usize, size: usize) -> f64 {
    let script = format!(
        r#"
import time, Pyro5.api as p, serpent
p.config.SERIALIZER = "{serializer}"
scope = p.Proxy("PYRO:scope@{location}")
scope._pyroTimeout = 120
data = scope.get_waveform(1)
started = time.perf_counter()
for _ in range({count}):
    data = scope.get_waveform(1)
    if isinstance(data, dict):
        data = serpent.tobytes(data)
elapsed = time.perf_counter() - started
assert len(data) == {size}, len(data)
print(elapsed)
"#
    );
    let output = Command::new(python_with_pyro5())
        .args(["-c", &script])
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("seconds")
}

fn trial(path: Path, raw: &mut Scpi, proxy: &Proxy, location: &str, size: usize) -> f64 {
    let count = BYTES_PER_TRIAL.div_ceil(size);
    let seconds = match path {
        Path::Raw => {
            let started = Instant::now();
            for _ in 0..count {
                let data = raw.query_block("FORM INT,8;:CHAN1:DATA?").expect("raw");
                assert_eq!(data.len(), size);
            }
            started.elapsed().as_secs_f64()
        }
        Path::Rust => {
            let started = Instant::now();
            for _ in 0..count {
                match call(proxy, "get_waveform", vec![1.into()]) {
                    Value::Bytes(data) => assert_eq!(data.len(), size),
                    other => panic!("{other:?}"),
                }
            }
            started.elapsed().as_secs_f64()
        }
        Path::PythonSerpent => python_trial(location, "serpent", count, size),
        Path::PythonMsgpack => python_trial(location, "msgpack", count, size),
    };
    (count * size) as f64 / seconds / 1e6
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let scope = Simulator::start("127.0.0.1").expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_daemon(&sandbox, &scope);
    let mut proxy = Proxy::connect(&format!("PYRO:scope@{location}")).expect("proxy");
    proxy.set_timeout(Some(Duration::from_secs(120)));
    call(&proxy, "autoconnect", vec![]);
    let options = Options {
        timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let mut raw = Scpi::open(&scope.resource(), &options).expect("raw connection");

    println!(
        "RTO waveform (INT,8) from the simulated scope on loopback; {ROUNDS} rounds, \
         >= {} MB a path a round; MB/s median [range], ratio to raw median [range]",
        BYTES_PER_TRIAL / 1_000_000
    );
    for size in SIZES {
        // A record of `size` samples: 10 GSa/s for size / 10^10 s.
        call(
            &proxy,
            "acquisition_settings",
            vec![10e9.into(), (size as f64 / 10e9).into()],
        );
        call(&proxy, "acquire", vec![]);
        call(&proxy, "wait_for_device", vec![]);
        // The scope makes the record's bytes on the first query.
        raw.query_block("FORM INT,8;:CHAN1:DATA?")
            .expect("first read");

        let mut rates = vec![Vec::new(); PATHS.len()];
        for round in 0..ROUNDS {
            for k in 0..PATHS.len() {
                let index = (round + k) % PATHS.len();
                rates[index].push(trial(PATHS[index], &mut raw, &proxy, &location, size));
            }
        }
        println!("\n{} MB waveform:", size / 1_000_000);
        let raw_rates = rates[0].clone();
        for (path, values) in PATHS.iter().zip(&rates) {
            let mut sorted = values.clone();
            let mid = median(&mut sorted);
            let mut ratios: Vec<f64> = values
                .iter()
                .zip(&raw_rates)
                .map(|(rate, raw)| rate / raw)
                .collect();
            let ratio = median(&mut ratios);
            println!(
                "  {:<42} {:>7.0} MB/s [{:.0}-{:.0}]   x{:.2} [{:.2}-{:.2}]",
                path.label(),
                mid,
                sorted[0],
                sorted[sorted.len() - 1],
                ratio,
                ratios[0],
                ratios[ratios.len() - 1]
            );
        }
    }
}
