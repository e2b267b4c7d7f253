//! A bounded soak of the demo lab under `up`: good clients calling by
//! name, garbage, slowloris sockets, a oneway flood, name-server
//! registrations, and the `instruments` daemon killed with `kill -9`
//! again and again, all at once, for [`SOAK_FOR`].
//!
//! At the end: every good call either returned the right answer or failed
//! with an error saying why (never a wrong answer, a panic or a hang past
//! its timeout), good calls succeeded again after every kill, every
//! registration the name server acknowledged is still there, and the
//! components' memory and threads stayed under [`MAX_RSS_KB`] and
//! [`MAX_THREADS`] throughout.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpStream;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_host::client::{NameServerProxy, Proxy};
use pyrolab_plugin_api::CallArgs;
use pyrolab_test_support::managed_lab::Lab;
use pyrolab_test_support::wait_until;

/// How long the mixed load runs.
const SOAK_FOR: Duration = Duration::from_secs(40);
/// How often the daemon is killed meanwhile.
const KILL_EVERY: Duration = Duration::from_secs(10);
/// The most resident memory any component may use meanwhile.
const MAX_RSS_KB: u64 = 200 * 1024;
/// The most threads any component may have meanwhile (a thread daemon's
/// pool is 80).
const MAX_THREADS: u64 = 100;

