//! The web monitor: a page and a JSON API that show the lab at a glance:
//! the name servers and every service they list (available, locked by
//! whom, or unreachable), the services of this host's lab that could not
//! register (and why), this host's components as `ps` shows them, and
//! each component's log. Read-only; bound to localhost unless configured
//! otherwise. The manager serves it when the configuration has a
//! `monitor:` section; `pyrolab-host monitor` runs it on its own, against
//! any name server.
//!
//! # Layout
//!
//! - `mod.rs`: the [`Monitor`]: a poller thread that looks at the lab
//!   every `polling` seconds and keeps the last look and the recent
//!   changes.
//! - `collect.rs`: one look at the name servers, daemons and components.
//! - `unregistered.rs`: the services of this host's lab that could not
//!   register, which no name server lists.
//! - `history.rs`: the last hour of each service's call metrics, for the
//!   page's charts.
//! - `charts.rs`: `/api/metrics`, what the charts and call tables show.
//! - `prometheus.rs`: `/metrics`, in Prometheus' text format.
//! - `http.rs`: the HTTP server (axum): the page, its assets, `/api/`,
//!   `/metrics`.
//! - `assets/`: the page (HTML, CSS, JavaScript; served by the binary, no
//!   CDN).

mod charts;
mod collect;
mod history;
mod http;
mod prometheus;
mod unregistered;

use crate::sync::RwLockUnpoisoned;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde::Serialize;

pub use collect::{NameServerTarget, ServiceState, Snapshot};

use crate::data_dir::DataDir;
use crate::lab::status::LabStatus;
use crate::stop_signal::StopSignal;

/// Changes kept for `/api/events`.
const EVENTS_KEPT: usize = 200;

/// Where the monitor gets the lab's components from.
pub type LabSource = Box<dyn Fn() -> Option<LabStatus> + Send + Sync>;

/// What the monitor watches and where it listens.
pub struct Settings {
    /// `host:port` to listen on.
    pub listen: String,
    /// Seconds between looks.
    pub polling: Duration,
    /// The name servers to watch.
    pub nameservers: Vec<NameServerTarget>,
    /// The manager's view of the components, where there is one.
    pub lab: Option<LabSource>,
    /// The data directory, for the components' logs.
    pub data_dir: Option<DataDir>,
    /// HTTPS, with this TLS; plain HTTP without.
    pub tls: Option<crate::tls::ServerTls>,
    /// Whether it may listen beyond loopback without TLS.
    pub insecure: bool,
    /// What it calls name servers and daemons with (TLS, or plain TCP).
    pub client_tls: Option<crate::tls::ClientTls>,
    /// Who may read the logs.
    pub rights: crate::access::MonitorRights,
}

/// A service's status changed.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    /// When it was seen (RFC 3339, UTC).
    pub time: String,
    /// The service.
    pub service: String,
    /// The name server listing it.
    pub nameserver: String,
    /// What it was (`null`: newly listed).
    pub from: Option<String>,
    /// What it is (`gone`: no longer listed).
    pub to: String,
    /// The lock holder or the reason, if any.
    pub detail: Option<String>,
}

/// What the poller keeps and the HTTP handlers read.
struct State {
    snapshot: RwLock<Option<Snapshot>>,
    /// The daemons' metrics of the last hour.
    history: RwLock<history::History>,
    events: RwLock<VecDeque<Event>>,
    polling: Duration,
    data_dir: Option<DataDir>,
    rights: crate::access::MonitorRights,
    /// What it calls the hosts' managers with.
    client_tls: Option<crate::tls::ClientTls>,
}

/// A running monitor; stops when dropped.
pub struct Monitor {
    address: SocketAddr,
    https: bool,
    stop: StopSignal,
    poller: Option<JoinHandle<()>>,
    server: Option<http::Server>,
}

impl Monitor {
    /// Binds the address and starts looking and serving.
    pub fn start(settings: Settings) -> std::io::Result<Monitor> {
        let state = Arc::new(State {
            snapshot: RwLock::new(None),
            history: RwLock::default(),
            events: RwLock::new(VecDeque::new()),
            polling: settings.polling,
            data_dir: settings.data_dir,
            rights: settings.rights,
            client_tls: settings.client_tls.clone(),
        });
        let https = settings.tls.is_some();
        let server = http::Server::start(
            &settings.listen,
            Arc::clone(&state),
            settings.tls.map(|tls| tls.rustls_config()),
            settings.insecure,
        )?;
        let stop = StopSignal::new();
        let poller = {
            let stop = stop.clone();
            let state = Arc::clone(&state);
            let nameservers = settings.nameservers;
            let lab = settings.lab;
            let client_tls = settings.client_tls;
            thread::Builder::new()
                .name("monitor-poller".to_owned())
                .spawn(move || {
                    loop {
                        stop.take_nudge();
                        let lab_status = lab.as_ref().and_then(|source| source());
                        let previous = state.snapshot.read_unpoisoned().clone();
                        let mut snapshot = collect::look(
                            &nameservers,
                            lab_status,
                            previous.as_ref(),
                            client_tls.as_ref(),
                        );
                        unregistered::add(&mut snapshot);
                        state
                            .history
                            .write_unpoisoned()
                            .record(&snapshot.metrics, unix_now());
                        state.record(snapshot);
                        if !stop.wait(state.polling) {
                            break;
                        }
                    }
                })?
        };
        Ok(Monitor {
            address: server.address(),
            https,
            stop,
            poller: Some(poller),
            server: Some(server),
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Looks at the lab now rather than at the next round (the lab has
    /// just changed).
    pub fn look_now(&self) {
        self.stop.nudge();
    }

    /// Its page's URL.
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}/", self.address)
    }
}

/// Now, in seconds since the Unix epoch.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(server) = self.server.take() {
            server.stop();
        }
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
    }
}

