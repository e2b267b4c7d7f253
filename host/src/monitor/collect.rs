//! One look at the lab: what the name servers list, whether each service's
//! daemon answers and who locks what, and the manager's components.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::Serialize;

use crate::client::{ClientError, NameServerProxy, Proxy};
use crate::config::schema::MANAGEMENT_PREFIX;
use crate::daemon::metrics::MetricsReport;
use crate::daemon::pyro::DAEMON_OBJECT;
use crate::lab::status::LabStatus;
use crate::manager::management;
use crate::nameserver::{NAMESERVER_OBJECT, tags};
use crate::tls::ClientTls;
use crate::wire::uri::PyroUri;

/// How long one look at a name server or daemon may take.
const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// How long a host's manager may take to say how its host is.
const HOST_TIMEOUT: Duration = Duration::from_secs(3);

/// A name server to watch.
#[derive(Clone, Debug)]
pub struct NameServerTarget {
    /// Its name in the configuration (or `host:port`).
    pub name: String,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: u16,
}

/// A name server as the monitor shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NameServerView {
    /// Its name.
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// Whether it answered.
    pub reachable: bool,
    /// Why not.
    pub error: Option<String>,
    /// How many services it lists.
    pub services: usize,
}

/// What a service is doing.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Its daemon answers and nobody holds its lock.
    Available,
    /// A client holds its lock.
    Locked,
    /// Its daemon does not answer.
    Unreachable,
    /// This host's lab could not register it with this name server (the
    /// manager says why); the name server does not list it.
    Unregistered,
}

impl ServiceState {
    /// The state as the API spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Available => "available",
            ServiceState::Locked => "locked",
            ServiceState::Unreachable => "unreachable",
            ServiceState::Unregistered => "unregistered",
        }
    }

    /// The state named `text`.
    pub fn parse(text: &str) -> Option<ServiceState> {
        match text {
            "available" => Some(ServiceState::Available),
            "locked" => Some(ServiceState::Locked),
            "unreachable" => Some(ServiceState::Unreachable),
            "unregistered" => Some(ServiceState::Unregistered),
            _ => None,
        }
    }
}

/// A registered service as the monitor shows it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ServiceView {
    /// The registered name.
    pub name: String,
    /// The name server listing it.
    pub nameserver: String,
    /// Its URI.
    pub uri: String,
    /// Available, locked, unreachable or unregistered.
    pub status: ServiceState,
    /// Who holds its lock.
    pub locked_by: Option<String>,
    /// Why it is unreachable or unregistered.
    pub reason: Option<String>,
    /// Its `description:` tag.
    pub description: String,
    /// Its driver class (`module.Class`), for pyrolab-host services.
    pub class: Option<String>,
    /// The plugin-api version of the host serving it.
    pub plugin_api: Option<String>,
    /// Its name server did not answer this time: this is how it last
    /// listed the service (its daemon was asked all the same).
    pub stale: bool,
}

/// A host of the lab, as its management object (`pyrolab.manager.HOST`,
/// found on the name servers) shows it.
#[derive(Clone, Debug, Serialize)]
pub struct HostView {
    /// The host's name in the lab.
    pub host: String,
    /// Its management object's URI.
    pub uri: String,
    /// Whether its manager answered this look.
    pub reachable: bool,
    /// Why not.
    pub error: Option<String>,
    /// Since when it has not answered (RFC 3339, UTC): the first look that
    /// found it unreachable.
    pub unreachable_since: Option<String>,
    /// When it last answered.
    pub last_seen: Option<String>,
    /// Its components and services (its `ps --json`), as of `last_seen`.
    pub status: Option<LabStatus>,
}

/// Everything one look saw.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// When (RFC 3339, UTC).
    pub taken: String,
    /// The name servers.
    pub nameservers: Vec<NameServerView>,
    /// The services, by name.
    pub services: Vec<ServiceView>,
    /// The lab's components and manager, where a manager runs here.
    pub lab: Option<LabStatus>,
    /// The lab's hosts whose managers serve a management object, by name.
    pub hosts: Vec<HostView>,
    /// What each pyrolab-host daemon counted, by its location
    /// (`host:port`): served by `/api/metrics` and `/metrics`, not in
    /// `/api/status`.
    #[serde(skip)]
    pub metrics: BTreeMap<String, MetricsReport>,
}

