//! Reads a YAML tree into a [`LaunchConfig`], recording every problem with
//! its place instead of stopping at the first.
//!
//! Scalars are read by the type each key expects, from their text as
//! written: `version: 1.0` is the string "1.0", and `broadcast: yes` is true
//! (as PyYAML, which PyroLab uses, reads it).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use pyrolab_plugin_api::Value;

use super::diagnostic::{Diagnostics, suggestion};
use super::schema::{
    Autolaunch, CommandConfig, DAEMON_MODULE, DaemonClass, DaemonConfig, InstanceMode, LabAccess,
    LaunchConfig, ManagerConfig, MonitorConfig, NameServerConfig, Readiness, RestartPolicy,
    Section, ServerType, ServiceConfig, Storage, TlsConfig, VERSION,
};
use super::yaml::{Mark, Node, NodeKind, Scalar};
use crate::access::Rule;

/// Where each key path's value was written, for the checks that run after
/// reading (`services.library.daemon`, `daemons.d.nameservers[0]`, ...).
pub type Marks = HashMap<String, Mark>;

const TOP_KEYS: &[&str] = &[
    "version",
    "strict",
    "plugin_dirs",
    "data_dir",
    "nameservers",
    "daemons",
    "services",
    "commands",
    "autolaunch",
    "monitor",
    "manager",
    "tls",
    "access",
];
const NAMESERVER_KEYS: &[&str] = &[
    "host",
    "ns_port",
    "broadcast",
    "ns_bchost",
    "ns_bcport",
    "ns_autoclean",
    "storage",
    "storage_type",
    "storage_file",
    "storage_filename",
    "storage_url",
    "max_connections",
    "handshake_timeout",
    "idle_timeout",
    "tls",
    "insecure",
    "access",
    "restart",
];
const DAEMON_KEYS: &[&str] = &[
    "module",
    "classname",
    "host",
    "port",
    "unixsocket",
    "nathost",
    "natport",
    "servertype",
    "nameservers",
    "threadpool_size",
    "max_connections",
    "max_message_size",
    "max_message_memory",
    "handshake_timeout",
    "idle_timeout",
    "commtimeout",
    "iter_streaming",
    "iter_stream_lifetime",
    "iter_stream_linger",
    "max_item_streams_per_connection",
    "max_item_streams",
    "metrics",
    "tls",
    "insecure",
    "restart",
];
const SERVICE_KEYS: &[&str] = &[
    "module",
    "classname",
    "parameters",
    "description",
    "instancemode",
    "daemon",
    "nameservers",
    "pyrolab_service",
    "access",
];
const COMMAND_KEYS: &[&str] = &["run", "cwd", "env", "ready", "ready_timeout", "restart"];
const READY_KEYS: &[&str] = &["port", "host", "name", "nameserver"];
const AUTOLAUNCH_KEYS: &[&str] = &["nameservers", "daemons", "commands"];
const MONITOR_KEYS: &[&str] = &["host", "port", "polling", "tls", "insecure", "access"];
const MANAGER_KEYS: &[&str] = &[
    "name",
    "host",
    "port",
    "nameservers",
    "tls",
    "insecure",
    "access",
];
const MANAGER_RIGHTS: &[&str] = &["read", "act"];
const SERVICE_RIGHTS: &[&str] = &["call", "lock", "force_release"];
const NAMESERVER_RIGHTS: &[&str] = &["register", "remove", "manage"];
const MONITOR_RIGHTS: &[&str] = &["logs"];
const LAB_RIGHTS: &[&str] = &[
    "call",
    "lock",
    "force_release",
    "register",
    "remove",
    "manage",
    "logs",
];
const TLS_KEYS: &[&str] = &["identity", "cert", "key", "ca", "require_client_cert"];

/// Reads the document. Returns the configuration (meaningful only if no
/// error was recorded) and where everything was written.
pub fn read(
    root: Option<&Node>,
    base_dir: &Path,
    strict_flag: bool,
    diagnostics: &mut Diagnostics,
) -> (LaunchConfig, Marks) {
    let mut reader = Reader {
        diagnostics,
        unknown_keys: Vec::new(),
        marks: Marks::new(),
        base_dir,
        lab_tls: None,
        lab_access: LabAccess::default(),
        nameserver_names: Vec::new(),
    };
    let config = match root {
        Some(root) => reader.top(root),
        None => {
            reader.diagnostics.error(
                Mark { line: 1, column: 1 },
                "",
                "the file is empty: expected a launch configuration (version, nameservers, daemons, services, autolaunch)",
            );
            LaunchConfig::default()
        }
    };
    let strict = strict_flag || config.strict;
    for (mark, path, message) in std::mem::take(&mut reader.unknown_keys) {
        if strict {
            reader.diagnostics.error(mark, &path, message);
        } else {
            reader.diagnostics.warning(mark, &path, message);
        }
    }
    (config, reader.marks)
}

struct Reader<'a> {
    diagnostics: &'a mut Diagnostics,
    /// Unknown keys, reported once `strict` is known.
    unknown_keys: Vec<(Mark, String, String)>,
    marks: Marks,
    base_dir: &'a Path,
    /// The lab's `tls`, which components without their own inherit.
    lab_tls: Option<TlsConfig>,
    /// The lab's `access`, which components without their own inherit.
    lab_access: LabAccess,
    /// The name servers' names, once read (a command's readiness by name
    /// defaults to the only one).
    nameserver_names: Vec<String>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The known keys of one mapping, after unknown keys have been reported.
struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }
}

