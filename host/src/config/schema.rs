//! The launch configuration, typed, with every default stated.
//!
//! A file is read into these types by `read.rs`; the stored configuration
//! and `pyrolab-host info --json` are these types written out, with every
//! default filled in.

use std::collections::HashMap;
use std::path::PathBuf;

use pyrolab_plugin_api::Value;
use serde::Serialize;
use serde::ser::SerializeMap;

use crate::access::{ManagerRights, MonitorRights, NameServerRights, ServiceRights};
use crate::data_dir::DataDir;
use crate::lab::status::{ComponentId, Kind};

/// The only configuration format version there is.
pub const VERSION: &str = "1.0";

/// A whole launch configuration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LaunchConfig {
    /// The format version: `'1.0'`.
    pub version: String,
    /// Whether unknown keys are errors rather than warnings (`strict: true`
    /// in the file, or `--strict`).
    pub strict: bool,
    /// Extra directories searched for driver plugins, before the others.
    /// Relative paths in the file are resolved against the file's folder.
    pub plugin_dirs: Vec<PathBuf>,
    /// The data directory of the lab this file describes (`data_dir:`,
    /// relative to the file's folder): used by `up --config FILE` and
    /// `config update FILE` when neither `--data-dir` nor `PYROLAB_HOME`
    /// (nor `PYROLAB_DATA_DIR`) names one. Not written to the stored copy,
    /// which lives in the data directory itself.
    #[serde(skip)]
    pub data_dir: Option<PathBuf>,
    /// Name servers, by name.
    pub nameservers: Section<NameServerConfig>,
    /// Daemons, by name.
    pub daemons: Section<DaemonConfig>,
    /// Services, by name (the name they are registered under).
    pub services: Section<ServiceConfig>,
    /// Other programs the manager runs (`commands:`), by name.
    #[serde(skip_serializing_if = "Section::is_empty")]
    pub commands: Section<CommandConfig>,
    /// What `pyrolab-host up` starts.
    pub autolaunch: Autolaunch,
    /// The web monitor the manager serves; none without a `monitor:`
    /// section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorConfig>,
    /// The management object the manager serves and registers with the
    /// lab's name servers, for the lab's other hosts; none without a
    /// `manager:` section.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager: Option<ManagerConfig>,
    /// The lab's TLS (`tls:`): what every name server, daemon and monitor
    /// uses unless its own `tls` says otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// The lab's access rules (`access:`): what every service, name
    /// server and the monitor grant unless their own `access` says
    /// otherwise.
    #[serde(skip_serializing_if = "LabAccess::is_default")]
    pub access: LabAccess,
}

/// The lab's default access rules, one key per right.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LabAccess {
    /// Services' rights.
    #[serde(flatten)]
    pub service: ServiceRights,
    /// Name servers' rights.
    #[serde(flatten)]
    pub nameserver: NameServerRights,
    /// The monitor's rights.
    #[serde(flatten)]
    pub monitor: MonitorRights,
}

impl LabAccess {
    /// Whether every right is its default (the stored form leaves it out).
    pub fn is_default(&self) -> bool {
        *self == LabAccess::default()
    }
}

impl LaunchConfig {
    /// A name server's or daemon's TLS, if it has TLS.
    pub fn component_tls(&self, id: &ComponentId) -> Option<&TlsConfig> {
        match id.kind {
            Kind::Nameserver => self.nameservers.get(&id.name)?.tls.as_ref(),
            Kind::Daemon => self.daemons.get(&id.name)?.tls.as_ref(),
            Kind::Command => None,
        }
    }

    /// Whether the configuration has component `id`.
    pub fn has_component(&self, id: &ComponentId) -> bool {
        match id.kind {
            Kind::Nameserver => self.nameservers.contains(&id.name),
            Kind::Daemon => self.daemons.contains(&id.name),
            Kind::Command => self.commands.contains(&id.name),
        }
    }
}

impl Default for LaunchConfig {
    fn default() -> Self {
        LaunchConfig {
            version: VERSION.to_owned(),
            strict: false,
            plugin_dirs: Vec::new(),
            data_dir: None,
            nameservers: Section::default(),
            daemons: Section::default(),
            services: Section::default(),
            commands: Section::default(),
            autolaunch: Autolaunch::default(),
            monitor: None,
            manager: None,
            tls: None,
            access: LabAccess::default(),
        }
    }
}

