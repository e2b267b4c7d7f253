//! Keeps a daemon's names registered with its name servers: registers
//! each service and the daemon itself when the daemon starts, checks every
//! few seconds that the entries are still there (a name server that
//! restarted with memory storage has forgotten them) and registers again
//! if not, and removes them on graceful shutdown.

use crate::sync::LockUnpoisoned;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{TcpStream, ToSocketAddrs};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::client::NameServerProxy;
use crate::config::LaunchConfig;
use crate::config::schema::ServiceConfig;
use crate::daemon::pyro::DAEMON_OBJECT;
use crate::nameserver::tags;
use crate::stop_signal::StopSignal;
use crate::supervised::RegistrationOutcome;
use crate::wire::uri::{Location, PyroUri};

/// How often registrations are checked.
pub const CHECK_PERIOD: Duration = Duration::from_secs(2);

/// How long one name-server call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// One name to keep registered with one name server.
#[derive(Clone, Debug)]
pub struct Registration {
    /// The name server's name in the configuration (for log lines).
    pub nameserver: String,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Whether it speaks TLS (the daemon then calls it with its own
    /// certificate: the process's default client TLS).
    pub tls: bool,
    /// The registered name.
    pub name: String,
    /// Our URI.
    pub uri: String,
    /// Metadata tags.
    pub metadata: BTreeSet<String>,
}

/// The names daemon `daemon` keeps registered when it serves at
/// `location`: each service with the name servers it lists, and the daemon
/// itself (its `Pyro.Daemon` object) with the daemon's name servers, as
/// PyroLab registers them.
pub fn registrations_for(config: &LaunchConfig, daemon: &str, location: &str) -> Vec<Registration> {
    let Some(daemon_config) = config.daemons.get(daemon) else {
        return Vec::new();
    };
    let with = |ns_name: &str, name: &str, uri: String, metadata: BTreeSet<String>| {
        let ns = config.nameservers.get(ns_name)?;
        Some(Registration {
            nameserver: ns_name.to_owned(),
            host: crate::net::resolve_host(&ns.host),
            port: ns.ns_port,
            tls: ns.tls.is_some(),
            name: name.to_owned(),
            uri,
            metadata,
        })
    };
    let services: Vec<(&str, &ServiceConfig)> = config
        .services
        .iter()
        .filter(|(_, s)| s.daemon == daemon)
        .collect();
    let mut registrations = Vec::new();
    for (name, service) in &services {
        let metadata = tags::for_service(
            &service.module,
            &service.classname,
            pyrolab_plugin_api::PLUGIN_API_VERSION,
            &service.description,
        );
        for ns in &service.nameservers {
            registrations.extend(with(
                ns,
                name,
                format!("PYRO:{name}@{location}"),
                metadata.clone(),
            ));
        }
    }
    let served: Vec<&str> = services.iter().map(|(name, _)| *name).collect();
    let metadata = tags::for_daemon(&served);
    for ns in &daemon_config.nameservers {
        registrations.extend(with(
            ns,
            daemon,
            format!("PYRO:{DAEMON_OBJECT}@{location}"),
            metadata.clone(),
        ));
    }
    registrations
}

/// The background thread that keeps the registrations; [`Registrar::stop`]
/// removes them.
pub struct Registrar {
    stop: StopSignal,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    registrations: Vec<Registration>,
}

impl Registrar {
    /// Registers now (in the background) and keeps registering.
    /// `on_change` learns how each registration went after the first
    /// round, and again after each round whose outcome differs from the
    /// round before (a name server went away, or came back).
    pub fn start(
        registrations: Vec<Registration>,
        mut on_change: impl FnMut(Vec<RegistrationOutcome>) + Send + 'static,
    ) -> std::io::Result<Registrar> {
        let stop = StopSignal::new();
        let signal = stop.clone();
        let keep = registrations.clone();
        let thread = thread::Builder::new()
            .name("ns-registrar".to_owned())
            .spawn(move || {
                let mut state = KeepState::default();
                let mut last: Option<Vec<RegistrationOutcome>> = None;
                loop {
                    let nudged = signal.take_nudge();
                    let mut outcomes = Vec::new();
                    for (server, group) in by_nameserver(&keep) {
                        state.check(server, &group, &mut outcomes);
                    }
                    if nudged || last.as_ref() != Some(&outcomes) {
                        on_change(outcomes.clone());
                        last = Some(outcomes);
                    }
                    if !signal.wait(CHECK_PERIOD) {
                        break;
                    }
                }
            })?;
        Ok(Registrar {
            stop,
            thread: std::sync::Mutex::new(Some(thread)),
            registrations,
        })
    }

    /// Checks (and registers) now rather than at the next round, and
    /// reports the outcome even if unchanged: a name server came back.
    pub fn nudge(&self) {
        self.stop.nudge();
    }

    /// Stops checking and removes our entries (only those that still hold
    /// our URIs: a name another daemon took over is left alone).
    pub fn stop(&self) {
        self.halt();
        for (server, group) in by_nameserver(&self.registrations) {
            let Ok(ns) = connect(server) else {
                tracing::warn!(
                    "name server {}: unreachable; cannot remove {} entries",
                    server.0,
                    group.len()
                );
                continue;
            };
            let listed = ns.list(None).unwrap_or_default();
            for registration in group {
                if listed.get(&registration.name) == Some(&registration.uri) {
                    match ns.remove(&registration.name) {
                        Ok(_) => tracing::info!(
                            "name server {}: removed {}",
                            server.0,
                            registration.name
                        ),
                        Err(err) => tracing::warn!(
                            "name server {}: cannot remove {}: {err}",
                            server.0,
                            registration.name
                        ),
                    }
                }
            }
        }
    }