impl Reader<'_> {
    fn error(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.diagnostics.error(node.mark, path, message);
    }

    fn top(&mut self, root: &Node) -> LaunchConfig {
        let mut config = LaunchConfig::default();
        let Some(fields) = self.fields(root, "", TOP_KEYS) else {
            return config;
        };
        if let Some(node) = fields.get("version") {
            if let Some(version) = self.string(node, "version") {
                if version != VERSION {
                    self.error(
                        node,
                        "version",
                        format!("expected version '{VERSION}', found {version:?}"),
                    );
                }
            }
        }
        if let Some(node) = fields.get("strict") {
            config.strict = self.boolean(node, "strict").unwrap_or(false);
        }
        if let Some(node) = fields.get("plugin_dirs") {
            config.plugin_dirs = self
                .list(node, "plugin_dirs")
                .into_iter()
                .filter_map(|(path, item)| {
                    self.marks.insert(path.clone(), item.mark);
                    self.path(item, &path)
                })
                .collect();
        }
        if let Some(node) = fields.get("data_dir") {
            config.data_dir = self.optional_path(node, "data_dir").flatten();
        }
        // Read first: services, name servers and the monitor inherit it.
        if let Some(node) = fields.get("access") {
            config.access = self.lab_access(node);
            self.lab_access = config.access.clone();
        }
        // Read first: name servers, daemons and the monitor inherit it.
        if let Some(node) = fields.get("tls") {
            config.tls = self.tls(node, "tls", None);
            self.lab_tls = config.tls.clone();
        }
        if let Some(node) = fields.get("nameservers") {
            config.nameservers = self.section(node, "nameservers", Self::nameserver);
            self.nameserver_names = config.nameservers.names().map(str::to_owned).collect();
        }
        if let Some(node) = fields.get("daemons") {
            config.daemons = self.section(node, "daemons", Self::daemon);
        }
        if let Some(node) = fields.get("services") {
            config.services = self.section(node, "services", Self::service);
        }
        if let Some(node) = fields.get("commands") {
            config.commands = self.section(node, "commands", Self::command);
        }
        if let Some(node) = fields.get("autolaunch") {
            config.autolaunch = self.autolaunch(node);
        }
        if let Some(node) = fields.get("monitor") {
            config.monitor = Some(self.monitor(node));
        }
        if let Some(node) = fields.get("manager") {
            config.manager = Some(self.manager(node));
        }
        config
    }

    /// A mapping's known keys; reports unknown keys (with a suggestion) and
    /// non-mapping nodes. A `null` reads as an empty mapping.
    fn fields<'n>(&mut self, node: &'n Node, path: &str, known: &[&str]) -> Option<Fields<'n>> {
        let entries = self.mapping(node, path)?;
        let mut fields = Fields {
            entries: Vec::new(),
        };
        for (key, value) in entries {
            let Some(name) = self.key(key, path) else {
                continue;
            };
            if known.contains(&name) {
                self.marks.insert(join(path, name), value.mark);
                fields.entries.push((name, value));
            } else {
                let hint = match suggestion(name, known.iter().copied()) {
                    Some(close) => format!("; did you mean `{close}`?"),
                    None => format!(" (known keys: {})", known.join(", ")),
                };
                self.unknown_keys.push((
                    key.mark,
                    join(path, name),
                    format!("unknown key `{name}`{hint}"),
                ));
            }
        }
        Some(fields)
    }

    fn mapping<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [(Node, Node)]> {
        match &node.kind {
            NodeKind::Map(entries) => Some(entries),
            _ if node.is_null() => Some(&[]),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a mapping, found {}", node.describe()),
                );
                None
            }
        }
    }

    fn key<'n>(&mut self, key: &'n Node, path: &str) -> Option<&'n str> {
        match key.as_scalar() {
            Some(scalar) if !scalar.text.is_empty() => Some(&scalar.text),
            _ => {
                self.error(
                    key,
                    path,
                    format!("expected a name as key, found {}", key.describe()),
                );
                None
            }
        }
    }

    /// Reads `{name: {...}}`, each entry with `read_entry`.
    fn section<T>(
        &mut self,
        node: &Node,
        path: &str,
        read_entry: fn(&mut Self, &Node, &str) -> T,
    ) -> Section<T> {
        let mut section = Section::default();
        let Some(entries) = self.mapping(node, path) else {
            return section;
        };
        for (key, value) in entries {
            let Some(name) = self.key(key, path) else {
                continue;
            };
            let entry_path = join(path, name);
            self.marks.insert(entry_path.clone(), key.mark);
            let entry = read_entry(self, value, &entry_path);
            section.push(name.to_owned(), entry);
        }
        section
    }

    fn nameserver(&mut self, node: &Node, path: &str) -> NameServerConfig {
        let mut ns = NameServerConfig::default();
        let Some(fields) = self.fields(node, path, NAMESERVER_KEYS) else {
            return ns;
        };
        if let Some(host) = self.field(&fields, path, "host", Self::host) {
            ns.host = host;
        }
        if let Some(port) = self.field(&fields, path, "ns_port", Self::port) {
            ns.ns_port = port;
        }
        if let Some(broadcast) = self.field(&fields, path, "broadcast", Self::boolean) {
            ns.broadcast = broadcast;
        }
        if let Some(host) = self.field(&fields, path, "ns_bchost", Self::optional_host) {
            ns.ns_bchost = host;
        }
        if let Some(port) = self.field(&fields, path, "ns_bcport", Self::port) {
            ns.ns_bcport = port;
        }
        if let Some(period) = self.field(&fields, path, "ns_autoclean", Self::autoclean) {
            ns.ns_autoclean = period;
        }
        self.storage(&fields, path, &mut ns);
        self.connection_limits(
            &fields,
            path,
            &mut ns.max_connections,
            [&mut ns.handshake_timeout, &mut ns.idle_timeout],
        );
        (ns.tls, ns.insecure) = self.exposure(&fields, path);
        ns.access = self.lab_access.nameserver.clone();
        if let Some(node) = fields.get("access") {
            let path = join(path, "access");
            let mut rules = self.rules(node, &path, NAMESERVER_RIGHTS);
            for (key, slot) in [
                ("register", &mut ns.access.register),
                ("remove", &mut ns.access.remove),
                ("manage", &mut ns.access.manage),
            ] {
                if let Some(rule) = rules.remove(key) {
                    *slot = rule;
                }
            }
        }
        if let Some(policy) = self.field(&fields, path, "restart", Self::restart_policy) {
            ns.restart = policy;
        }
        ns
    }

    /// `storage` or `storage_type`: `memory`, `dbm`, `sql`, or `dbm:PATH` /
    /// `sql:PATH`; and `storage_file`.
    fn storage(&mut self, fields: &Fields<'_>, path: &str, ns: &mut NameServerConfig) {
        let (key, node) = match (fields.get("storage"), fields.get("storage_type")) {
            (Some(a), Some(b)) => {
                self.error(
                    b,
                    &join(path, "storage_type"),
                    "give `storage` or `storage_type`, not both (they are the same setting)",
                );
                ("storage", Some(a))
            }
            (Some(a), None) => ("storage", Some(a)),
            (None, b) => ("storage_type", b),
        };
        let mut file_from_storage = None;
        if let Some(node) = node {
            let key_path = join(path, key);
            if let Some(text) = self.string(node, &key_path) {
                let (kind, file) = match text.split_once(':') {
                    Some((kind, file)) => (kind, Some(file)),
                    None => (text.as_str(), None),
                };
                match Storage::from_name(kind) {
                    // `storage: postgresql://...`: the URL itself.
                    Some(Storage::Postgresql) if file.is_some() => {
                        ns.storage = Storage::Postgresql;
                        ns.storage_url = Some(text.clone());
                    }
                    Some(storage) if file.is_some() && storage.file_extension().is_none() => {
                        self.error(node, &key_path, storage_without_file(storage))
                    }
                    Some(storage) => ns.storage = storage,
                    None => {
                        let names: Vec<&str> = Storage::ALL.iter().map(|s| s.as_str()).collect();
                        let hint = did_you_mean(kind, &names);
                        self.error(
                            node,
                            &key_path,
                            format!(
                                "expected one of {} (optionally {}), found {kind:?}{hint}",
                                names.join(", "),
                                file_forms()
                            ),
                        );
                    }
                }
                if ns.storage != Storage::Postgresql {
                    file_from_storage = file.filter(|f| !f.is_empty()).map(|f| self.resolve(f));
                }
            }
        }
        // `storage_filename` is how PyroLab's own documentation spells it.
        let (file_key, file_node) = match (
            fields.get("storage_file"),
            fields.get("storage_filename"),
        ) {
            (Some(a), Some(b)) => {
                self.error(
                    b,
                    &join(path, "storage_filename"),
                    "give `storage_file` or `storage_filename`, not both (they are the same setting)",
                );
                ("storage_file", Some(a))
            }
            (Some(a), None) => ("storage_file", Some(a)),
            (None, b) => ("storage_filename", b),
        };
        let file_path = join(path, file_key);
        let storage_file =
            file_node.and_then(|node| self.optional_path(node, &file_path).map(|p| (node, p)));
        match (file_from_storage, storage_file) {
            (Some(_), Some((node, Some(_)))) => self.error(
                node,
                &file_path,
                "the storage file is already given in `storage` (dbm:PATH / sql:PATH); give it once",
            ),
            (Some(file), _) => ns.storage_file = Some(file),
            (None, Some((node, file))) => {
                if file.is_some() && ns.storage == Storage::Memory {
                    self.diagnostics.warning(
                        node.mark,
                        &file_path,
                        "ignored: memory storage keeps no file",
                    );
                }
                ns.storage_file = file;
            }
            (None, None) => {}
        }
        self.storage_url(fields, path, ns);
    }

    /// `storage_url`, which `postgresql` storage needs (and only it).
    fn storage_url(&mut self, fields: &Fields<'_>, path: &str, ns: &mut NameServerConfig) {
        let url_path = join(path, "storage_url");
        if let Some(node) = fields.get("storage_url") {
            if let Some(url) = self.nonempty_string(node, &url_path) {
                if ns.storage_url.is_some() {
                    self.error(
                        node,
                        &url_path,
                        "the database is already given in `storage` (postgresql://...); give it once",
                    );
                } else if ns.storage != Storage::Postgresql {
                    self.diagnostics.warning(
                        node.mark,
                        &url_path,
                        format!("ignored: {} storage keeps no database", ns.storage.as_str()),
                    );
                } else {
                    ns.storage_url = Some(url);
                }
            }
        }
        if ns.storage != Storage::Postgresql {
            return;
        }
        let at = fields
            .get("storage_url")
            .or_else(|| fields.get("storage"))
            .or_else(|| fields.get("storage_type"));
        let Some(node) = at else { return };
        match &ns.storage_url {
            None => self.error(
                node,
                &join(path, "storage"),
                "postgresql storage needs its database: `storage_url: postgresql://USER@HOST:PORT/DATABASE`",
            ),
            Some(url) => {
                if let Err(err) = crate::nameserver::storage::postgres_config(url) {
                    self.error(node, &url_path, err.to_string());
                }
            }
        }
    }

    fn daemon(&mut self, node: &Node, path: &str) -> DaemonConfig {
        let mut daemon = DaemonConfig::default();
        let Some(fields) = self.fields(node, path, DAEMON_KEYS) else {
            return daemon;
        };
        if let Some(module) = self.field(&fields, path, "module", Self::string) {
            if module != DAEMON_MODULE {
                self.error(
                    fields.get("module").expect("just read"),
                    &join(path, "module"),
                    format!("expected {DAEMON_MODULE:?} (daemons are built into pyrolab-host), found {module:?}"),
                );
            }
        }
        if let Some(class) = self.field(&fields, path, "classname", |r, n, p| {
            r.choice(n, p, &["Daemon", "LockableDaemon"])
        }) {
            daemon.classname = if class == 0 {
                DaemonClass::Daemon
            } else {
                DaemonClass::LockableDaemon
            };
        }
        if let Some(host) = self.field(&fields, path, "host", Self::host) {
            daemon.host = host;
        }
        if let Some(port) = self.field(&fields, path, "port", Self::port) {
            daemon.port = port;
        }
        if let Some(socket) = self.field(&fields, path, "unixsocket", Self::optional_path) {
            daemon.unixsocket = socket;
        }
        if let Some(host) = self.field(&fields, path, "nathost", Self::optional_host) {
            daemon.nathost = host;
        }
        if let Some(port) = self.field(&fields, path, "natport", Self::port) {
            daemon.natport = port;
        }
        if let Some(kind) = self.field(&fields, path, "servertype", |r, n, p| {
            r.choice(n, p, &["thread", "multiplex"])
        }) {
            daemon.servertype = if kind == 0 {
                ServerType::Thread
            } else {
                ServerType::Multiplex
            };
        }
        if let Some(node) = fields.get("nameservers") {
            daemon.nameservers = self.names(node, &join(path, "nameservers"));
        }
        if let Some(size) = self.field(&fields, path, "threadpool_size", |r, n, p| {
            r.count(n, p, 1, 100_000)
        }) {
            daemon.threadpool_size = size as usize;
        }
        if let Some(size) = self.field(&fields, path, "max_message_size", |r, n, p| {
            r.count(n, p, 1024, u64::MAX)
        }) {
            daemon.max_message_size = size;
        }
        if let Some(size) = self.field(&fields, path, "max_message_memory", |r, n, p| {
            r.count(n, p, 1024, u64::MAX)
        }) {
            daemon.max_message_memory = size;
        }
        if daemon.max_message_memory < daemon.max_message_size
            && let Some(node) = fields
                .get("max_message_memory")
                .or_else(|| fields.get("max_message_size"))
        {
            self.error(
                node,
                &join(path, "max_message_memory"),
                format!(
                    "max_message_memory ({}) is smaller than max_message_size ({}): a message of \
                     the largest size could never be read",
                    daemon.max_message_memory, daemon.max_message_size
                ),
            );
        }
        self.connection_limits(
            &fields,
            path,
            &mut daemon.max_connections,
            [&mut daemon.handshake_timeout, &mut daemon.idle_timeout],
        );
        self.streaming(&fields, path, &mut daemon);
        (daemon.tls, daemon.insecure) = self.exposure(&fields, path);
        if let Some(policy) = self.field(&fields, path, "restart", Self::restart_policy) {
            daemon.restart = policy;
        }
        daemon
    }

    /// A command (`commands.NAME`): a program the manager runs.
    fn command(&mut self, node: &Node, path: &str) -> CommandConfig {
        let mut command = CommandConfig {
            cwd: self.base_dir.to_owned(),
            ..CommandConfig::default()
        };
        let Some(fields) = self.fields(node, path, COMMAND_KEYS) else {
            return command;
        };
        match fields.get("run") {
            Some(node) => command.run = self.argv(node, &join(path, "run")),
            None => self.error(
                node,
                path,
                "a command needs `run`: the program and its arguments, as a list",
            ),
        }
        if let Some(cwd) = self.field(&fields, path, "cwd", Self::path) {
            command.cwd = cwd;
        }
        if let Some(node) = fields.get("env") {
            command.env = self.environment(node, &join(path, "env"));
        }
        if let Some(node) = fields.get("ready") {
            command.ready = self.readiness(node, &join(path, "ready"));
        }
        if let Some(timeout) = self.field(&fields, path, "ready_timeout", Self::ready_timeout) {
            command.ready_timeout = timeout;
        }
        if let Some(policy) = self.field(&fields, path, "restart", Self::restart_policy) {
            command.restart = policy;
        }
        command
    }

    /// `run`: a list of strings, the program first (a single string is
    /// the program alone).
    fn argv(&mut self, node: &Node, path: &str) -> Vec<String> {
        let argv: Vec<String> = if node.as_scalar().is_some() {
            self.nonempty_string(node, path).into_iter().collect()
        } else {
            self.list(node, path)
                .into_iter()
                .filter_map(|(item_path, item)| self.string(item, &item_path))
                .collect()
        };
        if argv
            .first()
            .is_some_and(|program| program.trim().is_empty())
        {
            self.error(node, path, "the program (the first item) is empty");
        } else if argv.is_empty() && (node.is_null() || matches!(node.kind, NodeKind::Seq(_))) {
            self.error(
                node,
                path,
                "expected the program and its arguments, found none",
            );
        }
        argv
    }

    /// `env`: a mapping of variable names to values (numbers and booleans
    /// are taken as written).
    fn environment(
        &mut self,
        node: &Node,
        path: &str,
    ) -> std::collections::BTreeMap<String, String> {
        let mut env = std::collections::BTreeMap::new();
        let Some(entries) = self.mapping(node, path) else {
            return env;
        };
        for (key, value) in entries {
            let Some(name) = self.key(key, path) else {
                continue;
            };
            let value_path = join(path, name);
            if name.contains('=') || name.contains('\0') {
                self.error(key, &value_path, format!("{name:?} is not a variable name"));
                continue;
            }
            if let Some(text) = self.string(value, &value_path) {
                env.insert(name.to_owned(), text);
            }
        }
        env
    }

    /// `ready`: `{port: N, host: H}` or `{name: N, nameserver: NS}`.
    fn readiness(&mut self, node: &Node, path: &str) -> Readiness {
        if node.as_scalar().is_some_and(|s| s.text == "started") {
            return Readiness::Started;
        }
        let Some(fields) = self.fields(node, path, READY_KEYS) else {
            return Readiness::Started;
        };
        let port = self.field(&fields, path, "port", Self::port);
        let name = self.field(&fields, path, "name", Self::nonempty_string);
        match (port, name) {
            (Some(port), None) => {
                if fields.get("nameserver").is_some() {
                    self.error(node, path, "`nameserver` goes with `name`, not with `port`");
                }
                let host = self.field(&fields, path, "host", Self::host);
                Readiness::Port {
                    host: host.unwrap_or_else(|| "localhost".to_owned()),
                    port,
                }
            }
            (None, Some(name)) => {
                if fields.get("host").is_some() {
                    self.error(node, path, "`host` goes with `port`, not with `name`");
                }
                let nameserver = match self.field(
                    &fields,
                    path,
                    "nameserver",
                    Self::nonempty_string,
                ) {
                    Some(nameserver) => nameserver,
                    None => match self.nameserver_names.as_slice() {
                        [only] => only.clone(),
                        names => {
                            self.error(
                                node,
                                path,
                                format!(
                                    "say which name server `{name}` is looked up on (`nameserver:`): the configuration has {} name servers",
                                    names.len()
                                ),
                            );
                            String::new()
                        }
                    },
                };
                Readiness::Name { name, nameserver }
            }
            (Some(_), Some(_)) => {
                self.error(node, path, "give `port` or `name`, not both");
                Readiness::Started
            }
            (None, None) => {
                if fields.get("port").is_none() && fields.get("name").is_none() {
                    self.error(
                        node,
                        path,
                        "expected `port` (ready once it accepts connections) or `name` (ready once it is on a name server)",
                    );
                }
                Readiness::Started
            }
        }
    }

    /// Pyro5's `COMMTIMEOUT` and item-stream settings, and the bounds on
    /// open streams.
    fn streaming(&mut self, fields: &Fields<'_>, path: &str, daemon: &mut DaemonConfig) {
        if let Some(seconds) = self.field(fields, path, "commtimeout", Self::timeout) {
            daemon.commtimeout = seconds;
        }
        if let Some(on) = self.field(fields, path, "iter_streaming", Self::boolean) {
            daemon.iter_streaming = on;
        }
        if let Some(on) = self.field(fields, path, "metrics", Self::boolean) {
            daemon.metrics = on;
        }
        for (key, slot) in [
            ("iter_stream_lifetime", &mut daemon.iter_stream_lifetime),
            ("iter_stream_linger", &mut daemon.iter_stream_linger),
        ] {
            if let Some(seconds) = self.field(fields, path, key, Self::timeout) {
                *slot = seconds;
            }
        }
        for (key, slot) in [
            (
                "max_item_streams_per_connection",
                &mut daemon.max_item_streams_per_connection,
            ),
            ("max_item_streams", &mut daemon.max_item_streams),
        ] {
            if let Some(count) = self.field(fields, path, key, |r, n, p| r.count(n, p, 1, 1 << 20))
            {
                *slot = count as usize;
            }
        }
    }

    /// What daemons and name servers alike bound their connections by:
    /// `max_connections`, and the `handshake_timeout` and `idle_timeout`
    /// that close silent ones.
    fn connection_limits(
        &mut self,
        fields: &Fields<'_>,
        path: &str,
        max_connections: &mut usize,
        [handshake_timeout, idle_timeout]: [&mut f64; 2],
    ) {
        if let Some(size) = self.field(fields, path, "max_connections", |r, n, p| {
            r.count(n, p, 1, 1_000_000)
        }) {
            *max_connections = size as usize;
        }
        if let Some(seconds) = self.field(fields, path, "handshake_timeout", Self::timeout) {
            *handshake_timeout = seconds;
        }
        if let Some(seconds) = self.field(fields, path, "idle_timeout", Self::timeout) {
            *idle_timeout = seconds;
        }
    }

    fn service(&mut self, node: &Node, path: &str) -> ServiceConfig {
        let mut service = ServiceConfig {
            module: String::new(),
            classname: String::new(),
            parameters: Value::Null,
            description: String::new(),
            instancemode: InstanceMode::Session,
            daemon: String::new(),
            nameservers: Vec::new(),
            pyrolab_service: true,
            access: self.lab_access.service.clone(),
        };
        let Some(fields) = self.fields(node, path, SERVICE_KEYS) else {
            return service;
        };
        for (key, slot) in [
            ("module", &mut service.module),
            ("classname", &mut service.classname),
            ("daemon", &mut service.daemon),
        ] {
            match fields.get(key) {
                Some(value) => {
                    if let Some(text) = self.nonempty_string(value, &join(path, key)) {
                        *slot = text;
                    }
                }
                None => {
                    let entry = self.marks.get(path).copied().unwrap_or(node.mark);
                    self.diagnostics
                        .error(entry, path, format!("missing required key `{key}`"));
                }
            }
        }
        if let Some(node) = fields.get("parameters") {
            service.parameters = self.parameters(node, &join(path, "parameters"));
        }
        if let Some(description) = self.field(&fields, path, "description", Self::optional_string) {
            service.description = description.unwrap_or_default();
        }
        if let Some(mode) = self.field(&fields, path, "instancemode", |r, n, p| {
            r.choice(n, p, &["single", "session", "percall"])
        }) {
            service.instancemode = match mode {
                0 => InstanceMode::Single,
                1 => InstanceMode::Session,
                _ => InstanceMode::Percall,
            };
        }
        if let Some(node) = fields.get("nameservers") {
            service.nameservers = self.names(node, &join(path, "nameservers"));
        }
        if let Some(on) = self.field(&fields, path, "pyrolab_service", Self::boolean) {
            service.pyrolab_service = on;
        }
        if let Some(node) = fields.get("access") {
            let path = join(path, "access");
            let mut rules = self.rules(node, &path, SERVICE_RIGHTS);
            for (key, slot) in [
                ("call", &mut service.access.call),
                ("lock", &mut service.access.lock),
                ("force_release", &mut service.access.force_release),
            ] {
                if let Some(rule) = rules.remove(key) {
                    *slot = rule;
                }
            }
        }
        service
    }

    fn autolaunch(&mut self, node: &Node) -> Autolaunch {
        let mut autolaunch = Autolaunch::default();
        let Some(fields) = self.fields(node, "autolaunch", AUTOLAUNCH_KEYS) else {
            return autolaunch;
        };
        if let Some(node) = fields.get("nameservers") {
            autolaunch.nameservers = self.names(node, "autolaunch.nameservers");
        }
        if let Some(node) = fields.get("daemons") {
            autolaunch.daemons = self.names(node, "autolaunch.daemons");
        }
        if let Some(node) = fields.get("commands") {
            autolaunch.commands = self.names(node, "autolaunch.commands");
        }
        autolaunch
    }

    /// `monitor:`; `monitor: {}` (or an empty `monitor:`) turns the monitor
    /// on with every default.
    fn monitor(&mut self, node: &Node) -> MonitorConfig {
        let mut monitor = MonitorConfig {
            tls: self.lab_tls.clone(),
            ..MonitorConfig::default()
        };
        let Some(fields) = self.fields(node, "monitor", MONITOR_KEYS) else {
            return monitor;
        };
        (monitor.tls, monitor.insecure) = self.exposure(&fields, "monitor");
        monitor.access = self.lab_access.monitor.clone();
        if let Some(node) = fields.get("access") {
            if let Some(rule) = self
                .rules(node, "monitor.access", MONITOR_RIGHTS)
                .remove("logs")
            {
                monitor.access.logs = rule;
            }
        }
        if let Some(host) = self.field(&fields, "monitor", "host", Self::host) {
            monitor.host = host;
        }
        if let Some(port) = self.field(&fields, "monitor", "port", Self::port) {
            monitor.port = port;
        }
        if let Some(polling) = self.field(&fields, "monitor", "polling", Self::polling) {
            monitor.polling = polling;
        }
        monitor
    }

    /// `manager:`; `manager: {}` serves the management object with every
    /// default.
    fn manager(&mut self, node: &Node) -> ManagerConfig {
        const PATH: &str = "manager";
        let mut manager = ManagerConfig {
            tls: self.lab_tls.clone(),
            ..ManagerConfig::default()
        };
        let Some(fields) = self.fields(node, PATH, MANAGER_KEYS) else {
            return manager;
        };
        (manager.tls, manager.insecure) = self.exposure(&fields, PATH);
        if let Some(node) = fields.get("access") {
            let mut rules = self.rules(node, "manager.access", MANAGER_RIGHTS);
            for (key, slot) in [
                ("read", &mut manager.access.read),
                ("act", &mut manager.access.act),
            ] {
                if let Some(rule) = rules.remove(key) {
                    *slot = rule;
                }
            }
        }
        if let Some(name) = self.field(&fields, PATH, "name", Self::optional_string) {
            if let Some(bad) = name.as_deref().filter(|n| !valid_host_name(n)) {
                self.error(
                    fields.get("name").expect("just read"),
                    "manager.name",
                    format!(
                        "expected a host name (letters, digits, `-`, `_` and `.`, no `/`), found {bad:?}"
                    ),
                );
            }
            manager.name = name;
        }
        if let Some(host) = self.field(&fields, PATH, "host", Self::host) {
            manager.host = host;
        }
        if let Some(port) = self.field(&fields, PATH, "port", Self::port) {
            manager.port = port;
        }
        if let Some(node) = fields.get("nameservers") {
            manager.nameservers = self.names(node, "manager.nameservers");
        }
        manager
    }

    /// `access:` at the top level: a default for every right.
    fn lab_access(&mut self, node: &Node) -> LabAccess {
        let mut access = LabAccess::default();
        let mut rules = self.rules(node, "access", LAB_RIGHTS);
        for (key, slot) in [
            ("call", &mut access.service.call),
            ("lock", &mut access.service.lock),
            ("force_release", &mut access.service.force_release),
            ("register", &mut access.nameserver.register),
            ("remove", &mut access.nameserver.remove),
            ("manage", &mut access.nameserver.manage),
            ("logs", &mut access.monitor.logs),
        ] {
            if let Some(rule) = rules.remove(key) {
                *slot = rule;
            }
        }
        access
    }

    /// An `access` mapping of `rights`, each a list of identities (or one
    /// identity, or `'*'` for anyone).
    fn rules(&mut self, node: &Node, path: &str, rights: &[&str]) -> HashMap<String, Rule> {
        let mut rules = HashMap::new();
        let Some(fields) = self.fields(node, path, rights) else {
            return rules;
        };
        for (key, value) in &fields.entries {
            let path = join(path, key);
            let names = match value.as_scalar() {
                Some(_) => self.nonempty_string(value, &path).into_iter().collect(),
                None => self.names(value, &path),
            };
            rules.insert((*key).to_owned(), Rule::of(names));
        }
        rules
    }

    /// A listener's `tls` (the lab's when it has none) and `insecure`.
    fn exposure(&mut self, fields: &Fields<'_>, path: &str) -> (Option<TlsConfig>, bool) {
        let inherited = self.lab_tls.clone();
        let tls = match fields.get("tls") {
            Some(node) => self.tls(node, &join(path, "tls"), inherited.as_ref()),
            None => inherited,
        };
        let insecure = self
            .field(fields, path, "insecure", Self::boolean)
            .unwrap_or(false);
        (tls, insecure)
    }

    /// `tls`: `true` (every default, or the lab's), `false` (plain TCP),
    /// or a mapping of the keys to set over `inherited`.
    fn tls(&mut self, node: &Node, path: &str, inherited: Option<&TlsConfig>) -> Option<TlsConfig> {
        let base = inherited.cloned().unwrap_or_default();
        if let Some(scalar) = node.as_scalar()
            && !scalar.is_null()
        {
            return match self.boolean(node, path)? {
                true => Some(base),
                false => None,
            };
        }
        let fields = self.fields(node, path, TLS_KEYS)?;
        let mut tls = base;
        if let Some(identity) = self.field(&fields, path, "identity", Self::nonempty_string) {
            tls.identity = Some(identity);
        }
        for (key, slot) in [
            ("cert", &mut tls.cert),
            ("key", &mut tls.key),
            ("ca", &mut tls.ca),
        ] {
            if let Some(file) = self.field(&fields, path, key, Self::path) {
                *slot = Some(file);
            }
        }
        if let Some(required) = self.field(&fields, path, "require_client_cert", Self::boolean) {
            tls.require_client_cert = required;
        }
        Some(tls)
    }

    /// `monitor.polling`: 0.1 to 3600 seconds.
    fn polling(&mut self, node: &Node, path: &str) -> Option<f64> {
        const EXPECTED: &str = "a number of seconds from 0.1 to 3600";
        let scalar = self.scalar(node, path, EXPECTED)?;
        let seconds = if scalar.plain {
            parse_float(&scalar.text)
        } else {
            None
        };
        match seconds {
            Some(s) if (0.1..=3600.0).contains(&s) => Some(s),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected {EXPECTED}, found {}", found(scalar)),
                );
                None
            }
        }
    }

    /// Reads an optional field with `read`, if present.
    fn field<'n, T>(
        &mut self,
        fields: &Fields<'n>,
        path: &str,
        key: &str,
        read: impl FnOnce(&mut Self, &'n Node, &str) -> Option<T>,
    ) -> Option<T> {
        let node = fields.get(key)?;
        read(self, node, &join(path, key))
    }

    fn scalar<'n>(&mut self, node: &'n Node, path: &str, expected: &str) -> Option<&'n Scalar> {
        match node.as_scalar() {
            Some(scalar) if !scalar.is_null() => Some(scalar),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected {expected}, found {}", node.describe()),
                );
                None
            }
        }
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        self.scalar(node, path, "a string").map(|s| s.text.clone())
    }

    fn nonempty_string(&mut self, node: &Node, path: &str) -> Option<String> {
        let text = self.string(node, path)?;
        if text.trim().is_empty() {
            self.error(node, path, "expected a name, found an empty string");
            return None;
        }
        Some(text)
    }

    fn optional_string(&mut self, node: &Node, path: &str) -> Option<Option<String>> {
        if node.is_null() {
            return Some(None);
        }
        self.string(node, path).map(Some)
    }

    fn host(&mut self, node: &Node, path: &str) -> Option<String> {
        let host = self.string(node, path)?;
        if host.trim().is_empty() || host.contains(char::is_whitespace) {
            self.error(
                node,
                path,
                format!("expected a host name or address, found {host:?}"),
            );
            return None;
        }
        Some(host)
    }

    fn optional_host(&mut self, node: &Node, path: &str) -> Option<Option<String>> {
        if node.is_null() {
            return Some(None);
        }
        self.host(node, path).map(Some)
    }

    fn path(&mut self, node: &Node, path: &str) -> Option<PathBuf> {
        let text = self.nonempty_string(node, path)?;
        Some(self.resolve(&text))
    }

    fn optional_path(&mut self, node: &Node, path: &str) -> Option<Option<PathBuf>> {
        if node.is_null() {
            return Some(None);
        }
        self.path(node, path).map(Some)
    }

    /// Relative paths are relative to the configuration file's folder, not
    /// to wherever the host happens to be started from.
    fn resolve(&self, text: &str) -> PathBuf {
        let path = PathBuf::from(text);
        if path.is_absolute() {
            path
        } else {
            self.base_dir.join(path)
        }
    }

    fn boolean(&mut self, node: &Node, path: &str) -> Option<bool> {
        let scalar = self.scalar(node, path, "true or false")?;
        let value = if scalar.plain {
            match scalar.text.as_str() {
                "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
                "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
                    Some(false)
                }
                _ => None,
            }
        } else {
            None
        };
        if value.is_none() {
            self.error(
                node,
                path,
                format!("expected true or false, found {}", found(scalar)),
            );
        }
        value
    }

    /// An integer written without quotes.
    fn integer(&mut self, node: &Node, path: &str, expected: &str) -> Option<i128> {
        let scalar = self.scalar(node, path, expected)?;
        let parsed = if scalar.plain {
            parse_int(&scalar.text)
        } else {
            None
        };
        if parsed.is_none() {
            let mut message = format!("expected {expected}, found {}", found(scalar));
            if !scalar.plain && parse_int(&scalar.text).is_some() {
                message.push_str(" (a number in quotes is a string: remove the quotes)");
            }
            self.error(node, path, message);
        }
        parsed
    }

    fn port(&mut self, node: &Node, path: &str) -> Option<u16> {
        const EXPECTED: &str = "a port number from 0 to 65535";
        let number = self.integer(node, path, EXPECTED)?;
        match u16::try_from(number) {
            Ok(port) => Some(port),
            Err(_) => {
                self.error(node, path, format!("expected {EXPECTED}, found {number}"));
                None
            }
        }
    }

    fn count(&mut self, node: &Node, path: &str, min: u64, max: u64) -> Option<u64> {
        let expected = format!("a whole number of at least {min}");
        let number = self.integer(node, path, &expected)?;
        match u64::try_from(number) {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(node, path, format!("expected {expected}, found {number}"));
                None
            }
        }
    }

    /// `restart`: `always`, `on-failure` or `never`.
    fn restart_policy(&mut self, node: &Node, path: &str) -> Option<RestartPolicy> {
        self.choice(node, path, &RestartPolicy::NAMES)
            .map(RestartPolicy::from_index)
    }

    /// A timeout: 0 (none) or 0.1 seconds to a day.
    fn timeout(&mut self, node: &Node, path: &str) -> Option<f64> {
        const EXPECTED: &str = "0 (no limit) or a number of seconds from 0.1 to 86400 (a day)";
        self.seconds_or_zero(node, path, 0.1..=86_400.0, EXPECTED)
    }

    /// A command's `ready_timeout`: 1 to 240 seconds (`up` waits for
    /// every component to be ready or given up on).
    fn ready_timeout(&mut self, node: &Node, path: &str) -> Option<f64> {
        const EXPECTED: &str = "a number of seconds from 1 to 240";
        match self.seconds_or_zero(node, path, 1.0..=240.0, EXPECTED)? {
            0.0 => {
                self.error(node, path, format!("expected {EXPECTED}, found 0"));
                None
            }
            seconds => Some(seconds),
        }
    }

    /// `ns_autoclean`: 0 (off) or a period of 3 seconds to a day.
    fn autoclean(&mut self, node: &Node, path: &str) -> Option<f64> {
        const EXPECTED: &str = "0 (off) or a period of 3 to 86400 seconds (a day)";
        self.seconds_or_zero(node, path, 3.0..=86_400.0, EXPECTED)
    }

    /// A number of seconds: 0, or one in `range`.
    fn seconds_or_zero(
        &mut self,
        node: &Node,
        path: &str,
        range: std::ops::RangeInclusive<f64>,
        expected: &str,
    ) -> Option<f64> {
        let scalar = self.scalar(node, path, expected)?;
        let seconds = if scalar.plain {
            parse_float(&scalar.text)
        } else {
            None
        };
        match seconds {
            Some(s) if s == 0.0 || range.contains(&s) => Some(s),
            Some(s) => {
                self.error(node, path, format!("expected {expected}, found {s}"));
                None
            }
            None => {
                self.error(
                    node,
                    path,
                    format!("expected {expected}, found {}", found(scalar)),
                );
                None
            }
        }
    }

    /// One of `options`, by index.
    fn choice(&mut self, node: &Node, path: &str, options: &[&str]) -> Option<usize> {
        let expected = format!("one of {}", options.join(", "));
        let scalar = self.scalar(node, path, &expected)?;
        let index = options.iter().position(|o| *o == scalar.text);
        if index.is_none() {
            let hint = did_you_mean(&scalar.text, options);
            self.error(
                node,
                path,
                format!("expected {expected}, found {}{hint}", found(scalar)),
            );
        }
        index
    }

    /// A list's items with their paths (`key[0]`, ...). `null` is empty.
    fn list<'n>(&mut self, node: &'n Node, path: &str) -> Vec<(String, &'n Node)> {
        match &node.kind {
            NodeKind::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| (format!("{path}[{i}]"), item))
                .collect(),
            _ if node.is_null() => Vec::new(),
            _ => {
                let hint = if node.as_scalar().is_some() {
                    format!(
                        " (write a list: [{}])",
                        node.as_scalar().expect("scalar").text
                    )
                } else {
                    String::new()
                };
                self.error(
                    node,
                    path,
                    format!("expected a list, found {}{hint}", node.describe()),
                );
                Vec::new()
            }
        }
    }

    /// A list of names of other entries; repeats are reported.
    fn names(&mut self, node: &Node, path: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for (item_path, item) in self.list(node, path) {
            let Some(name) = self.nonempty_string(item, &item_path) else {
                continue;
            };
            if names.contains(&name) {
                self.diagnostics.warning(
                    item.mark,
                    &item_path,
                    format!("{name:?} is listed twice"),
                );
                continue;
            }
            self.marks.insert(item_path, item.mark);
            names.push(name);
        }
        names
    }

    /// A driver's constructor parameters: a mapping of any YAML values.
    fn parameters(&mut self, node: &Node, path: &str) -> Value {
        match &node.kind {
            NodeKind::Map(_) => self.value(node, path),
            _ if node.is_null() => Value::Null,
            _ => {
                self.error(
                    node,
                    path,
                    format!(
                        "expected a mapping of parameter names to values, found {}",
                        node.describe()
                    ),
                );
                Value::Null
            }
        }
    }

    /// Any YAML value, typed as [`core_schema_value`] says.
    fn value(&mut self, node: &Node, path: &str) -> Value {
        match &node.kind {
            NodeKind::Scalar(scalar) => self.scalar_value(node, scalar, path),
            NodeKind::Seq(items) => Value::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| self.value(item, &format!("{path}[{i}]")))
                    .collect(),
            ),
            NodeKind::Map(entries) => Value::Map(
                entries
                    .iter()
                    .map(|(key, value)| {
                        let key_value = self.value(key, path);
                        let key_text = key
                            .as_scalar()
                            .map_or_else(|| key.describe(), |s| s.text.clone());
                        (key_value, self.value(value, &join(path, &key_text)))
                    })
                    .collect(),
            ),
        }
    }

    fn scalar_value(&mut self, node: &Node, scalar: &Scalar, path: &str) -> Value {
        const CORE: &str = "tag:yaml.org,2002:";
        let typed = match scalar.tag.as_deref() {
            None if !scalar.plain => Some(Value::Str(scalar.text.clone())),
            None => Some(core_schema_value(&scalar.text)),
            Some(tag) => match tag.strip_prefix(CORE) {
                Some("str") => Some(Value::Str(scalar.text.clone())),
                Some("null") => Some(Value::Null),
                Some("bool") => match scalar.text.as_str() {
                    "true" | "True" | "TRUE" => Some(Value::Bool(true)),
                    "false" | "False" | "FALSE" => Some(Value::Bool(false)),
                    _ => None,
                },
                Some("int") => integer_value(&scalar.text),
                Some("float") => parse_float(&scalar.text).map(Value::Float),
                _ => {
                    self.error(
                        node,
                        path,
                        format!("unsupported tag `{tag}`: use plain YAML values"),
                    );
                    return Value::Null;
                }
            },
        };
        typed.unwrap_or_else(|| {
            self.error(
                node,
                path,
                format!(
                    "{:?} is not a valid `{}`",
                    scalar.text,
                    scalar.tag.as_deref().unwrap_or_default()
                ),
            );
            Value::Null
        })
    }
}