/// Named entries in the order the file gives them, found by name in
/// constant time (a launch configuration may have tens of thousands).
#[derive(Clone, Debug, PartialEq)]
pub struct Section<T> {
    entries: Vec<(String, T)>,
    /// Where each name is in `entries` (its first entry).
    index: HashMap<String, usize>,
}

impl<T> Default for Section<T> {
    fn default() -> Self {
        Section {
            entries: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> Section<T> {
    /// Adds an entry at the end; a name already there keeps its first
    /// entry for [`Section::get`].
    pub fn push(&mut self, name: String, entry: T) {
        self.index.entry(name.clone()).or_insert(self.entries.len());
        self.entries.push((name, entry));
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&T> {
        self.index.get(name).map(|&at| &self.entries[at].1)
    }

    /// Whether there is an entry called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The entries, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &T)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// The names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[cfg(test)]
    pub(crate) fn values_for_test(&self) -> Vec<&T> {
        self.entries.iter().map(|(_, t)| t).collect()
    }
}

impl<T: Serialize> Serialize for Section<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (name, entry) in &self.entries {
            map.serialize_entry(name, entry)?;
        }
        map.end()
    }
}

/// A name server.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NameServerConfig {
    /// The address it binds to; `public` means this machine's
    /// outward-facing address. Default `localhost`.
    pub host: String,
    /// Its port. Default 9090.
    pub ns_port: u16,
    /// Whether it answers UDP discovery broadcasts. Default false.
    pub broadcast: bool,
    /// The address the broadcast responder binds to; default none (the
    /// name server's host).
    pub ns_bchost: Option<String>,
    /// The broadcast responder's UDP port. Default 9091.
    pub ns_bcport: u16,
    /// Every this many seconds, remove registrations whose daemon no longer
    /// answers; 0 (the default) turns it off, else 3 to 86400.
    pub ns_autoclean: f64,
    /// Where registrations are kept. Default `memory`.
    pub storage: Storage,
    /// The storage file for `dbm` and `sql`; default a file in the data
    /// directory named after the name server.
    pub storage_file: Option<PathBuf>,
    /// The database of `postgresql` storage: a libpq-style URL
    /// (`postgresql://user@host:5432/lab`) or `key=value` string.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_url: Option<String>,
    /// Client connections served at once; more are refused. Default 1024.
    pub max_connections: usize,
    /// Seconds a new connection has to complete its handshake before it
    /// is closed; 0 for no limit. Default 5.
    pub handshake_timeout: f64,
    /// Seconds a connection may stay silent between calls before it is
    /// closed; 0 (the default) for no limit.
    pub idle_timeout: f64,
    /// Its TLS: the lab's `tls` unless it says otherwise; none (`false`)
    /// for plain TCP.
    #[serde(serialize_with = "tls_or_false")]
    pub tls: Option<TlsConfig>,
    /// Lets it listen on an address other than loopback without TLS.
    /// Default false: it refuses to start.
    pub insecure: bool,
    /// Who may register and remove names (the lab's rules unless it says
    /// otherwise).
    pub access: NameServerRights,
    /// When the manager starts it again after it ends unasked.
    pub restart: RestartPolicy,
}

impl Default for NameServerConfig {
    fn default() -> Self {
        NameServerConfig {
            host: "localhost".to_owned(),
            ns_port: 9090,
            broadcast: false,
            ns_bchost: None,
            ns_bcport: 9091,
            ns_autoclean: 0.0,
            storage: Storage::Memory,
            storage_file: None,
            storage_url: None,
            max_connections: 1024,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: 0.0,
            tls: None,
            insecure: false,
            access: NameServerRights::default(),
            restart: RestartPolicy::Always,
        }
    }
}

impl NameServerConfig {
    /// The file registrations are kept in: `storage_file` if given, else
    /// `<data-dir>/nameservers/<name>.dbm` or `.sqlite`; `None` for memory
    /// storage.
    pub fn storage_path(&self, name: &str, data_dir: &DataDir) -> Option<PathBuf> {
        let extension = self.storage.file_extension()?;
        Some(self.storage_file.clone().unwrap_or_else(|| {
            data_dir
                .root()
                .join("nameservers")
                .join(format!("{name}.{extension}"))
        }))
    }
}

/// Where a name server keeps its registrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Storage {
    /// In memory: fast, lost on restart.
    Memory,
    /// An embedded key-value file (redb); unlike PyroLab's dbm, it keeps
    /// metadata.
    Dbm,
    /// An SQLite database.
    Sql,
    /// A PostgreSQL database (`storage_url`), which several name servers,
    /// on several hosts, share as one registry.
    Postgresql,
}