#[test]
fn the_lab_survives_mixed_good_and_hostile_load_and_kill_9() {
    let lab = Lab::demo();
    lab.up().success();
    let ns = format!("127.0.0.1:{}", lab.ns_port);
    let stop = AtomicBool::new(false);
    let good_calls = AtomicU64::new(0);
    let failed_calls: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let acknowledged: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let peaks = Mutex::new((0u64, 0u64));
    let successes_after_kill = AtomicU64::new(0);
    let started = Instant::now();

    thread::scope(|scope| {
        // Good clients: look the service up by name, call, check the
        // answer; after a failure, look it up again (it may have moved).
        for client in 0..4 {
            let (stop, good_calls, failed_calls, ns) = (&stop, &good_calls, &failed_calls, &ns);
            let successes_after_kill = &successes_after_kill;
            scope.spawn(move || {
                let mut proxy: Option<Proxy> = None;
                let mut n = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let sample = match proxy.take() {
                        Some(sample) => sample,
                        None => match Proxy::connect(&format!("PYRONAME:sample@{ns}")) {
                            Ok(mut sample) => {
                                sample.set_timeout(Some(Duration::from_secs(10)));
                                sample
                            }
                            Err(err) => {
                                failed_calls.lock().unwrap().push(err.to_string());
                                thread::sleep(Duration::from_millis(50));
                                continue;
                            }
                        },
                    };
                    match sample.call::<i64>("add", (n, client)) {
                        Ok(sum) => {
                            assert_eq!(sum, n + client, "a wrong answer");
                            good_calls.fetch_add(1, Ordering::SeqCst);
                            successes_after_kill.fetch_add(1, Ordering::SeqCst);
                            proxy = Some(sample);
                        }
                        Err(err) => {
                            let reason = err.to_string();
                            assert!(!reason.is_empty(), "an error without a reason");
                            failed_calls.lock().unwrap().push(reason);
                            thread::sleep(Duration::from_millis(20));
                        }
                    }
                }
            });
        }
        // Registrations with the name server: each acknowledged one must
        // survive.
        {
            let (stop, acknowledged, ns_port) = (&stop, &acknowledged, lab.ns_port);
            scope.spawn(move || {
                let Ok(client) = NameServerProxy::connect(
                    "127.0.0.1",
                    ns_port,
                    Some(Duration::from_secs(10)),
                    None,
                ) else {
                    panic!("cannot reach the name server");
                };
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let name = format!("soak.registration.{n}");
                    if client
                        .register(&name, "PYRO:obj@127.0.0.1:5555", false, &BTreeSet::new())
                        .is_ok()
                    {
                        acknowledged.lock().unwrap().insert(name);
                    }
                    thread::sleep(Duration::from_millis(20));
                }
            });
        }
        // Garbage and slowloris at the daemon, wherever it is now; a
        // oneway flood through the name.
        {
            let (stop, lab) = (&stop, &lab);
            let address = move || {
                lab.ps()["services"]
                    .as_array()
                    .and_then(|all| all.iter().find(|s| s["name"] == "sample").cloned())
                    .and_then(|service| service["uri"].as_str().map(str::to_owned))
                    .and_then(|uri| uri.rsplit('@').next().map(str::to_owned))
            };
            scope.spawn(move || {
                let mut slow: Vec<TcpStream> = Vec::new();
                let mut round = 0u8;
                let mut at = None;
                while !stop.load(Ordering::SeqCst) {
                    round = round.wrapping_add(1);
                    if round % 10 == 1 {
                        at = address();
                    }
                    if let Some(at) = &at {
                        if let Ok(mut stream) = TcpStream::connect(at) {
                            let garbage: Vec<u8> =
                                (0..200u8).map(|i| i.wrapping_mul(round)).collect();
                            let _ = stream.write_all(&garbage);
                        }
                        for _ in 0..10 {
                            if let Ok(mut stream) = TcpStream::connect(at) {
                                let _ = stream.write_all(b"PY");
                                slow.push(stream);
                            }
                        }
                        // The daemon closes them after its handshake
                        // timeout; the oldest go from here too.
                        let excess = slow.len().saturating_sub(200);
                        slow.drain(..excess);
                    }
                    thread::sleep(Duration::from_millis(200));
                }
            });
        }
        {
            let (stop, ns) = (&stop, &ns);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Ok(sample) = Proxy::connect(&format!("PYRONAME:sample@{ns}")) else {
                        thread::sleep(Duration::from_millis(100));
                        continue;
                    };
                    for i in 0..2000 {
                        let args = CallArgs::positional(vec![format!("flood {i}").into()]);
                        if sample.call_oneway("echo", args).is_err() || stop.load(Ordering::SeqCst)
                        {
                            break;
                        }
                    }
                }
            });
        }
        // What the components use, once a second.
        {
            let (stop, lab, peaks) = (&stop, &lab, &peaks);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    for pid in lab.pids() {
                        let (rss, threads) = usage(pid);
                        let mut peaks = peaks.lock().unwrap();
                        peaks.0 = peaks.0.max(rss);
                        peaks.1 = peaks.1.max(threads);
                    }
                    thread::sleep(Duration::from_secs(1));
                }
            });
        }
        // kill -9, again and again; each time, good calls come back.
        while started.elapsed() < SOAK_FOR {
            thread::sleep(KILL_EVERY);
            let victim = lab.pid("instruments");
            let status = std::process::Command::new("kill")
                .args(["-9", &victim.to_string()])
                .status()
                .expect("run kill");
            assert!(status.success());
            // Calls that were answered before it died do not count.
            let gone = wait_until(Duration::from_secs(10), || {
                !pyrolab_test_support::process_running(victim)
            });
            assert!(gone, "kill -9 did not end the daemon");
            successes_after_kill.store(0, Ordering::SeqCst);
            let back = wait_until(Duration::from_secs(20), || {
                successes_after_kill.load(Ordering::SeqCst) > 10
            });
            assert!(
                back,
                "good calls did not come back after kill -9 of instruments"
            );
        }
        stop.store(true, Ordering::SeqCst);
    });

    let good = good_calls.load(Ordering::SeqCst);
    let failed = failed_calls.into_inner().unwrap();
    assert!(good > 1000, "only {good} good calls succeeded");
    // Every failure said why: a closed or refused connection, mostly.
    for reason in &failed {
        assert!(reason.len() > 5, "an unclear error: {reason:?}");
    }
    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(!acknowledged.is_empty());
    let client = NameServerProxy::connect(
        "127.0.0.1",
        lab.ns_port,
        Some(Duration::from_secs(10)),
        None,
    )
    .expect("connect to the name server");
    let listed = client.list(Some("soak.registration.")).expect("list");
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|name| !listed.contains_key(*name))
        .collect();
    assert!(lost.is_empty(), "acknowledged registrations lost: {lost:?}");
    let (rss, threads) = peaks.into_inner().unwrap();
    assert!(
        rss > 0 && rss < MAX_RSS_KB,
        "a component's RSS peaked at {rss} KB"
    );
    assert!(
        threads < MAX_THREADS,
        "a component peaked at {threads} threads"
    );
    for component in lab.ps()["components"].as_array().unwrap() {
        assert_eq!(component["status"], "running", "{component:#}");
    }
    eprintln!(
        "soak: {good} good calls, {} failed with a reason, {} registrations kept; peak RSS {rss} KB, \
         peak threads {threads}",
        failed.len(),
        acknowledged.len()
    );
}

/// VmRSS (KB) and Threads of process `pid` (0, 0 if it is gone).
fn usage(pid: u32) -> (u64, u64) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (0, 0);
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("Threads:"))
}
