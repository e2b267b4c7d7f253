//! How fast `pyrolab-host up` brings the demo lab up, and how fast a
//! killed daemon is back, next to baselines measured in the same run.
//!
//! Run: `cargo build --release && cargo bench -p pyrolab-host --bench lab_up`
//!
//! Reports, each the median (and worst) of several rounds:
//!
//! - baseline: starting the binary (`pyrolab-host --version`);
//! - baseline: one daemon run by hand (`run daemon lockable`) until it
//!   prints that it listens;
//! - `up`: the demo lab (`config/demo-lab.yaml`: a name server and two
//!   daemons) from nothing to every component ready and registered (the
//!   `up` command returns then);
//! - `down`: every component stopped and unregistered, the manager gone;
//! - recovery: `kill -9` of the lockable daemon, and of the name server,
//!   until a client that looks `library` up by name gets an answer again.

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pyrolab_host::client::Proxy;
use pyrolab_test_support::{Background, Sandbox, free_port, host_binary, repo_root, run_host};

const ROUNDS: usize = 10;

fn main() {
    let sandbox = Sandbox::new();
    for lib in ["sample", "libservice"] {
        sandbox.install_plugin(lib);
    }
    let ns_port = free_port();
    let demo = fs::read_to_string(repo_root().join("config/demo-lab.yaml")).expect("demo config");
    let config = sandbox.path().join("demo-lab.yaml");
    fs::write(
        &config,
        demo.replace(
            "- ../target/release",
            &format!("- {}", sandbox.plugin_dir().display()),
        )
        .replace("ns_port: 9090", &format!("ns_port: {ns_port}"))
        .replace("host: localhost", "host: 127.0.0.1")
        .replace("  port: 8080\n", "  port: 0\n"),
    )
    .expect("write config");
    run_host(sandbox.host().args(["config", "update"]).arg(&config)).success();
    let _down = Down(&sandbox);

    println!("pyrolab-host lab start-up and recovery ({ROUNDS} rounds each; median, worst)");
    report(
        "baseline: start the binary (--version)",
        measure(|| {
            let status = Command::new(host_binary())
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .expect("run");
            assert!(status.success());
        }),
    );
    report(
        "baseline: one daemon by hand, to listening",
        measure(|| {
            let mut daemon = Background::start(sandbox.host().args(["run", "daemon", "lockable"]));
            daemon.wait_for_line("daemon lockable listening on", Duration::from_secs(30));
            daemon.stop();
        }),
    );
    let mut downs = Vec::new();
    let ups = measure_each(|| {
        let up = timed(sandbox.host().arg("up"));
        downs.push(timed(sandbox.host().arg("down")));
        up
    });
    report("up: demo lab (3 components) to all ready", ups);
    report("down: all stopped and unregistered", downs);

    run_host(sandbox.host().arg("up")).success();
    let name = format!("PYRONAME:library@127.0.0.1:{ns_port}");
    for (component, kind, what) in [
        (
            "lockable",
            "daemon",
            "recovery: kill -9 daemon to answering by name",
        ),
        (
            "production",
            "nameserver",
            "recovery: kill -9 name server to answering by name",
        ),
    ] {
        let recoveries = measure_each(|| {
            // Five crashes in a row within a minute mark a component
            // failed (a crash loop); an explicit restart starts the count
            // afresh.
            run_host(sandbox.host().args(["restart", kind, component])).success();
            let pid = pid_of(&sandbox, component).expect("it runs");
            let killed = Instant::now();
            Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .expect("kill");
            let deadline = killed + Duration::from_secs(30);
            loop {
                let answered = Proxy::connect(&name)
                    .and_then(|proxy| proxy.call::<serde_json::Value>("get_catalog", ()))
                    .is_ok();
                // The old process may still answer in the instant after
                // the kill; it counts only once the pid changed.
                let now = pid_of(&sandbox, component);
                if answered && now.is_some() && now != Some(pid) {
                    break killed.elapsed();
                }
                assert!(
                    Instant::now() < deadline,
                    "{component}: no recovery within 30 s"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        report(what, recoveries);
    }
    run_host(sandbox.host().arg("down")).success();
}

/// Stops the lab when the benchmark ends, also when it panics.
struct Down<'a>(&'a Sandbox);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = self.0.host().arg("down").output();
    }
}

/// Runs a command to its end (without the test harness's polling) and
/// returns how long it took.
fn timed(command: &mut Command) -> Duration {
    let started = Instant::now();
    let output = command.output().expect("run pyrolab-host");
    let took = started.elapsed();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    took
}

/// The pid of `component` while it runs.
fn pid_of(sandbox: &Sandbox, component: &str) -> Option<u32> {
    let status = run_host(sandbox.host().args(["ps", "--json"]))
        .success()
        .json();
    status["components"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == component && c["status"] == "running")?["pid"]
        .as_u64()
        .map(|pid| pid as u32)
}

fn measure(mut round: impl FnMut()) -> Vec<Duration> {
    measure_each(|| {
        let started = Instant::now();
        round();
        started.elapsed()
    })
}

fn measure_each(mut round: impl FnMut() -> Duration) -> Vec<Duration> {
    (0..ROUNDS).map(|_| round()).collect()
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let median = times[times.len() / 2];
    let worst = times[times.len() - 1];
    println!(
        "  {what:<48} {:>8.1} ms  (worst {:>7.1} ms)",
        median.as_secs_f64() * 1e3,
        worst.as_secs_f64() * 1e3
    );
}