impl Storage {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [Storage; 4] = [
        Storage::Memory,
        Storage::Dbm,
        Storage::Sql,
        Storage::Postgresql,
    ];

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Storage::Memory => "memory",
            Storage::Dbm => "dbm",
            Storage::Sql => "sql",
            Storage::Postgresql => "postgresql",
        }
    }

    /// The kind a configuration spells `name`.
    pub fn from_name(name: &str) -> Option<Storage> {
        Storage::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The extension of its file in the data directory; `None` for a kind
    /// that keeps no file.
    pub fn file_extension(self) -> Option<&'static str> {
        match self {
            Storage::Memory | Storage::Postgresql => None,
            Storage::Dbm => Some("dbm"),
            Storage::Sql => Some("sqlite"),
        }
    }
}

/// The daemon class: whether services can be locked by a client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DaemonClass {
    /// A plain Pyro5 daemon.
    Daemon,
    /// A daemon whose services a client can lock for itself.
    LockableDaemon,
}

/// How a daemon runs calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServerType {
    /// Calls run concurrently on a pool of worker threads.
    Thread,
    /// Every call of the daemon runs one after another.
    Multiplex,
}

/// A daemon: one process serving a group of services on one port.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DaemonConfig {
    /// Kept for PyroLab compatibility; always `pyrolab.server`.
    pub module: String,
    /// `Daemon` (default) or `LockableDaemon`.
    pub classname: DaemonClass,
    /// The address it binds to. Default `localhost`.
    pub host: String,
    /// Its port; 0 (the default) picks a free one at start-up.
    pub port: u16,
    /// A Unix socket to listen on instead of TCP. Default none.
    pub unixsocket: Option<PathBuf>,
    /// The address clients should use when behind NAT. Default none.
    pub nathost: Option<String>,
    /// The port clients should use when behind NAT; 0 (default) = `port`.
    pub natport: u16,
    /// `thread` (default) or `multiplex`.
    pub servertype: ServerType,
    /// The name servers it registers itself and its services with.
    pub nameservers: Vec<String>,
    /// On a `thread` daemon, the most calls that run at once: the size of
    /// the pool of workers connections share. Default 80 (Pyro5's).
    pub threadpool_size: usize,
    /// Client connections served at once; more are refused. Default 256.
    /// Connections still in their handshake do not count.
    pub max_connections: usize,
    /// The largest message accepted, in bytes. Default 1 GiB (Pyro5's
    /// default).
    pub max_message_size: u64,
    /// The most memory, in bytes, that large incoming messages (64 KB or
    /// more) may take at once across all connections, while they are read
    /// and until they are answered; a connection whose message would go
    /// over is closed. At least `max_message_size`. Default 2 GiB.
    pub max_message_memory: u64,
    /// Seconds a new connection has to complete its handshake before it
    /// is closed; 0 for no limit. Default 5.
    pub handshake_timeout: f64,
    /// Seconds a connection may stay silent between calls before it is
    /// closed; 0 (the default, as in Pyro5) for no limit.
    pub idle_timeout: f64,
    /// Pyro5's `COMMTIMEOUT`: seconds a connection may stay silent while
    /// none of its calls runs (between calls, or inside a message) before
    /// it is closed; 0 (the default, as in Pyro5) for no limit.
    pub commtimeout: f64,
    /// Pyro5's `ITER_STREAMING`: whether methods may return item streams.
    /// Default true.
    pub iter_streaming: bool,
    /// Whether the daemon counts its calls and connections
    /// (`Pyro.Daemon.metrics()`, the monitor's `/metrics`). Default true.
    pub metrics: bool,
    /// Pyro5's `ITER_STREAM_LIFETIME`: seconds an item stream may live
    /// from its start; 0 (the default) for no limit.
    pub iter_stream_lifetime: f64,
    /// Pyro5's `ITER_STREAM_LINGER`: seconds an item stream outlives its
    /// client's connection (so the client may reconnect and go on); 0 to
    /// close at once. Default 30.
    pub iter_stream_linger: f64,
    /// Item streams one connection may hold open at once. Default 64.
    pub max_item_streams_per_connection: usize,
    /// Item streams the daemon holds open at once. Default 1024.
    pub max_item_streams: usize,
    /// Its TLS: the lab's `tls` unless it says otherwise; none (`false`)
    /// for plain TCP.
    #[serde(serialize_with = "tls_or_false")]
    pub tls: Option<TlsConfig>,
    /// Lets it listen on an address other than loopback without TLS.
    /// Default false: it refuses to start.
    pub insecure: bool,
    /// When the manager starts it again after it ends unasked.
    pub restart: RestartPolicy,
}