/// A YAML node as a typed value (for command-line literals); problems
/// become strings rather than errors, since there is no file to point at.
pub fn literal_value(node: &Node) -> Value {
    let mut diagnostics = Diagnostics::new(Path::new("argument"));
    let mut reader = Reader {
        diagnostics: &mut diagnostics,
        unknown_keys: Vec::new(),
        marks: Marks::new(),
        base_dir: Path::new("."),
        lab_tls: None,
        lab_access: LabAccess::default(),
        nameserver_names: Vec::new(),
    };
    reader.value(node, "")
}

/// How a scalar was written, for "found ..." in messages.
fn found(scalar: &Scalar) -> String {
    if scalar.plain {
        match parse_float(&scalar.text) {
            Some(_) => scalar.text.clone(),
            None => format!("{:?}", scalar.text),
        }
    } else {
        format!("the string {:?}", scalar.text)
    }
}

/// `dbm:PATH or sql:PATH`: the storage kinds that keep a file.
fn file_forms() -> String {
    let forms: Vec<String> = Storage::ALL
        .iter()
        .filter(|kind| kind.file_extension().is_some())
        .map(|kind| format!("{}:PATH", kind.as_str()))
        .collect();
    forms.join(" or ")
}

fn storage_without_file(storage: Storage) -> String {
    let forms: Vec<String> = Storage::ALL
        .iter()
        .filter(|kind| kind.file_extension().is_some())
        .map(|kind| format!("`{}:PATH`", kind.as_str()))
        .collect();
    format!(
        "{} storage has no file: write `{}`, or {}",
        storage.as_str(),
        storage.as_str(),
        forms.join(" / ")
    )
}

