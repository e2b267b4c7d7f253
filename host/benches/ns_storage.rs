//! A name server on an `sql` storage file, ours against stock Pyro5's, in
//! one run on loopback:
//!
//! - ready: from starting the process until it answers a lookup, on a file
//!   holding 1,000 and 100,000 names;
//! - registering: `register` calls per second from one client, of new
//!   names and of names already in the file (a new URI and one changed
//!   tag, as when a daemon comes back on another port), on the same files.
//!
//! Both start from copies of the same file, written here with Pyro5 5.17's
//! schema and no index (as stock Pyro5 leaves it), each name carrying the
//! four tags a pyrolab-host service registers with. Ours runs as users run
//! it, the real `pyrolab-host run nameserver` with `storage: sql`; stock
//! Pyro5 as `python -m Pyro5.nameserver -s sql:FILE`, from the test
//! suite's Python environment (`target/python-venv`, created if missing).
//! Each round runs both sizes, alternating which server goes first; each
//! trial gets a fresh copy of the file. One client (the Rust client,
//! serpent for both) measures.
//!
//! Run: `cargo bench -p pyrolab-host --bench ns_storage`

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_host::client::NameServerProxy;
use pyrolab_host::nameserver::tags;
use pyrolab_host::wire::serializer;
use pyrolab_test_support::{Sandbox, free_port, python_with_pyro5};

const SIZES: [usize; 2] = [1_000, 100_000];
const SERVERS: [Server; 2] = [Server::Ours, Server::Stock];
const ROUNDS: usize = 7;
/// New names registered per trial.
const NEW_NAMES: usize = 500;
/// Names already in the file registered again per trial (stock Pyro5
/// scans every tag for each, so fewer).
const AGAIN: usize = 100;
/// How long a name server may take to answer its first lookup.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Ours,
    Stock,
}

impl Server {
    fn label(self) -> &'static str {
        match self {
            Server::Ours => "pyrolab-host",
            Server::Stock => "stock Pyro5",
        }
    }
}

/// What one trial of one server on one file measured.
struct Trial {
    /// On the file as stock Pyro5 left it (ours adds its index then).
    ready: Duration,
    /// Started again on the same file, once the registrations are in.
    ready_again: Duration,
    new_per_second: f64,
    again_per_second: f64,
}

fn instrument_name(i: usize) -> String {
    format!("lab.instrument{i:06}")
}

/// The four tags a pyrolab-host daemon registers a service with.
fn instrument_tags(description: &str) -> BTreeSet<String> {
    tags::for_service("lab_instruments", "Instrument", "0.1.1", description)
}

/// Writes `names` names as stock Pyro5 5.17 stores them: its two tables
/// (`SqlStorage._create_schema`, statement for statement), no index, one
/// `pyro_metadata` row per tag.
fn write_pyro5_file(path: &Path, names: usize) {
    let mut db = rusqlite::Connection::open(path).expect("create the seed file");
    db.execute_batch(
        "CREATE TABLE pyro_names
            (
                id integer PRIMARY KEY,
                name nvarchar NOT NULL UNIQUE,
                uri nvarchar NOT NULL
            );
         CREATE TABLE pyro_metadata
            (
                object integer NOT NULL,
                metadata nvarchar NOT NULL,
                FOREIGN KEY(object) REFERENCES pyro_names(id)
            );",
    )
    .expect("create Pyro5's tables");
    let tx = db.transaction().expect("begin");
    {
        let mut name_row = tx
            .prepare("INSERT INTO pyro_names(name, uri) VALUES(?1, ?2)")
            .unwrap();
        let mut tag_row = tx
            .prepare("INSERT INTO pyro_metadata(object, metadata) VALUES(?1, ?2)")
            .unwrap();
        for i in 0..names {
            let uri = format!("PYRO:instrument{i}@127.0.0.1:{}", 20_000 + i % 10_000);
            name_row.execute([&instrument_name(i), &uri]).unwrap();
            let id = tx.last_insert_rowid();
            for tag in instrument_tags(&format!("instrument {i}")) {
                tag_row.execute(rusqlite::params![id, tag]).unwrap();
            }
        }
    }
    tx.commit().expect("commit the seed file");
}

/// A fresh copy of `seed` for one trial, on disk before the clock starts
/// (else the server's first commit would also flush the copy).
fn copy_for_trial(seed: &Path, copy: &Path) {
    let _ = fs::remove_file(copy);
    for companion in ["-journal", "-wal", "-shm"] {
        let mut name = copy.as_os_str().to_owned();
        name.push(companion);
        let _ = fs::remove_file(name);
    }
    fs::copy(seed, copy).expect("copy the seed file");
    fs::File::open(copy)
        .and_then(|f| f.sync_all())
        .expect("sync the copy");
}