impl State {
    /// Keeps a new look, noting each service whose status changed.
    fn record(&self, snapshot: Snapshot) {
        let mut events = Vec::new();
        {
            let previous = self.snapshot.read_unpoisoned();
            let before = previous
                .as_ref()
                .map(|s| s.services.as_slice())
                .unwrap_or_default();
            // By name and name server, so that a look costs time in
            // proportion to the services it saw (a search per service
            // made thousands of names cost a quarter of a core).
            fn key(s: &collect::ServiceView) -> (&str, &str) {
                (&s.name, &s.nameserver)
            }
            let earlier: HashMap<_, _> = before.iter().map(|b| (key(b), b)).collect();
            let now: HashSet<_> = snapshot.services.iter().map(key).collect();
            for service in &snapshot.services {
                let old = earlier.get(&key(service)).copied();
                let changed = old.is_none_or(|old| {
                    old.status != service.status || old.locked_by != service.locked_by
                });
                // The first look is the starting point, not a change.
                if changed && previous.is_some() {
                    events.push(Event {
                        time: snapshot.taken.clone(),
                        service: service.name.clone(),
                        nameserver: service.nameserver.clone(),
                        from: old.map(|o| o.status.as_str().to_owned()),
                        to: service.status.as_str().to_owned(),
                        detail: service.locked_by.clone().or_else(|| service.reason.clone()),
                    });
                }
            }
            for old in before {
                if !now.contains(&key(old)) {
                    events.push(Event {
                        time: snapshot.taken.clone(),
                        service: old.name.clone(),
                        nameserver: old.nameserver.clone(),
                        from: Some(old.status.as_str().to_owned()),
                        to: "gone".to_owned(),
                        detail: None,
                    });
                }
            }
        }
        if !events.is_empty() {
            let mut kept = self.events.write_unpoisoned();
            for event in events {
                tracing::info!(
                    "monitor: {} {} -> {}",
                    event.service,
                    event.from.as_deref().unwrap_or("new"),
                    event.to
                );
                kept.push_back(event);
            }
            while kept.len() > EVENTS_KEPT {
                kept.pop_front();
            }
        }
        *self.snapshot.write_unpoisoned() = Some(snapshot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use collect::{ServiceState, ServiceView, Snapshot};
    use std::time::Instant;

    fn service(name: usize, status: ServiceState) -> ServiceView {
        ServiceView {
            name: format!("lab.instrument{name}"),
            nameserver: "production".to_owned(),
            uri: format!("PYRO:instrument{name}@127.0.0.1:9100"),
            status,
            locked_by: None,
            reason: None,
            description: String::new(),
            class: None,
            plugin_api: None,
            stale: false,
        }
    }

    fn snapshot(services: Vec<ServiceView>) -> Snapshot {
        Snapshot {
            taken: "2026-12-02T00:00:00Z".to_owned(),
            nameservers: Vec::new(),
            services,
            lab: None,
            hosts: Vec::new(),
            metrics: Default::default(),
        }
    }

    /// A look at many services costs time in proportion to them: with
    /// 30,000 names, a search per service took seconds a look.
    #[test]
    fn recording_a_look_is_linear_in_the_services_and_notes_each_change() {
        let state = State {
            snapshot: RwLock::new(None),
            history: RwLock::default(),
            events: RwLock::new(VecDeque::new()),
            polling: Duration::from_secs(2),
            data_dir: None,
            rights: Default::default(),
            client_tls: None,
        };
        let count = 30_000;
        let all = |status| (0..count).map(|n| service(n, status)).collect::<Vec<_>>();
        state.record(snapshot(all(ServiceState::Available)));
        let mut next = all(ServiceState::Available);
        next[7].status = ServiceState::Locked;
        next.pop();
        let started = Instant::now();
        state.record(snapshot(next));
        let took = started.elapsed();
        let events = state.events.read_unpoisoned();
        let changes: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.service.as_str(), e.to.as_str()))
            .collect();
        assert_eq!(
            changes,
            [
                ("lab.instrument7", "locked"),
                ("lab.instrument29999", "gone")
            ]
        );
        assert!(
            took < Duration::from_secs(1),
            "a look at {count} services took {took:?}"
        );
    }
}