/// Looks at every name server, then at every daemon their services live
/// on. A name server that does not answer keeps its services from the
/// `previous` look, marked stale: they are not gone because their phone
/// book is.
/// Calls go over TLS with `tls`, in plain TCP without.
pub fn look(
    targets: &[NameServerTarget],
    lab: Option<LabStatus>,
    previous: Option<&Snapshot>,
    tls: Option<&ClientTls>,
) -> Snapshot {
    let mut nameservers = Vec::new();
    let mut listed: Vec<(String, String, BTreeSet<String>, String)> = Vec::new();
    let mut carried: Vec<ServiceView> = Vec::new();
    let mut managers: BTreeMap<String, String> = BTreeMap::new();
    for target in targets {
        let address = format!("{}:{}", target.host, target.port);
        match list(target, tls) {
            Ok(entries) => {
                let (hosts, services): (Vec<_>, Vec<_>) = entries
                    .into_iter()
                    .filter(|(name, (_, metadata))| {
                        name != NAMESERVER_OBJECT && !tags::describe(metadata).daemon
                    })
                    .partition(|(name, (_, metadata))| {
                        metadata.contains(management::TAG) && name.starts_with(MANAGEMENT_PREFIX)
                    });
                for (name, (uri, _)) in hosts {
                    let host = name[MANAGEMENT_PREFIX.len()..].to_owned();
                    managers.entry(host).or_insert(uri);
                }
                nameservers.push(NameServerView {
                    name: target.name.clone(),
                    address,
                    reachable: true,
                    error: None,
                    services: services.len(),
                });
                for (name, (uri, tags)) in services {
                    listed.push((name, uri, tags, target.name.clone()));
                }
            }
            Err(err) => {
                let last: Vec<ServiceView> = previous
                    .map(|p| p.services.iter())
                    .into_iter()
                    .flatten()
                    .filter(|s| s.nameserver == target.name)
                    // Never listed: the manager still says so, or not.
                    .filter(|s| s.status != ServiceState::Unregistered)
                    .cloned()
                    .collect();
                nameservers.push(NameServerView {
                    name: target.name.clone(),
                    address,
                    reachable: false,
                    error: Some(err.to_string()),
                    services: last.len(),
                });
                carried.extend(last);
            }
        }
    }
    // The hosts' managers are asked while the daemons are.
    // Hosts once seen are kept only while no name server answers: one
    // that answers and no longer lists a host's manager was told it
    // stopped.
    let remembered = previous.filter(|_| nameservers.iter().all(|ns| !ns.reachable));
    let (daemons, hosts) = std::thread::scope(|scope| {
        let hosts = scope.spawn(|| look_at_hosts(&managers, remembered, previous, tls));
        // The name servers answering are daemons too: their metrics are
        // asked with the others'.
        let nameserver_uris: Vec<String> = targets
            .iter()
            .zip(&nameservers)
            .filter(|(_, view)| view.reachable)
            .map(|(target, _)| format!("PYRO:{NAMESERVER_OBJECT}@{}", view_address(target)))
            .collect();
        let daemons = probe_daemons(
            listed
                .iter()
                .map(|(_, uri, _, _)| uri.as_str())
                .chain(carried.iter().map(|s| s.uri.as_str()))
                .chain(nameserver_uris.iter().map(String::as_str)),
            tls,
        );
        (daemons, hosts.join().unwrap_or_default())
    });
    let status_of = |uri: &str| match location_of(uri).and_then(|l| daemons.get(&l)) {
        Some(Ok(looked)) => match looked.locks.get(&object_of(uri)) {
            Some(holder) => (ServiceState::Locked, Some(holder.clone()), None),
            None => (ServiceState::Available, None, None),
        },
        Some(Err(reason)) => (ServiceState::Unreachable, None, Some(reason.clone())),
        None => (
            ServiceState::Unreachable,
            None,
            Some("not a PYRO: URI this monitor can reach".to_owned()),
        ),
    };
    let mut services: Vec<ServiceView> = listed
        .into_iter()
        .map(|(name, uri, metadata, nameserver)| {
            let (status, locked_by, reason) = status_of(&uri);
            let described = tags::describe(&metadata);
            ServiceView {
                name,
                nameserver,
                description: described.description,
                class: described.class,
                plugin_api: described.plugin_api,
                uri,
                status,
                locked_by,
                reason,
                stale: false,
            }
        })
        .collect();
    services.extend(carried.into_iter().map(|mut service| {
        (service.status, service.locked_by, service.reason) = status_of(&service.uri);
        service.stale = true;
        service
    }));
    services.sort_by(|a, b| (&a.name, &a.nameserver).cmp(&(&b.name, &b.nameserver)));
    let metrics = daemons
        .into_iter()
        .filter_map(|(location, looked)| Some((location, looked.ok()?.metrics?)))
        .collect();
    Snapshot {
        taken: now(),
        nameservers,
        services,
        lab,
        hosts,
        metrics,
    }
}

