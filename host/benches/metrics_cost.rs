//! What call metrics cost: the same calls through two daemons in one run,
//! one counting (`metrics: true`, the default) and one not, in
//! alternating trials; and the counting alone (a call's meter started and
//! finished, no daemon), which is the cost the daemon adds to each call.
//!
//! Run: `cargo build --release -p pyrolab-sample && cargo bench -p pyrolab-host --bench metrics_cost`
//!
//! Reports, for sequential `echo("hello")` calls from the Rust client and
//! for 16 connections calling at once: the median time a call took with
//! metrics on and off, the median of the per-trial differences and
//! ratios with their ranges; then the nanoseconds one call's counting
//! takes on one thread and with a thread a core counting the same method
//! at once (the contended case: the atomic counters' cache line moves
//! between cores).

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_host::client::Proxy;
use pyrolab_host::config::schema::{InstanceMode, ServerType};
use pyrolab_host::daemon::metrics::DaemonMetrics;
use pyrolab_host::daemon::{Daemon, DaemonSettings, HostedService};
use pyrolab_host::loader::Loader;
use pyrolab_host::net::{Bound, Listener};
use pyrolab_plugin_api::Value;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const TRIALS: usize = 11;
const CALLS_PER_TRIAL: usize = 4_000;
const CONNECTIONS: usize = 16;
const CALLS_PER_CONNECTION: usize = 500;
const METER_CALLS: usize = 2_000_000;

fn sample_library() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("<profile>/deps");
    let name = format!(
        "{}sample{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = profile.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release -p pyrolab-sample` first",
        path.display()
    );
    path
}

/// A thread daemon serving `sample`, counting or not; its `PYRO:` URI.
fn start_daemon(metrics: bool) -> String {
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
            name: format!("metrics-{metrics}"),
            servertype: ServerType::Thread,
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
            metrics,
        },
        vec![service],
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let location = listener.local_addr().unwrap().to_string();
    let shutdown = daemon.shutdown_handle();
    let bound = Bound {
        listener: Listener::Tcp(listener),
        location: location.clone(),
        tls: None,
    };
    thread::spawn(move || daemon.serve(bound, &shutdown));
    format!("PYRO:sample@{location}")
}

/// Seconds a call took, over one trial of sequential calls.
fn sequential(proxy: &Proxy) -> f64 {
    let started = Instant::now();
    for _ in 0..CALLS_PER_TRIAL {
        let _: String = proxy.call("echo", ("hello",)).unwrap();
    }
    started.elapsed().as_secs_f64() / CALLS_PER_TRIAL as f64
}

/// Seconds a call took, on average, with 16 connections calling at once.
fn concurrent(uri: &str) -> f64 {
    let barrier = Arc::new(Barrier::new(CONNECTIONS + 1));
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let barrier = Arc::clone(&barrier);
            let proxy = Proxy::connect(uri).unwrap();
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..CALLS_PER_CONNECTION {
                    let _: String = proxy.call("echo", ("hello",)).unwrap();
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for client in clients {
        client.join().unwrap();
    }
    started.elapsed().as_secs_f64() / (CONNECTIONS * CALLS_PER_CONNECTION) as f64
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn range(values: &[f64]) -> (f64, f64) {
    let low = values.iter().copied().fold(f64::INFINITY, f64::min);
    let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (low, high)
}

/// Alternating trials of `trial` with metrics on and off (the order
/// swapped each trial); prints medians, differences and ratios.
fn compare(title: &str, mut trial: impl FnMut(bool) -> f64) {
    let (mut on, mut off, mut difference, mut ratio) = (vec![], vec![], vec![], vec![]);
    for round in 0..TRIALS {
        let (first, second) = if round % 2 == 0 {
            (true, false)
        } else {
            (false, true)
        };
        let a = trial(first);
        let b = trial(second);
        let (counted, uncounted) = if first { (a, b) } else { (b, a) };
        on.push(counted);
        off.push(uncounted);
        difference.push(counted - uncounted);
        ratio.push(counted / uncounted);
    }
    let (low_ratio, high_ratio) = range(&ratio);
    let (low_difference, high_difference) = range(&difference);
    println!(
        "{title}: a call takes {:.1} µs with metrics, {:.1} µs without; \
         difference {:+.0} ns [{:+.0} .. {:+.0}], ratio x{:.3} [{:.3} .. {:.3}] ({TRIALS} trials)",
        median(&mut on) * 1e6,
        median(&mut off) * 1e6,
        median(&mut difference) * 1e9,
        low_difference * 1e9,
        high_difference * 1e9,
        median(&mut ratio),
        low_ratio,
        high_ratio,
    );
}

/// Nanoseconds one call's counting takes, with `threads` threads counting
/// calls of the same method at once.
fn meter_cost(threads: usize) -> f64 {
    let metrics = Arc::new(DaemonMetrics::new(
        "bench",
        true,
        [("sample".to_owned(), vec!["echo".to_owned()])],
    ));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let calls = METER_CALLS / threads;
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let metrics = Arc::clone(&metrics);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                // The daemon counts a call from when its request was read,
                // a time it takes anyway: no clock is read at the start.
                let read_at = Instant::now();
                barrier.wait();
                for _ in 0..calls {
                    let mut meter = metrics.start("sample", "echo", 60, read_at);
                    meter.result::<()>(&Ok(()));
                    meter.finish(60);
                }
            })
        })
        .collect();
    barrier.wait();
    let started = Instant::now();
    for worker in workers {
        worker.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    // Each thread's calls, one after another on its core: the time a call
    // takes is the elapsed time over a thread's calls.
    elapsed / calls as f64 * 1e9
}

fn main() {
    let counting = start_daemon(true);
    let not_counting = start_daemon(false);
    let uri = |on: bool| if on { &counting } else { &not_counting };
    let proxies = [
        Proxy::connect(&not_counting).unwrap(),
        Proxy::connect(&counting).unwrap(),
    ];
    // Warm up both: connections, the driver, the allocator.
    for proxy in &proxies {
        sequential(proxy);
    }
    println!("Call metrics on and off, the same daemon otherwise, alternating trials");
    compare("Rust client, echo(\"hello\"), sequential", |on| {
        sequential(&proxies[usize::from(on)])
    });
    compare(
        &format!("Rust client, echo(\"hello\"), {CONNECTIONS} connections at once"),
        |on| concurrent(uri(on)),
    );
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let mut single: Vec<f64> = (0..5).map(|_| meter_cost(1)).collect();
    let mut contended: Vec<f64> = (0..5).map(|_| meter_cost(cores)).collect();
    println!(
        "Counting alone (start, finish; no daemon): {:.0} ns a call on one thread [{:.0} .. {:.0}], \
         {:.0} ns with {cores} threads (one a core) counting the same method [{:.0} .. {:.0}]",
        median(&mut single),
        range(&single).0,
        range(&single).1,
        median(&mut contended),
        range(&contended).0,
        range(&contended).1,
    );
}