/// Whether `name` can name a host in `HOST/COMPONENT` and in a
/// registered name.
pub fn valid_host_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn did_you_mean(word: &str, options: &[&str]) -> String {
    match suggestion(word, options.iter().copied()) {
        Some(close) => format!(" (did you mean {close:?}?)"),
        None => String::new(),
    }
}

/// YAML 1.2 core-schema integers: decimal, `0o` octal, `0x` hexadecimal.
fn parse_int(text: &str) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
        i128::from_str_radix(hex, 16).ok()?
    } else if let Some(octal) = digits.strip_prefix("0o") {
        i128::from_str_radix(octal, 8).ok()?
    } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()?
    } else {
        return None;
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// A core-schema integer of any size (as Python reads one: `2**70` stays
/// exact).
fn integer_value(text: &str) -> Option<Value> {
    if let Some(int) = parse_int(text) {
        return Some(Value::from(int));
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<pyrolab_plugin_api::BigInt>()
        .ok()
        .map(Value::integer)
}

/// YAML 1.2 core-schema floats (and integers, read as floats).
fn parse_float(text: &str) -> Option<f64> {
    match text {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    let looks_numeric = text
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if looks_numeric {
        text.parse().ok()
    } else {
        parse_int(text).map(|i| i as f64)
    }
}

/// A plain scalar by YAML 1.2's core schema (null, bool, int, float or
/// str), except that `yes`/`no`/`on`/`off` are booleans as PyYAML, which
/// PyroLab uses, reads them: a configuration written for PyroLab hands its
/// drivers the same values. Quoting keeps any of them a string.
fn core_schema_value(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => {
            return Value::Bool(true);
        }
        "false" | "False" | "FALSE" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => {
            return Value::Bool(false);
        }
        _ => {}
    }
    if let Some(int) = integer_value(text) {
        return int;
    }
    match parse_float(text) {
        Some(float) => Value::Float(float),
        None => Value::Str(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_schema_types_plain_scalars() {
        assert_eq!(core_schema_value("42"), Value::Int(42));
        assert_eq!(core_schema_value("-0x10"), Value::Int(-16));
        assert_eq!(core_schema_value("2.5e3"), Value::Float(2500.0));
        assert_eq!(core_schema_value("True"), Value::Bool(true));
        assert_eq!(core_schema_value("~"), Value::Null);
        assert_eq!(core_schema_value("yes"), Value::Bool(true));
        assert_eq!(core_schema_value("Off"), Value::Bool(false));
        assert_eq!(core_schema_value("1.2.3"), Value::from("1.2.3"));
        assert_eq!(core_schema_value("COM3"), Value::from("COM3"));
        assert_eq!(
            core_schema_value("-1267650600228229401496703205376").to_string(),
            "-1267650600228229401496703205376"
        );
        assert_eq!(
            core_schema_value("0x7fffffffffffffffff").to_string(),
            "2361183241434822606847"
        );
    }
}
