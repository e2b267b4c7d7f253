//! Checks across entries, run before anything starts: that every name a
//! configuration refers to exists, that registrations do not collide, and
//! that no two components want the same address.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::diagnostic::{Diagnostics, suggestion};
use super::read::Marks;
use super::schema::{LaunchConfig, Readiness, Section};
use super::yaml::Mark;

/// Runs every check, recording problems in `diagnostics`. `source` is the
/// file's own path, when it is a file.
pub fn check(
    config: &LaunchConfig,
    marks: &Marks,
    source: Option<&Path>,
    diagnostics: &mut Diagnostics,
) {
    let checker = Checker { config, marks };
    checker.reserved_names(diagnostics);
    checker.references(diagnostics);
    checker.registrations(diagnostics);
    checker.addresses(diagnostics);
    checker.idle_daemons(diagnostics);
    checker.plugin_dirs(diagnostics);
    checker.data_dir(source, diagnostics);
}

struct Checker<'a> {
    config: &'a LaunchConfig,
    marks: &'a Marks,
}

impl Checker<'_> {
    fn mark(&self, path: &str) -> Mark {
        self.marks
            .get(path)
            .copied()
            .unwrap_or(Mark { line: 1, column: 1 })
    }

    /// Reports `name` at `path` if `section` has no such entry.
    fn refer<T>(
        &self,
        diagnostics: &mut Diagnostics,
        path: &str,
        name: &str,
        kind: &str,
        section: &Section<T>,
    ) {
        if section.contains(name) {
            return;
        }
        let known: Vec<&str> = section.names().collect();
        let mut message = format!("no {kind} named {name:?}");
        match suggestion(name, known.iter().copied()) {
            Some(close) => message.push_str(&format!("; did you mean {close:?}?")),
            None if known.is_empty() => message.push_str(&format!(" (no {kind}s are defined)")),
            None => message.push_str(&format!(" (defined: {})", known.join(", "))),
        }
        diagnostics.error(self.mark(path), path, message);
    }

    /// `all` stands for every daemon or name server on the command line
    /// (`pyrolab-host stop all`), as in PyroLab.
    fn reserved_names(&self, diagnostics: &mut Diagnostics) {
        let names = self
            .config
            .daemons
            .names()
            .map(|n| (n, "daemons"))
            .chain(self.config.nameservers.names().map(|n| (n, "nameservers")))
            .chain(self.config.commands.names().map(|n| (n, "commands")));
        for (name, section) in names {
            if name == "all" {
                let path = format!("{section}.{name}");
                diagnostics.error(
                    self.mark(&path),
                    &path,
                    "\"all\" is reserved (it means every one on the command line); choose another name",
                );
            }
        }
    }

    fn references(&self, diagnostics: &mut Diagnostics) {
        let config = self.config;
        for (name, service) in config.services.iter() {
            if !service.daemon.is_empty() {
                let path = format!("services.{name}.daemon");
                self.refer(
                    diagnostics,
                    &path,
                    &service.daemon,
                    "daemon",
                    &config.daemons,
                );
            }
            for (i, ns) in service.nameservers.iter().enumerate() {
                let path = format!("services.{name}.nameservers[{i}]");
                self.refer(diagnostics, &path, ns, "name server", &config.nameservers);
            }
        }
        for (name, daemon) in config.daemons.iter() {
            for (i, ns) in daemon.nameservers.iter().enumerate() {
                let path = format!("daemons.{name}.nameservers[{i}]");
                self.refer(diagnostics, &path, ns, "name server", &config.nameservers);
            }
        }
        for (i, ns) in config.autolaunch.nameservers.iter().enumerate() {
            let path = format!("autolaunch.nameservers[{i}]");
            self.refer(diagnostics, &path, ns, "name server", &config.nameservers);
        }
        for (i, daemon) in config.autolaunch.daemons.iter().enumerate() {
            let path = format!("autolaunch.daemons[{i}]");
            self.refer(diagnostics, &path, daemon, "daemon", &config.daemons);
        }
        for (i, command) in config.autolaunch.commands.iter().enumerate() {
            let path = format!("autolaunch.commands[{i}]");
            self.refer(diagnostics, &path, command, "command", &config.commands);
        }
        if let Some(manager) = &config.manager {
            for (i, ns) in manager.nameservers.iter().enumerate() {
                let path = format!("manager.nameservers[{i}]");
                self.refer(diagnostics, &path, ns, "name server", &config.nameservers);
            }
        }
        for (name, command) in config.commands.iter() {
            if let Readiness::Name { nameserver, .. } = &command.ready
                && !nameserver.is_empty()
            {
                let path = format!("commands.{name}.ready.nameserver");
                self.refer(
                    diagnostics,
                    &path,
                    nameserver,
                    "name server",
                    &config.nameservers,
                );
            }
        }
    }

    /// On each name server, every registered name must be unique: services
    /// and daemons (which register themselves) share one namespace, and
    /// `Pyro.` names belong to Pyro itself.
    fn registrations(&self, diagnostics: &mut Diagnostics) {
        let config = self.config;
        // (name server, name) -> what registered it there first.
        let mut taken: HashMap<(&str, &str), String> = HashMap::new();
        let registering =
            config
                .daemons
                .iter()
                .map(|(name, d)| (name, &d.nameservers, format!("daemons.{name}"), "daemon"))
                .chain(config.services.iter().map(|(name, s)| {
                    (name, &s.nameservers, format!("services.{name}"), "service")
                }));
        for (name, nameservers, path, kind) in registering {
            let mut on: Vec<&str> = nameservers
                .iter()
                .map(String::as_str)
                .filter(|ns| config.nameservers.contains(ns))
                .collect();
            on.sort_unstable();
            on.dedup();
            if !on.is_empty() && name.starts_with("Pyro.") {
                diagnostics.error(
                    self.mark(&path),
                    &path,
                    format!("names starting with \"Pyro.\" are reserved for Pyro itself; rename this {kind}"),
                );
            }
            for ns_name in on {
                match taken.get(&(ns_name, name)) {
                    Some(first) => diagnostics.error(
                        self.mark(&path),
                        &path,
                        format!(
                            "{name:?} is registered twice on name server {ns_name:?} (also by {first}); the second registration would replace the first"
                        ),
                    ),
                    None => {
                        taken.insert((ns_name, name), path.clone());
                    }
                }
            }
        }
    }

    /// Two components may not listen on the same fixed host and port: an
    /// error when both are autolaunched, a warning otherwise (they cannot
    /// run at the same time).
    fn addresses(&self, diagnostics: &mut Diagnostics) {
        let config = self.config;
        let autolaunched_ns: HashSet<&str> = config
            .autolaunch
            .nameservers
            .iter()
            .map(String::as_str)
            .collect();
        let autolaunched_daemons: HashSet<&str> = config
            .autolaunch
            .daemons
            .iter()
            .map(String::as_str)
            .collect();
        let mut endpoints: Vec<Endpoint> = Vec::new();
        for (name, ns) in config.nameservers.iter() {
            endpoints.push(Endpoint {
                path: format!("nameservers.{name}"),
                port_path: format!("nameservers.{name}.ns_port"),
                what: format!("name server {name:?}"),
                host: ns.host.clone(),
                port: ns.ns_port,
                autolaunched: autolaunched_ns.contains(name),
            });
        }
        for (name, daemon) in config.daemons.iter() {
            if daemon.port == 0 || daemon.unixsocket.is_some() {
                continue;
            }
            endpoints.push(Endpoint {
                path: format!("daemons.{name}"),
                port_path: format!("daemons.{name}.port"),
                what: format!("daemon {name:?}"),
                host: daemon.host.clone(),
                port: daemon.port,
                autolaunched: autolaunched_daemons.contains(name),
            });
        }
        // Only endpoints on one port can clash: each is compared with the
        // earlier ones on its port, not with all.
        let mut by_port: HashMap<u16, Vec<&Endpoint>> = HashMap::new();
        for later in &endpoints {
            let on_port = by_port.entry(later.port).or_default();
            let earlier = on_port.iter().find(|e| e.clashes_with(later)).copied();
            on_port.push(later);
            let Some(earlier) = earlier else {
                continue;
            };
            let mark = self
                .marks
                .get(&later.port_path)
                .copied()
                .unwrap_or_else(|| self.mark(&later.path));
            let message = format!(
                "{} and {} both use {}:{}",
                earlier.what, later.what, later.host, later.port
            );
            if earlier.autolaunched && later.autolaunched {
                diagnostics.error(mark, &later.path, message);
            } else {
                diagnostics.warning(
                    mark,
                    &later.path,
                    format!("{message}; they cannot run at the same time"),
                );
            }
        }
        self.shared_unix_sockets(diagnostics);
    }

    fn shared_unix_sockets(&self, diagnostics: &mut Diagnostics) {
        let mut first_on: HashMap<&std::path::Path, &str> = HashMap::new();
        let daemons = self
            .config
            .daemons
            .iter()
            .filter_map(|(name, d)| d.unixsocket.as_deref().map(|s| (name, s)));
        for (name, socket) in daemons {
            if let Some(first) = first_on.get(socket) {
                let path = format!("daemons.{name}.unixsocket");
                diagnostics.error(
                    self.mark(&path),
                    &path,
                    format!("daemon {first:?} already listens on {}", socket.display()),
                );
            } else {
                first_on.insert(socket, name);
            }
        }
    }

    /// A plugin directory that does not exist finds no drivers: probably a
    /// typo, or a path meant relative to another folder.
    fn plugin_dirs(&self, diagnostics: &mut Diagnostics) {
        for (i, dir) in self.config.plugin_dirs.iter().enumerate() {
            if !dir.is_dir() {
                let path = format!("plugin_dirs[{i}]");
                diagnostics.warning(
                    self.mark(&path),
                    &path,
                    format!(
                        "{} is not a directory (relative paths are relative to this file's folder)",
                        dir.display()
                    ),
                );
            }
        }
    }

    /// The data directory must be a directory (or not exist yet: `up`
    /// creates it), and must not be where the lab's stored copy would
    /// overwrite this file: `<data_dir>/config.yaml` is written with every
    /// default filled in and no comments.
    fn data_dir(&self, source: Option<&Path>, diagnostics: &mut Diagnostics) {
        let Some(dir) = &self.config.data_dir else {
            return;
        };
        let path = "data_dir";
        if dir.exists() && !dir.is_dir() {
            diagnostics.error(
                self.mark(path),
                path,
                format!(
                    "{} is not a directory (relative paths are relative to this file's folder)",
                    dir.display()
                ),
            );
        } else if source.is_some_and(|source| same_file(&dir.join("config.yaml"), source)) {
            diagnostics.error(
                self.mark(path),
                path,
                format!(
                    "{} would hold the lab's stored configuration as config.yaml, over this very file: name another folder (e.g. `data_dir: .pyrolab-host`)",
                    dir.display()
                ),
            );
        }
    }

    /// A daemon without services is legal (it can still be pinged) but is
    /// usually a forgotten `daemon:` line.
    fn idle_daemons(&self, diagnostics: &mut Diagnostics) {
        for (name, _) in self.config.daemons.iter() {
            if !self.config.services.iter().any(|(_, s)| s.daemon == name) {
                let path = format!("daemons.{name}");
                diagnostics.warning(self.mark(&path), &path, "no service uses this daemon");
            }
        }
    }
}

struct Endpoint {
    path: String,
    port_path: String,
    what: String,
    host: String,
    port: u16,
    autolaunched: bool,
}

impl Endpoint {
    fn clashes_with(&self, other: &Endpoint) -> bool {
        self.port == other.port && same_host(&self.host, &other.host)
    }
}

/// Whether `a` and `b` are one file: the same path once both are
/// canonical (so `./lab/../config.yaml` is `config.yaml`), or the same text
/// when either cannot be canonicalized (a file not written yet).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Whether two bind addresses can collide: the same address (with
/// `localhost` meaning the loopback address), or either binding all
/// interfaces.
fn same_host(a: &str, b: &str) -> bool {
    let normal = |host: &str| match host {
        "localhost" | "127.0.0.1" | "::1" => "loopback".to_owned(),
        other => other.to_ascii_lowercase(),
    };
    let wildcard = |host: &str| matches!(host, "0.0.0.0" | "::" | "");
    wildcard(a) || wildcard(b) || normal(a) == normal(b)
}