/// A program the manager runs that is not one of its own (`commands:`): a
/// PyroLab Python daemon script, a vendor's server. It gets no stdin (the
/// manager's own components learn of its death from theirs); it is
/// stopped by SIGTERM to its process group, then SIGKILL.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommandConfig {
    /// The program and its arguments (required). A program without a
    /// slash is looked up on `PATH`; a relative path with one is resolved
    /// against `cwd`.
    pub run: Vec<String>,
    /// The directory it runs in. Default the configuration file's folder.
    pub cwd: PathBuf,
    /// Environment variables set for it, over the manager's own.
    /// `PYTHONUNBUFFERED=1` is set unless given here, so that a Python
    /// script's output reaches its log as it is written.
    pub env: std::collections::BTreeMap<String, String>,
    /// When it counts as ready (and, while it runs, whether it still
    /// answers).
    pub ready: Readiness,
    /// Seconds it has to become ready before it is killed: 1 to 240.
    /// Default 60.
    pub ready_timeout: f64,
    /// `always` (default), `on-failure` or `never`.
    pub restart: RestartPolicy,
}

impl Default for CommandConfig {
    fn default() -> Self {
        CommandConfig {
            run: Vec::new(),
            cwd: PathBuf::from("."),
            env: std::collections::BTreeMap::new(),
            ready: Readiness::Started,
            ready_timeout: 60.0,
            restart: RestartPolicy::Always,
        }
    }
}

/// When a command counts as ready.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Readiness {
    /// As soon as it started (no `ready:` key).
    #[serde(serialize_with = "started")]
    Started,
    /// Once `host:port` accepts a TCP connection (`ready: {port: 9100}`).
    /// While it runs, it is asked again every few seconds.
    Port {
        /// Default `localhost`.
        host: String,
        port: u16,
    },
    /// Once `name` is registered on name server `nameserver` and the
    /// Pyro daemon at its URI answers a ping (`ready: {name: lab.laser}`).
    /// While it runs, both are asked again every few seconds.
    Name {
        name: String,
        /// A name server of this configuration. Default the only one;
        /// required when there are several.
        nameserver: String,
    },
}

fn started<S: serde::Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str("started")
}

/// When the manager starts a component again after it ended unasked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// After any end; a component crashing again and again is retried at
    /// the longest back-off for as long as it takes (the default: a lab
    /// left over a weekend comes back once the fault is gone).
    Always,
    /// After a crash (a signal, or an exit status other than 0), not after
    /// a clean exit; after a few crashes in a row, each soon after
    /// starting, it is marked failed and left alone.
    OnFailure,
    /// Never: it is marked failed (or stopped, after a clean exit).
    Never,
}