/// A name server's `host:port` as a URI has it (IPv6 in brackets).
fn view_address(target: &NameServerTarget) -> String {
    match target.host.contains(':') && !target.host.starts_with('[') {
        true => format!("[{}]:{}", target.host, target.port),
        false => format!("{}:{}", target.host, target.port),
    }
}

fn now() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Asks each host's manager for its status, all at once. The hosts of
/// `remembered` (the last look, when no name server answers now) are
/// asked too: a host is not gone because its phone book is. `previous`
/// says since when a host has been unreachable.
fn look_at_hosts(
    managers: &BTreeMap<String, String>,
    remembered: Option<&Snapshot>,
    previous: Option<&Snapshot>,
    tls: Option<&ClientTls>,
) -> Vec<HostView> {
    let before: BTreeMap<&str, &HostView> = previous
        .map(|p| p.hosts.iter().map(|h| (h.host.as_str(), h)).collect())
        .unwrap_or_default();
    let mut wanted: BTreeMap<String, String> = managers.clone();
    for view in remembered.map(|r| r.hosts.as_slice()).unwrap_or_default() {
        wanted
            .entry(view.host.clone())
            .or_insert_with(|| view.uri.clone());
    }
    std::thread::scope(|scope| {
        let asked: Vec<_> = wanted
            .iter()
            .map(|(host, uri)| (host, uri, scope.spawn(move || host_status(uri, tls))))
            .collect();
        asked
            .into_iter()
            .map(|(host, uri, answer)| {
                let answer = answer
                    .join()
                    .unwrap_or_else(|_| Err("the look panicked".to_owned()));
                let earlier = before.get(host.as_str());
                match answer {
                    Ok(status) => HostView {
                        host: host.clone(),
                        uri: uri.clone(),
                        reachable: true,
                        error: None,
                        unreachable_since: None,
                        last_seen: Some(now()),
                        status: Some(status),
                    },
                    Err(error) => HostView {
                        host: host.clone(),
                        uri: uri.clone(),
                        reachable: false,
                        error: Some(error),
                        unreachable_since: earlier
                            .and_then(|h| h.unreachable_since.clone())
                            .or_else(|| Some(now())),
                        last_seen: earlier.and_then(|h| h.last_seen.clone()),
                        status: earlier.and_then(|h| h.status.clone()),
                    },
                }
            })
            .collect()
    })
}

/// A host manager's `status()`.
fn host_status(uri: &str, tls: Option<&ClientTls>) -> Result<LabStatus, String> {
    let uri: PyroUri = uri.parse().map_err(|err| format!("{err}"))?;
    let mut proxy = Proxy::new(uri);
    proxy.set_tls(tls.cloned());
    proxy.set_timeout(Some(HOST_TIMEOUT));
    proxy
        .call::<LabStatus>("status", ())
        .map_err(|err| format!("its manager does not answer: {err}"))
}

fn list(
    target: &NameServerTarget,
    tls: Option<&ClientTls>,
) -> Result<BTreeMap<String, crate::client::nameserver::Registration>, ClientError> {
    let ns = NameServerProxy::connect_with(
        &target.host,
        target.port,
        Some(PROBE_TIMEOUT),
        None,
        Some(tls.cloned()),
    )?;
    ns.list_with_metadata(None)
}

/// The daemon location of a `PYRO:` URI (`host:port` or `./u:path`).
fn location_of(uri: &str) -> Option<String> {
    let parsed = PyroUri::parse(uri).ok()?;
    Some(parsed.location.to_string())
}

fn object_of(uri: &str) -> String {
    PyroUri::parse(uri).map(|u| u.object).unwrap_or_default()
}