    fn halt(&self) {
        self.stop.stop();
        let thread = self.thread.lock_unpoisoned().take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.halt();
    }
}

/// (name server name, host, port, TLS)
type Server<'a> = (&'a str, &'a str, u16, bool);

fn by_nameserver(registrations: &[Registration]) -> BTreeMap<Server<'_>, Vec<&Registration>> {
    let mut groups: BTreeMap<Server<'_>, Vec<&Registration>> = BTreeMap::new();
    for r in registrations {
        groups
            .entry((r.nameserver.as_str(), r.host.as_str(), r.port, r.tls))
            .or_default()
            .push(r);
    }
    groups
}

fn connect(server: Server<'_>) -> Result<NameServerProxy, crate::client::ClientError> {
    let (name, host, port, tls) = server;
    let tls = match tls {
        true => match crate::tls::default_client() {
            Ok(Some(tls)) => Some(tls),
            Ok(None) => {
                return Err(crate::client::ClientError::Tls(format!(
                    "name server {name} speaks TLS, and this daemon has no `tls` to call it with"
                )));
            }
            Err(err) => return Err(crate::client::ClientError::Tls(err.to_string())),
        },
        false => None,
    };
    NameServerProxy::connect_with(host, port, Some(CALL_TIMEOUT), None, Some(tls))
}

/// What the checking loop remembers between rounds.
#[derive(Default)]
struct KeepState {
    /// Name servers that were unreachable last time (to log changes once).
    unreachable: BTreeSet<String>,
    /// Names another live daemon took again after this one had taken them
    /// back (once, with a warning): left to whichever daemon holds them
    /// while it answers, taken back once it does not.
    conceded: BTreeSet<(String, String)>,
    /// Names registered at least once.
    registered: BTreeSet<(String, String)>,
}

impl KeepState {
    /// Checks (and makes) `group`'s registrations with one name server,
    /// adding how each went to `outcomes`.
    fn check(
        &mut self,
        server: Server<'_>,
        group: &[&Registration],
        outcomes: &mut Vec<RegistrationOutcome>,
    ) {
        let (ns_name, host, port, _) = server;
        let outcome = |registration: &Registration, error: Option<String>| RegistrationOutcome {
            nameserver: ns_name.to_owned(),
            name: registration.name.clone(),
            error,
        };
        let listed = match connect(server).and_then(|ns| ns.list(None).map(|l| (ns, l))) {
            Ok(found) => {
                if self.unreachable.remove(ns_name) {
                    tracing::info!("name server {ns_name} at {host}:{port} is back");
                }
                found
            }
            Err(err) => {
                if self.unreachable.insert(ns_name.to_owned()) {
                    tracing::warn!(
                        "name server {ns_name} at {host}:{port} is unreachable ({err}); will keep trying"
                    );
                }
                let error = format!("name server unreachable at {host}:{port}: {err}");
                outcomes.extend(group.iter().map(|r| outcome(r, Some(error.clone()))));
                return;
            }
        };
        let (ns, names) = listed;
        for registration in group {
            let key = (ns_name.to_owned(), registration.name.clone());
            let result = match names.get(&registration.name) {
                Some(uri) if *uri == registration.uri => Ok(()),
                Some(other) if self.conceded.contains(&key) => {
                    if other_is_live(other) {
                        Err(format!("another running daemon holds the name, at {other}"))
                    } else {
                        tracing::info!(
                            "name server {ns_name}: {} points at {other}, which no longer answers; registering {} again",
                            registration.name,
                            registration.uri
                        );
                        self.conceded.remove(&key);
                        self.register(&ns, ns_name, registration)
                    }
                }
                Some(other) if other_is_live(other) => {
                    tracing::warn!(
                        "!!! name server {ns_name}: {} is already registered by another running daemon at {other}; registering {} in its place. Two daemons claim this name: fix the configuration, or clients will reach only one of them",
                        registration.name,
                        registration.uri
                    );
                    // Do not fight over it every round.
                    self.conceded.insert(key);
                    self.register(&ns, ns_name, registration)
                }
                _ => self.register(&ns, ns_name, registration),
            };
            outcomes.push(outcome(registration, result.err()));
        }
    }

    fn register(
        &mut self,
        ns: &NameServerProxy,
        ns_name: &str,
        registration: &Registration,
    ) -> Result<(), String> {
        match ns.register(
            &registration.name,
            &registration.uri,
            false,
            &registration.metadata,
        ) {
            Ok(()) => {
                let again = !self
                    .registered
                    .insert((ns_name.to_owned(), registration.name.clone()));
                tracing::info!(
                    "name server {ns_name}: {} {} as {}",
                    if again {
                        "registered again"
                    } else {
                        "registered"
                    },
                    registration.name,
                    registration.uri
                );
                Ok(())
            }
            Err(err) => {
                tracing::warn!(
                    "name server {ns_name}: cannot register {}: {err}",
                    registration.name
                );
                Err(err.to_string())
            }
        }
    }
}

/// Whether the daemon of another registration accepts connections.
fn other_is_live(uri: &str) -> bool {
    let Ok(uri) = PyroUri::parse(uri) else {
        return false;
    };
    match &uri.location {
        Location::Tcp { host, port } => (host.as_str(), *port)
            .to_socket_addrs()
            .map(|mut addresses| {
                addresses.any(|a| TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
            })
            .unwrap_or(false),
        Location::Unix(path) => crate::net::Stream::connect_unix(path).is_ok(),
    }
}
