//! What the web monitor's polling costs as the lab grows: the real
//! `pyrolab-host monitor` (this profile's binary: `cargo build --release`
//! first) watching a real name server that lists 100, 1,000 and 10,000
//! services (each with the four tags a daemon registers it with, all on
//! one daemon, the name server's own), polling every 0.5 s. For each size,
//! once the monitor shows every service, its CPU time over 6 s is taken
//! from the scheduler's account (`/proc/PID/task/*/schedstat`): the share
//! of a core it uses, and that per service listed. Linear polling keeps
//! the per-service cost flat as the lab grows.
//!
//! Run: `cargo build --release -p pyrolab-host && cargo bench -p pyrolab-host --bench monitor_poll`

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pyrolab_host::client::NameServerProxy;

const SIZES: [usize; 3] = [100, 1_000, 10_000];
const POLLING: &str = "0.5";
const MEASURE_FOR: Duration = Duration::from_secs(6);

fn main() {
    let binary = profile_dir().join("pyrolab-host");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build --release -p pyrolab-host` first",
        binary.display()
    );
    println!(
        "web monitor polling every {POLLING} s, CPU over {} s\n",
        MEASURE_FOR.as_secs()
    );
    let mut previous: Option<f64> = None;
    for services in SIZES {
        let dir = std::env::temp_dir().join(format!(
            "pyrolab-monitor-bench-{}-{services}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let share = measure(&binary, &dir, services);
        let _ = std::fs::remove_dir_all(&dir);
        let per_service = share * 1e6 / services as f64;
        let growth = previous
            .map(|before| format!("  {:.1}x the size before", share / before))
            .unwrap_or_default();
        println!(
            "{services:>6} services: {:>6.2}% of a core, {per_service:>6.2} µs of CPU per service per second{growth}",
            share * 100.0
        );
        previous = Some(share);
    }
}

/// The share of a core the monitor uses while it watches `services`.
fn measure(binary: &Path, dir: &Path, services: usize) -> f64 {
    let config = dir.join("ns.yaml");
    std::fs::write(
        &config,
        "version: '1.0'\nnameservers:\n  ns:\n    host: 127.0.0.1\n    ns_port: 0\n",
    )
    .unwrap();
    let host = |args: &[&str]| {
        let mut command = Command::new(binary);
        command
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        command
    };
    let mut ns = Running(
        host(&[
            "run",
            "nameserver",
            "ns",
            "--config",
            config.to_str().unwrap(),
        ])
        .spawn()
        .unwrap(),
    );
    let line = first_line_with(&mut ns.0, "listening on ");
    let port: u16 = line.rsplit(':').next().unwrap().trim().parse().unwrap();
    let client =
        NameServerProxy::connect("127.0.0.1", port, Some(Duration::from_secs(30)), None).unwrap();
    let tags: BTreeSet<String> = [
        "pyrolab:service",
        "pyrolab:daemon=lab",
        "pyrolab:class=sample.SampleService",
        "pyrolab:description=a sample service",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for i in 0..services {
        client
            .register(
                &format!("bench.service.{i}"),
                &format!("PYRO:bench.service.{i}@127.0.0.1:{port}"),
                false,
                &tags,
            )
            .unwrap();
    }
    let mut monitor = Running(
        host(&[
            "monitor",
            "--port",
            "0",
            "--ns-host",
            "127.0.0.1",
            "--ns-port",
            &port.to_string(),
            "--polling",
            POLLING,
        ])
        .spawn()
        .unwrap(),
    );
    let line = first_line_with(&mut monitor.0, "monitor listening on ");
    let authority = line
        .rsplit(' ')
        .next()
        .unwrap()
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !get(&authority, "/api/nameservers").contains(&format!("\"services\":{services}")) {
        assert!(
            Instant::now() < deadline,
            "the monitor never listed {services} services"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = monitor.0.id();
    let (cpu, started) = (process_cpu(pid), Instant::now());
    std::thread::sleep(MEASURE_FOR);
    (process_cpu(pid) - cpu).as_secs_f64() / started.elapsed().as_secs_f64()
}

/// A child process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn first_line_with(child: &mut Child, text: &str) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains(text))
        .unwrap_or_else(|| panic!("no line containing {text:?}"));
    // Keep reading its output, so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    line
}

fn get(authority: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

/// CPU time the threads of process `pid` have had, those alive now.
fn process_cpu(pid: u32) -> Duration {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .filter_map(Result::ok)
                .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
                .filter_map(|text| text.split_whitespace().next()?.parse::<u64>().ok())
                .map(Duration::from_nanos)
                .sum()
        })
        .unwrap_or_default()
}

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("bench executable");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("<profile>/deps")
        .to_owned()
}