/// What a look at a daemon found.
struct Looked {
    /// Who locks which of its services.
    locks: BTreeMap<String, String>,
    /// What it counted (pyrolab-host daemons).
    metrics: Option<MetricsReport>,
}

/// Asks each daemon once whether it answers, who locks what on it, and
/// (a pyrolab-host daemon) what it counted. A pyrolab-host lockable
/// daemon says who locks what (`Pyro.Daemon.locks()`), so no service is
/// touched; any other daemon's services that list `islocked` (PyroLab's
/// lockable ones) are asked each.
fn probe_daemons<'a>(
    uris: impl Iterator<Item = &'a str>,
    tls: Option<&ClientTls>,
) -> BTreeMap<String, Result<Looked, String>> {
    let mut objects: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for uri in uris {
        if let Some(location) = location_of(uri) {
            objects.entry(location).or_default().insert(object_of(uri));
        }
    }
    // At once, so a few hung daemons cost one timeout, not one each.
    std::thread::scope(|scope| {
        let probes: Vec<_> = objects
            .into_iter()
            .map(|(location, objects)| {
                scope.spawn(move || (probe(&location, &objects, tls), location))
            })
            .collect();
        probes
            .into_iter()
            .filter_map(|probe| probe.join().ok())
            .map(|(result, location)| (location, result))
            .collect()
    })
}

fn probe(
    location: &str,
    objects: &BTreeSet<String>,
    tls: Option<&ClientTls>,
) -> Result<Looked, String> {
    let unreachable = |err: ClientError| format!("its daemon at {location} does not answer: {err}");
    let daemon = probe_proxy(DAEMON_OBJECT, location, tls)?;
    daemon
        .call::<serde_json::Value>("ping", ())
        .map_err(unreachable)?;
    if daemon.peer_is_pyrolab_host().map_err(unreachable)? {
        let locks = match daemon.call::<BTreeMap<String, String>>("locks", ()) {
            Ok(locks) => locks,
            // Not a lockable daemon: nothing is locked.
            Err(ClientError::Remote(_)) => BTreeMap::new(),
            Err(err) => return Err(unreachable(err)),
        };
        let metrics = match daemon.call::<MetricsReport>("metrics", ()) {
            Ok(metrics) => Some(metrics),
            // A pyrolab-host from before metrics.
            Err(ClientError::Remote(_)) => None,
            Err(err) => return Err(unreachable(err)),
        };
        return Ok(Looked { locks, metrics });
    }
    let mut locks = BTreeMap::new();
    for object in objects {
        if let Some(holder) = pyrolab_lock_holder(object, location, tls) {
            locks.insert(object.clone(), holder);
        }
    }
    Ok(Looked {
        locks,
        metrics: None,
    })
}

/// Who holds the lock of a service on a stock PyroLab `LockableDaemon`,
/// which tells only by refusing other connections:
/// `ConnectionRefusedError: Pyro object is locked (by 'alice')`. `None`
/// when it is free, is not lockable, or cannot be asked.
fn pyrolab_lock_holder(object: &str, location: &str, tls: Option<&ClientTls>) -> Option<String> {
    let service = probe_proxy(object, location, tls).ok()?;
    if !service
        .exposed("methods")
        .ok()?
        .iter()
        .any(|m| m == "islocked")
    {
        return None;
    }
    match service.call::<bool>("islocked", ()) {
        Err(ClientError::Remote(refusal)) if refusal.kind() == "ConnectionRefusedError" => {
            Some(holder_in(&refusal.message))
        }
        _ => None,
    }
}

/// The holder named in PyroLab's refusal message.
fn holder_in(message: &str) -> String {
    message
        .split_once("(by '")
        .and_then(|(_, rest)| rest.rsplit_once("')"))
        .map_or_else(|| message.to_owned(), |(holder, _)| holder.to_owned())
}

fn probe_proxy(object: &str, location: &str, tls: Option<&ClientTls>) -> Result<Proxy, String> {
    let uri: PyroUri = format!("PYRO:{object}@{location}")
        .parse()
        .map_err(|err| format!("{err}"))?;
    let mut proxy = Proxy::new(uri);
    proxy.set_tls(tls.cloned());
    proxy.set_timeout(Some(PROBE_TIMEOUT));
    Ok(proxy)
}