fn start_ours(sandbox: &Sandbox, file: &Path, port: u16, stderr: fs::File) -> Child {
    let config = sandbox.path().join("ns.yaml");
    fs::write(
        &config,
        format!(
            "version: '1.0'\nnameservers:\n  ns:\n    host: 127.0.0.1\n    ns_port: {port}\n    storage: sql\n    storage_file: {}\n",
            file.display()
        ),
    )
    .expect("write ns.yaml");
    sandbox
        .host()
        .args(["run", "nameserver", "ns", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start pyrolab-host run nameserver")
}

fn start_stock(python: &Path, file: &Path, port: u16, stderr: fs::File) -> Child {
    Command::new(python)
        .args(["-m", "Pyro5.nameserver", "-n", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .arg("-s")
        .arg(format!("sql:{}", file.display()))
        .env_remove("PYRO_SERIALIZER")
        .env_remove("PYRO_NS_PORT")
        .env_remove("PYRO_NS_HOST")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("start python -m Pyro5.nameserver")
}

/// Polls until the name server on `port` answers a lookup of `probe`;
/// returns how long that took from `started` and the connected client.
/// A server that exits or is not ready in time fails the run with its
/// stderr.
fn wait_until_ready(
    server: &mut Child,
    started: Instant,
    port: u16,
    probe: &str,
    stderr: &Path,
) -> (Duration, NameServerProxy) {
    let serpent = serializer::by_name("serpent");
    loop {
        let answered = NameServerProxy::connect("127.0.0.1", port, Some(CALL_TIMEOUT), serpent)
            .and_then(|ns| ns.lookup(probe).map(|_| ns));
        if let Ok(ns) = answered {
            return (started.elapsed(), ns);
        }
        let problem = match server.try_wait() {
            Ok(Some(status)) => Some(format!("exited ({status})")),
            _ if started.elapsed() > READY_TIMEOUT => {
                Some(format!("did not answer within {READY_TIMEOUT:?}"))
            }
            _ => None,
        };
        if let Some(problem) = problem {
            let _ = server.kill();
            let _ = server.wait();
            let log = fs::read_to_string(stderr).unwrap_or_default();
            panic!("the name server on port {port} {problem}; its stderr:\n{log}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

fn per_second(calls: usize, mut call: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for i in 0..calls {
        call(i);
    }
    calls as f64 / start.elapsed().as_secs_f64()
}

/// Registers names the file does not hold, each with a service's tags.
fn register_new(ns: &NameServerProxy) -> f64 {
    per_second(NEW_NAMES, |i| {
        let tags = instrument_tags("a new instrument");
        ns.register(
            &format!("lab.new{i:04}"),
            &format!("PYRO:new{i}@127.0.0.1:6000"),
            false,
            &tags,
        )
        .expect("register a new name");
    })
}

/// Registers names the file holds again, spread over the file, with a new
/// URI and a changed description.
fn register_again(ns: &NameServerProxy, names: usize) -> f64 {
    per_second(AGAIN, |i| {
        let n = i * (names / AGAIN);
        let tags = instrument_tags(&format!("instrument {n}, moved"));
        ns.register(
            &instrument_name(n),
            &format!("PYRO:instrument{n}@127.0.0.1:7000"),
            false,
            &tags,
        )
        .expect("register a name again");
    })
}

/// A name server process, killed when dropped (both servers commit each
/// change before answering, and a trial's file is thrown away after).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Bench {
    sandbox: Sandbox,
    python: PathBuf,
}

impl Bench {
    /// Starts `server` on `file` and waits until it answers a lookup of
    /// the file's last name; returns it, how long that took, and the
    /// client that got the answer.
    fn start(
        &self,
        server: Server,
        file: &Path,
        names: usize,
    ) -> (Running, Duration, NameServerProxy) {
        let stderr_path = self.sandbox.path().join("server.stderr");
        let stderr = fs::File::create(&stderr_path).expect("create the stderr file");
        let port = free_port();
        let started = Instant::now();
        let mut child = match server {
            Server::Ours => start_ours(&self.sandbox, file, port, stderr),
            Server::Stock => start_stock(&self.python, file, port, stderr),
        };
        let probe = instrument_name(names - 1);
        let (ready, ns) = wait_until_ready(&mut child, started, port, &probe, &stderr_path);
        (Running(child), ready, ns)
    }

    /// On a fresh copy of `seed`: start, register, stop, start again.
    fn trial(&self, server: Server, seed: &Path, names: usize) -> Trial {
        let file = self.sandbox.path().join("trial.sqlite");
        copy_for_trial(seed, &file);
        let (running, ready, ns) = self.start(server, &file, names);
        let new_per_second = register_new(&ns);
        let again_per_second = register_again(&ns, names);
        drop((ns, running));
        let (_running, ready_again, _) = self.start(server, &file, names);
        Trial {
            ready,
            ready_again,
            new_per_second,
            again_per_second,
        }
    }
}

/// Median and range.
struct Summary {
    median: f64,
    min: f64,
    max: f64,
}

fn summarize(mut values: Vec<f64>) -> Summary {
    values.sort_by(f64::total_cmp);
    Summary {
        median: values[values.len() / 2],
        min: values[0],
        max: values[values.len() - 1],
    }
}

fn report_row(what: &str, server: Server, summary: &Summary, unit: &str, precision: usize) {
    println!(
        "  {what:<14} {:<13} {:>9.precision$} {unit}  [{:.precision$} - {:.precision$}]",
        server.label(),
        summary.median,
        summary.min,
        summary.max,
    );
}

/// Each file size with every trial of both servers on it.
type Results = Vec<(usize, Vec<(Server, Trial)>)>;

/// Rounds of every size and both servers, so that what else the machine
/// does at some moment (the disk is shared) falls on all four alike, and
/// the rate at 100,000 names is compared with the rate at 1,000 measured
/// in the same minutes.
fn measure(bench: &Bench) -> Results {
    let mut results: Results = SIZES.iter().map(|&names| (names, Vec::new())).collect();
    let seeds: Vec<PathBuf> = SIZES
        .iter()
        .map(|names| {
            let seed = bench.sandbox.path().join(format!("seed-{names}.sqlite"));
            write_pyro5_file(&seed, *names);
            seed
        })
        .collect();
    for round in 0..ROUNDS {
        for ((names, trials), seed) in results.iter_mut().zip(&seeds) {
            let mut order = SERVERS;
            if round % 2 == 1 {
                order.reverse();
            }
            for server in order {
                trials.push((server, bench.trial(server, seed, *names)));
            }
        }
    }
    results
}

fn metric(trials: &[(Server, Trial)], server: Server, pick: fn(&Trial) -> f64) -> Summary {
    summarize(
        trials
            .iter()
            .filter(|(s, _)| *s == server)
            .map(|(_, t)| pick(t))
            .collect(),
    )
}

/// What is reported: title, unit, decimals, and the measurement.
type Section = (&'static str, &'static str, usize, fn(&Trial) -> f64);

const SECTIONS: [Section; 4] = [
    (
        "ready (answers a lookup), on the file as Pyro5 wrote it",
        "s",
        3,
        |t| t.ready.as_secs_f64(),
    ),
    ("ready again, restarted on the same file", "s", 3, |t| {
        t.ready_again.as_secs_f64()
    }),
    ("registering new names", "/s", 0, |t| t.new_per_second),
    (
        "registering names in the file again (new URI, one tag changed)",
        "/s",
        0,
        |t| t.again_per_second,
    ),
];

fn report(results: &Results) {
    for (title, unit, precision, pick) in SECTIONS {
        println!("\n{title}");
        for (names, trials) in results {
            for server in SERVERS {
                let summary = metric(trials, server, pick);
                report_row(&format!("{names} names"), server, &summary, unit, precision);
            }
        }
    }
    println!(
        "\nregistration rate at {} names / at {} names",
        SIZES[1], SIZES[0]
    );
    for server in SERVERS {
        let ratio = |pick: fn(&Trial) -> f64| {
            metric(&results[1].1, server, pick).median / metric(&results[0].1, server, pick).median
        };
        println!(
            "  {:<13} new names {:.2}x, again {:.2}x",
            server.label(),
            ratio(|t| t.new_per_second),
            ratio(|t| t.again_per_second),
        );
    }
}

fn main() {
    let bench = Bench {
        sandbox: Sandbox::new(),
        python: python_with_pyro5(),
    };
    println!(
        "name server, sql storage: pyrolab-host against stock Pyro5 ({} cores, {ROUNDS} rounds; median [min - max])",
        thread::available_parallelism().map_or(1, |n| n.get())
    );
    report(&measure(&bench));
}
