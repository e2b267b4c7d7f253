//! Autoclean: every period the name server checks that each registered
//! object's daemon still answers on its address, and removes registrations
//! whose daemon missed two checks in a row (so one slow moment does not
//! drop a live service).

use std::collections::HashMap;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::{NAMESERVER_OBJECT, NameServer};
use crate::daemon::pyro::DAEMON_OBJECT;
use crate::net::Stream;
use crate::stop_signal::StopSignal;
use crate::wire::uri::{Location, PyroUri};

/// Checks a registration may miss in a row before it is removed.
const MISSES_ALLOWED: u32 = 2;

/// How long one check waits for a daemon to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running autoclean thread; stops when dropped.
pub struct AutoCleaner {
    stop: StopSignal,
    thread: Option<JoinHandle<()>>,
}

impl AutoCleaner {
    /// Checks the registrations of `nameserver` every `period`.
    pub fn start(nameserver: Arc<NameServer>, period: Duration) -> std::io::Result<AutoCleaner> {
        let stop = StopSignal::new();
        let signal = stop.clone();
        let thread = thread::Builder::new()
            .name("ns-autoclean".to_owned())
            .spawn(move || {
                let mut misses: HashMap<String, u32> = HashMap::new();
                while signal.wait(period) {
                    // A lab whose name servers share a registry cleans it
                    // once, from the name server holding the lease.
                    if nameserver.leads_autoclean() {
                        sweep(&nameserver, &mut misses);
                    } else {
                        misses.clear();
                    }
                }
            })?;
        Ok(AutoCleaner {
            stop,
            thread: Some(thread),
        })
    }
}

fn sweep(nameserver: &NameServer, misses: &mut HashMap<String, u32>) {
    let entries = nameserver.snapshot();
    misses.retain(|name, _| entries.iter().any(|(n, _)| n == name));
    for (name, entry) in entries {
        // A host's management object stays listed while its manager is
        // down: it is how the lab's other hosts know that host is missing
        // (its manager removes it when it stops cleanly).
        if name == NAMESERVER_OBJECT
            || name == DAEMON_OBJECT
            || entry.metadata.contains(crate::manager::management::TAG)
        {
            continue;
        }
        let Ok(uri) = PyroUri::parse(&entry.uri) else {
            // PYRONAME/PYROMETA registrations point at names, not daemons.
            continue;
        };
        if answers(&uri.location) {
            misses.remove(&name);
            continue;
        }
        let missed = misses.entry(name.clone()).or_insert(0);
        *missed += 1;
        if *missed >= MISSES_ALLOWED && nameserver.remove_if_unchanged(&name, &entry.uri) {
            tracing::info!(
                "autoclean: removed {name} ({}): its daemon did not answer {missed} checks in a row",
                entry.uri
            );
            misses.remove(&name);
        }
    }
}

/// Whether a daemon accepts connections at `location` (what Pyro5's
/// autoclean checks: any Pyro5 daemon, ours or Python's, passes).
fn answers(location: &Location) -> bool {
    match location {
        Location::Tcp { host, port } => (host.as_str(), *port)
            .to_socket_addrs()
            .map(|addresses| {
                addresses
                    .into_iter()
                    .any(|address| TcpStream::connect_timeout(&address, CONNECT_TIMEOUT).is_ok())
            })
            .unwrap_or(false),
        Location::Unix(path) => Stream::connect_unix(path).is_ok(),
    }
}

impl Drop for AutoCleaner {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