impl RestartPolicy {
    /// The configuration spellings, in the order of the variants.
    pub const NAMES: [&'static str; 3] = ["always", "on-failure", "never"];
    const ALL: [RestartPolicy; 3] = [
        RestartPolicy::Always,
        RestartPolicy::OnFailure,
        RestartPolicy::Never,
    ];

    /// The policy `NAMES[index]` spells.
    pub fn from_index(index: usize) -> RestartPolicy {
        Self::ALL[index]
    }

    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// Seconds a new connection has to complete its handshake, by default: a
/// client does it in one round trip; a socket that sends nothing, or a
/// byte at a time, is not left holding resources.
pub const DEFAULT_HANDSHAKE_TIMEOUT: f64 = 5.0;

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            module: DAEMON_MODULE.to_owned(),
            classname: DaemonClass::Daemon,
            host: "localhost".to_owned(),
            port: 0,
            unixsocket: None,
            nathost: None,
            natport: 0,
            servertype: ServerType::Thread,
            nameservers: Vec::new(),
            threadpool_size: 80,
            max_connections: 256,
            max_message_size: 1 << 30,
            max_message_memory: 2 << 30,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: 0.0,
            commtimeout: 0.0,
            iter_streaming: true,
            metrics: true,
            iter_stream_lifetime: 0.0,
            iter_stream_linger: 30.0,
            max_item_streams_per_connection: 64,
            max_item_streams: 1024,
            tls: None,
            insecure: false,
            restart: RestartPolicy::Always,
        }
    }
}

/// The daemon module name PyroLab configurations use.
pub const DAEMON_MODULE: &str = "pyrolab.server";

/// How many driver instances a service has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceMode {
    /// One instance for everyone.
    Single,
    /// One instance per client connection (the default, as in Pyro5).
    Session,
    /// A new instance for every call.
    Percall,
}

/// A service: a driver class served by a daemon.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceConfig {
    /// The driver plugin's module name (required).
    pub module: String,
    /// The class in that plugin (required).
    pub classname: String,
    /// The mapping handed to the driver's constructor. Default none.
    pub parameters: Value,
    /// A description for people. Default empty.
    pub description: String,
    /// `single`, `session` (default) or `percall`.
    pub instancemode: InstanceMode,
    /// The daemon that serves it (required).
    pub daemon: String,
    /// The name servers it is registered with.
    pub nameservers: Vec<String>,
    /// Whether it also answers PyroLab's `Service` methods (`ping`,
    /// `pyrolab_version`) the driver does not define. Default true;
    /// false serves the driver's class alone, as a plain Pyro5 object.
    pub pyrolab_service: bool,
    /// Who may call, lock and force-release it (the lab's rules unless it
    /// says otherwise).
    pub access: ServiceRights,
}

/// What `pyrolab-host up` starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Autolaunch {
    /// Name servers to start.
    pub nameservers: Vec<String>,
    /// Daemons to start (with their services).
    pub daemons: Vec<String>,
    /// Commands to start, after the daemons.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<String>,
}

impl Autolaunch {
    /// Whether `up` starts `component`.
    pub fn includes(&self, component: &ComponentId) -> bool {
        match component.kind {
            Kind::Nameserver => self.nameservers.contains(&component.name),
            Kind::Daemon => self.daemons.contains(&component.name),
            Kind::Command => self.commands.contains(&component.name),
        }
    }

    /// What `up` starts, name servers first (they start first), each in
    /// the order the section gives them.
    pub fn components(&self) -> Vec<ComponentId> {
        let nameservers = self.nameservers.iter().map(|name| (Kind::Nameserver, name));
        let daemons = self.daemons.iter().map(|name| (Kind::Daemon, name));
        let commands = self.commands.iter().map(|name| (Kind::Command, name));
        nameservers
            .chain(daemons)
            .chain(commands)
            .map(|(kind, name)| ComponentId {
                kind,
                name: name.clone(),
            })
            .collect()
    }
}

/// The manager's management object (`manager:`): this host's components,
/// their status, logs and configuration, and starting, stopping and
/// restarting them, for the lab's other hosts (`ps --lab`, `logs
/// HOST/NAME`, `restart KIND HOST/NAME`, the monitor). Registered as
/// `pyrolab.manager.NAME` with the lab's name servers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ManagerConfig {
    /// This host's name in the lab. Default (`null`) this machine's host
    /// name.
    pub name: Option<String>,
    /// The address it listens on. Default `localhost`.
    pub host: String,
    /// Its TCP port. Default 0 (any free port: clients find it by name).
    pub port: u16,
    /// The name servers it registers with. Default every configured one.
    pub nameservers: Vec<String>,
    /// Its TLS: the lab's unless it says otherwise; its certificate is
    /// found by the identity `manager` unless `identity` says otherwise.
    #[serde(serialize_with = "tls_or_false")]
    pub tls: Option<TlsConfig>,
    /// Lets it listen on an address other than loopback without TLS.
    pub insecure: bool,
    /// Who may read and who may act.
    pub access: ManagerRights,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        ManagerConfig {
            name: None,
            host: "localhost".to_owned(),
            port: 0,
            nameservers: Vec::new(),
            tls: None,
            insecure: false,
            access: ManagerRights::default(),
        }
    }
}

