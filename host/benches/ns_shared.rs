//! Registrations and lookups per second against each name-server storage,
//! in one run on loopback: `memory`, `sql` (SQLite) and `postgresql` with
//! one name server, and `postgresql` with two name servers sharing the
//! registry (the client alternates between them, so every call on one
//! follows a change made through the other).
//!
//! Each trial starts fresh name servers as users run them (`pyrolab-host
//! run nameserver`), on a fresh file or a fresh database of one private
//! PostgreSQL server (started here; Debian's `postgresql` package must be
//! installed). One client (the Rust client, serpent) registers
//! [`NAMES`] names with a service's four tags, then looks each up
//! [`LOOKUPS_PER_NAME`] times. Rounds alternate the order of the
//! storages; medians with the range, and each storage's rate as a share of
//! `memory`'s in the same round.
//!
//! Run: `cargo bench -p pyrolab-host --bench ns_shared`

use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_host::client::NameServerProxy;
use pyrolab_host::nameserver::tags;
use pyrolab_host::wire::serializer;
use pyrolab_test_support::postgres::Postgres;
use pyrolab_test_support::{Sandbox, free_port};

const ROUNDS: usize = 5;
const NAMES: usize = 500;
const LOOKUPS_PER_NAME: usize = 4;
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Setup {
    Memory,
    Sql,
    Postgresql,
    PostgresqlTwo,
}

const SETUPS: [Setup; 4] = [
    Setup::Memory,
    Setup::Sql,
    Setup::Postgresql,
    Setup::PostgresqlTwo,
];

impl Setup {
    fn label(self) -> &'static str {
        match self {
            Setup::Memory => "memory, 1 name server",
            Setup::Sql => "sql, 1 name server",
            Setup::Postgresql => "postgresql, 1 name server",
            Setup::PostgresqlTwo => "postgresql, 2 name servers",
        }
    }

    fn servers(self) -> usize {
        if self == Setup::PostgresqlTwo { 2 } else { 1 }
    }
}

/// A name server process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the name servers of one trial and connects a client to each.
fn start(
    sandbox: &Sandbox,
    postgres: &Postgres,
    setup: Setup,
    trial: usize,
) -> (Vec<Running>, Vec<NameServerProxy>) {
    let storage = match setup {
        Setup::Memory => "storage: memory".to_owned(),
        Setup::Sql => format!(
            "storage: sql, storage_file: '{}'",
            sandbox
                .path()
                .join(format!("trial{trial}.sqlite"))
                .display()
        ),
        Setup::Postgresql | Setup::PostgresqlTwo => {
            let database = format!("trial{trial}");
            postgres.psql(&format!("CREATE DATABASE {database}"));
            let url = postgres.url_for(&database);
            format!("storage: postgresql, storage_url: '{url}'")
        }
    };
    let ports: Vec<u16> = (0..setup.servers()).map(|_| free_port()).collect();
    let mut text = String::from("version: '1.0'\nnameservers:\n");
    for (i, port) in ports.iter().enumerate() {
        text.push_str(&format!(
            "  ns{i}: {{host: 127.0.0.1, ns_port: {port}, {storage}}}\n"
        ));
    }
    let config = sandbox.path().join(format!("trial{trial}.yaml"));
    fs::write(&config, text).expect("write the configuration");
    let mut running = Vec::new();
    let mut clients = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let log = sandbox.path().join(format!("trial{trial}-ns{i}.log"));
        let child = sandbox
            .host()
            .args(["run", "nameserver", &format!("ns{i}"), "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("create the log"))
            .spawn()
            .expect("start pyrolab-host run nameserver");
        running.push(Running(child));
        clients.push(connect(*port, &log));
    }
    (running, clients)
}

fn connect(port: u16, log: &Path) -> NameServerProxy {
    let started = Instant::now();
    let serpent = serializer::by_name("serpent");
    loop {
        if let Ok(ns) = NameServerProxy::connect("127.0.0.1", port, Some(CALL_TIMEOUT), serpent) {
            return ns;
        }
        if started.elapsed() > READY_TIMEOUT {
            panic!(
                "the name server on port {port} did not answer; its log:\n{}",
                fs::read_to_string(log).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Registrations/s and lookups/s of one trial.
fn trial(clients: &[NameServerProxy]) -> (f64, f64) {
    let tags = tags::for_service("lab_instruments", "Instrument", "0.1.1", "an instrument");
    let through = |i: usize| &clients[i % clients.len()];
    let started = Instant::now();
    for i in 0..NAMES {
        through(i)
            .register(
                &format!("lab.instrument{i:04}"),
                &format!("PYRO:instrument{i}@127.0.0.1:6000"),
                false,
                &tags,
            )
            .expect("register");
    }
    let registrations = NAMES as f64 / started.elapsed().as_secs_f64();
    let lookups = NAMES * LOOKUPS_PER_NAME;
    let started = Instant::now();
    for i in 0..lookups {
        // Looked up through the other name server than it was registered
        // with, when there are two.
        let name = i % NAMES;
        through(name + 1)
            .lookup(&format!("lab.instrument{name:04}"))
            .expect("lookup");
    }
    (
        registrations,
        lookups as f64 / started.elapsed().as_secs_f64(),
    )
}

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

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once
    // as a smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let rounds = if smoke { 1 } else { ROUNDS };
    let sandbox = Sandbox::new();
    let postgres = Postgres::start();
    // [setup] -> per round (registrations/s, lookups/s)
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(); SETUPS.len()];
    let mut trial_number = 0;
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..SETUPS.len()).collect();
        order.rotate_left(round % SETUPS.len());
        for index in order {
            trial_number += 1;
            let (running, clients) = start(&sandbox, &postgres, SETUPS[index], trial_number);
            results[index].push(trial(&clients));
            drop(clients);
            drop(running);
        }
    }
    println!(
        "name-server storage, {NAMES} registrations then {} lookups per trial, {rounds} rounds (median [range])",
        NAMES * LOOKUPS_PER_NAME
    );
    let memory = results[0].clone();
    for (setup, trials) in SETUPS.iter().zip(&results) {
        let registrations = summarize(trials.iter().map(|t| t.0).collect());
        let lookups = summarize(trials.iter().map(|t| t.1).collect());
        let share = |pick: fn(&(f64, f64)) -> f64| {
            summarize(
                trials
                    .iter()
                    .zip(&memory)
                    .map(|(t, m)| pick(t) / pick(m))
                    .collect(),
            )
        };
        let (reg_share, look_share) = (share(|t| t.0), share(|t| t.1));
        println!(
            "  {:<27} register {:>7.0}/s [{:.0} - {:.0}] ({:.0}% of memory [{:.0} - {:.0}])   lookup {:>7.0}/s [{:.0} - {:.0}] ({:.0}% [{:.0} - {:.0}])",
            setup.label(),
            registrations.median,
            registrations.min,
            registrations.max,
            reg_share.median * 100.0,
            reg_share.min * 100.0,
            reg_share.max * 100.0,
            lookups.median,
            lookups.min,
            lookups.max,
            look_share.median * 100.0,
            look_share.min * 100.0,
            look_share.max * 100.0,
        );
    }
}
