//! How long validating a launch configuration takes as it grows: 1,000,
//! 10,000 and 100,000 services (and a daemon per ten, each on a fixed
//! port and autolaunched, so every cross-entry check has work to do), read
//! from YAML text by the same `config::load_str` that `config validate`,
//! `config update` and `up` use. Each size is timed five times; the median
//! is printed with the range, per entry, and how much longer each size
//! took than the one ten times smaller (10x is linear).
//!
//! Run: `cargo bench -p pyrolab-host --bench config_validate`

use std::path::Path;
use std::time::{Duration, Instant};

use pyrolab_host::config;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const TRIALS: usize = 5;

fn main() {
    println!("launch configuration validation (config::load_str), {TRIALS} trials each\n");
    let mut previous: Option<Duration> = None;
    for services in SIZES {
        let text = lab(services);
        let mut times: Vec<Duration> = (0..TRIALS).map(|_| validate(&text)).collect();
        times.sort();
        let median = times[TRIALS / 2];
        let entries = services + services / 10;
        let growth = previous
            .map(|before| {
                format!(
                    "{:>6.1}x the size before",
                    median.as_secs_f64() / before.as_secs_f64()
                )
            })
            .unwrap_or_default();
        println!(
            "{services:>7} services + {:>6} daemons ({:>5.1} MB)  median {:>9.1} ms (trials {:.1}-{:.1})  {:>5.2} µs/entry  {growth}",
            services / 10,
            text.len() as f64 / 1e6,
            median.as_secs_f64() * 1e3,
            times[0].as_secs_f64() * 1e3,
            times[TRIALS - 1].as_secs_f64() * 1e3,
            median.as_secs_f64() * 1e6 / entries as f64,
        );
        previous = Some(median);
    }
}

fn validate(text: &str) -> Duration {
    let started = Instant::now();
    let loaded = config::load_str(text, Path::new("lab.yaml"), Path::new("."), false);
    let elapsed = started.elapsed();
    assert!(loaded.is_ok(), "the generated lab is valid");
    elapsed
}

/// `services` services over a daemon per ten, all on one name server.
fn lab(services: usize) -> String {
    let daemons = services.div_ceil(10);
    let mut text = String::from("version: '1.0'\nnameservers:\n  ns: {}\ndaemons:\n");
    for d in 0..daemons {
        text.push_str(&format!(
            "  d{d}: {{nameservers: [ns], host: 127.0.0.1, port: {}}}\n",
            20_000 + d % 40_000
        ));
    }
    text.push_str("services:\n");
    for s in 0..services {
        text.push_str(&format!(
            "  s{s}: {{module: sample, classname: SampleService, daemon: d{}, nameservers: [ns]}}\n",
            s % daemons
        ));
    }
    let names: Vec<String> = (0..daemons).map(|d| format!("d{d}")).collect();
    text.push_str(&format!("autolaunch:\n  daemons: [{}]\n", names.join(", ")));
    text
}