/// The name a host's management object is registered under.
pub fn management_name(host: &str) -> String {
    format!("{MANAGEMENT_PREFIX}{host}")
}

/// What every management object's registered name starts with.
pub const MANAGEMENT_PREFIX: &str = "pyrolab.manager.";

/// The web monitor (`monitor:`): a page and a JSON API showing the name
/// servers, the services and the lab's components, read-only.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonitorConfig {
    /// The address it listens on. Default `localhost`: only this machine.
    pub host: String,
    /// Its TCP port. Default 8080.
    pub port: u16,
    /// Seconds between looks at the name servers and services. Default 2.
    pub polling: f64,
    /// Its TLS (HTTPS, and what it calls the lab with): the lab's `tls`
    /// unless it says otherwise; none (`false`) for plain HTTP.
    #[serde(serialize_with = "tls_or_false")]
    pub tls: Option<TlsConfig>,
    /// Lets it listen on an address other than loopback without TLS.
    /// Default false: it refuses to start.
    pub insecure: bool,
    /// Who may read the components' logs.
    pub access: MonitorRights,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            host: "localhost".to_owned(),
            port: 8080,
            polling: 2.0,
            tls: None,
            insecure: false,
            access: MonitorRights::default(),
        }
    }
}

/// The identity the monitor's certificate is found by, unless its `tls`
/// names another.
pub const MONITOR_IDENTITY: &str = "monitor";

/// A component's TLS (`tls:`): the certificate it serves with (and shows
/// the components it calls), the CA it trusts, and whether its clients
/// must present a certificate. Files not named are the lab CA's, in the
/// data directory (`pyrolab-host tls`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TlsConfig {
    /// The certificate's name in the lab CA's folder; default the
    /// component's name (`monitor` for the monitor).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Its certificate chain (PEM); default `<data-dir>/tls/<identity>.crt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Its private key (PEM); default `<data-dir>/tls/<identity>.key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// The CA certificates peers are checked against (a PEM file or a
    /// folder of them); default `<data-dir>/tls/ca.crt`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Whether a client without a certificate from the CA is refused.
    /// Default true.
    pub require_client_cert: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            identity: None,
            cert: None,
            key: None,
            ca: None,
            require_client_cert: true,
        }
    }
}

impl TlsConfig {
    /// The files of component `name`'s TLS, the defaults from the lab CA
    /// in `data_dir`.
    pub fn files(
        &self,
        name: &str,
        data_dir: Option<&DataDir>,
    ) -> Result<crate::tls::ServerTlsFiles, crate::tls::TlsError> {
        let identity = self.identity.as_deref().unwrap_or(name);
        let authority = data_dir.map(crate::tls::authority::Authority::of);
        let default = |what: &str, path: fn(&crate::tls::authority::Authority, &str) -> PathBuf| {
            authority
                .as_ref()
                .map(|authority| path(authority, identity))
                .ok_or_else(|| {
                    crate::tls::TlsError::Setup(format!(
                        "tls: no {what} is given and there is no data directory to find the lab CA's in"
                    ))
                })
        };
        Ok(crate::tls::ServerTlsFiles {
            cert: match &self.cert {
                Some(cert) => cert.clone(),
                None => default("cert", |a, id| a.cert_path(id))?,
            },
            key: match &self.key {
                Some(key) => key.clone(),
                None => default("key", |a, id| a.key_path(id))?,
            },
            ca: Some(match &self.ca {
                Some(ca) => ca.clone(),
                None => default("ca", |a, _| a.ca_cert())?,
            }),
            require_client_cert: self.require_client_cert,
        })
    }
}

/// A component's `tls` as the stored configuration writes it: `false`
/// for none, so that reading it back does not give it the lab's.
fn tls_or_false<S: serde::Serializer>(
    tls: &Option<TlsConfig>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match tls {
        Some(tls) => tls.serialize(serializer),
        None => serializer.serialize_bool(false),
    }
}
