//! The lab's components (their kinds, ids and states) and what `ps` shows
//! of them. [`LabStatus`] is both the control protocol's reply and `ps
//! --json`'s output, a public format (docs/cli-json.md): fields may be
//! added, never renamed, removed or retyped.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The three kinds of component.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A name server (`run nameserver NAME`); started first, stopped last.
    Nameserver,
    /// A daemon with its services (`run daemon NAME`).
    Daemon,
    /// Any other program the manager runs (`commands:`): a PyroLab Python
    /// daemon script, say. Started after the daemons, stopped first.
    Command,
}

impl Kind {
    /// The order kinds start in (and, reversed, stop in): name servers
    /// first, which daemons register with; commands last, which may
    /// register with either.
    pub const START_ORDER: [Kind; 3] = [Kind::Nameserver, Kind::Daemon, Kind::Command];

    /// `nameserver`, `daemon` or `command`, as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Nameserver => "nameserver",
            Kind::Daemon => "daemon",
            Kind::Command => "command",
        }
    }

    /// `name server`, `daemon` or `command`, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Nameserver => "name server",
            Kind::Daemon => "daemon",
            Kind::Command => "command",
        }
    }
}

/// A component: a name server or a daemon, by name. In the control
/// protocol, `{"kind": "daemon", "name": "lockable"}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ComponentId {
    /// Its kind (name servers sort first: they start first).
    pub kind: Kind,
    /// Its name in the configuration.
    pub name: String,
}

impl std::fmt::Display for ComponentId {
    /// `name server production`, `daemon lockable`: for messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.describe(), self.name)
    }
}

/// Where a component is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Started, not yet ready.
    Starting,
    /// Ready: serving (and, for a daemon, registered).
    Running,
    /// Crashed; starts again after a back-off delay.
    Restarting,
    /// Asked to stop; finishing calls in progress.
    Stopping,
    /// Stopped on request (or never started).
    Stopped,
    /// Gave up: it failed to start, or kept crashing. `last_error` says why.
    Failed,
}

impl State {
    /// The state as `ps` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Restarting => "restarting",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Failed => "failed",
        }
    }

    /// Whether the component has settled: ready, or given up on.
    pub fn settled(self) -> bool {
        matches!(self, State::Running | State::Stopped | State::Failed)
    }
}

/// Everything `ps` shows.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LabStatus {
    /// The manager itself.
    pub manager: ManagerStatus,
    /// Name servers first, then daemons, each by name.
    pub components: Vec<ComponentStatus>,
    /// The services of the managed daemons.
    pub services: Vec<ServiceStatus>,
}

/// The manager process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ManagerStatus {
    /// Its process id.
    pub pid: u32,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// When it started (RFC 3339, UTC).
    pub started: String,
    /// Seconds since it started.
    pub uptime_s: f64,
    /// Whether it is still starting the autolaunched components.
    pub starting: bool,
    /// Its log file.
    pub log: PathBuf,
    /// The web monitor's URL, when the configuration has one.
    #[serde(default)]
    pub monitor: Option<String>,
    /// Why the web monitor is not running, when it failed to start.
    #[serde(default)]
    pub monitor_error: Option<String>,
}

/// One name server, daemon or command.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComponentStatus {
    /// Its name in the configuration.
    pub name: String,
    /// `nameserver`, `daemon` or `command`.
    pub kind: Kind,
    /// Where it is in its life.
    pub status: State,
    /// Its process id while it runs.
    pub pid: Option<u32>,
    /// Seconds since its current process started.
    pub uptime_s: Option<f64>,
    /// How often it was restarted after crashing.
    pub restarts: u32,
    /// The address clients use (`host:port`), once it is ready.
    pub address: Option<String>,
    /// Why it last crashed or failed.
    pub last_error: Option<String>,
    /// Whether the configuration autolaunches it.
    pub autolaunch: bool,
    /// Its log file.
    pub log: PathBuf,
}

/// One service of a managed daemon.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Its name: the object id, and the name it is registered under.
    pub name: String,
    /// The daemon serving it (or the command, for a service a command
    /// registered: its readiness by name).
    pub daemon: String,
    /// Its URI while its daemon runs.
    pub uri: Option<String>,
    /// The name servers it is registered with.
    pub registered_with: Vec<String>,
    /// Why a registration failed (the daemon keeps trying): `"NS: reason"`.
    pub registration_errors: Vec<String>,
    /// The name servers it could not register with, and why: the same as
    /// `registration_errors`, one object each.
    #[serde(default)]
    pub registration_failures: Vec<RegistrationFailure>,
    /// Who holds its lock (lockable daemons).
    pub lock_holder: Option<String>,
}

/// A name a daemon could not register with a name server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RegistrationFailure {
    /// The name server's name in the configuration.
    pub nameserver: String,
    /// Why (the daemon keeps trying every 2 s).
    pub error: String,
}

/// A running daemon that registered none of its services with any of
/// their name servers: the lab is not usable by name.
#[derive(Clone, Debug, PartialEq)]
pub struct RegisteredNowhere {
    /// The daemon.
    pub daemon: String,
    /// Whether the configuration autolaunches it.
    pub autolaunch: bool,
    /// Its services that have name servers to register with.
    pub services: Vec<String>,
    /// The name servers they could not register with.
    pub nameservers: Vec<String>,
    /// The first failure.
    pub first: RegistrationFailure,
}

impl std::fmt::Display for RegisteredNowhere {
    /// `daemon D could not register any of its services (S, T) with NS:
    /// reason; the lab cannot be used by name (...)`, one line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "daemon {} could not register any of its services ({}) with ",
            self.daemon,
            self.services.join(", ")
        )?;
        if self.nameservers.len() == 1 {
            write!(f, "{}: {}", self.first.nameserver, self.first.error)?;
        } else {
            write!(
                f,
                "{} ({}: {})",
                self.nameservers.join(", "),
                self.first.nameserver,
                self.first.error
            )?;
        }
        write!(
            f,
            "; the lab cannot be used by name (the daemon keeps trying every 2 s; `pyrolab-host down` stops the lab)"
        )
    }
}

impl LabStatus {
    /// The running daemons that registered none of their services: each
    /// has a service with a name server to register with, and every such
    /// registration failed. A daemon whose services list no name server
    /// is not one of them, nor is one that registered some of them.
    /// [`LabStatus::registered_nowhere`], of the autolaunched daemons only:
    /// what makes `up` fail, since the lab cannot be used by name.
    pub fn autolaunched_registered_nowhere(&self) -> Vec<RegisteredNowhere> {
        self.registered_nowhere()
            .into_iter()
            .filter(|daemon| daemon.autolaunch)
            .collect()
    }

    pub fn registered_nowhere(&self) -> Vec<RegisteredNowhere> {
        self.components
            .iter()
            .filter(|c| c.kind == Kind::Daemon && c.status == State::Running)
            .filter_map(|daemon| {
                let services: Vec<&ServiceStatus> = self
                    .services
                    .iter()
                    .filter(|s| s.daemon == daemon.name)
                    .filter(|s| {
                        !s.registered_with.is_empty() || !s.registration_failures.is_empty()
                    })
                    .collect();
                if services.iter().any(|s| !s.registered_with.is_empty()) {
                    return None;
                }
                let first = services.first()?.registration_failures.first()?.clone();
                let nameservers: std::collections::BTreeSet<&str> = services
                    .iter()
                    .flat_map(|s| &s.registration_failures)
                    .map(|f| f.nameserver.as_str())
                    .collect();
                Some(RegisteredNowhere {
                    daemon: daemon.name.clone(),
                    autolaunch: daemon.autolaunch,
                    services: services.iter().map(|s| s.name.clone()).collect(),
                    nameservers: nameservers.into_iter().map(str::to_owned).collect(),
                    first,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daemon(name: &str, status: State) -> ComponentStatus {
        ComponentStatus {
            name: name.to_owned(),
            kind: Kind::Daemon,
            status,
            pid: Some(1),
            uptime_s: Some(1.0),
            restarts: 0,
            address: None,
            last_error: None,
            autolaunch: true,
            log: PathBuf::new(),
        }
    }

    fn service(name: &str, daemon: &str, registered: &[&str], failed: &[&str]) -> ServiceStatus {
        ServiceStatus {
            name: name.to_owned(),
            daemon: daemon.to_owned(),
            uri: None,
            registered_with: registered.iter().map(|s| s.to_string()).collect(),
            registration_errors: failed.iter().map(|ns| format!("{ns}: down")).collect(),
            registration_failures: failed
                .iter()
                .map(|ns| RegistrationFailure {
                    nameserver: ns.to_string(),
                    error: format!("{ns} is down"),
                })
                .collect(),
            lock_holder: None,
        }
    }

    fn lab(components: Vec<ComponentStatus>, services: Vec<ServiceStatus>) -> LabStatus {
        LabStatus {
            manager: ManagerStatus {
                pid: 1,
                data_dir: PathBuf::new(),
                started: String::new(),
                uptime_s: 0.0,
                starting: false,
                log: PathBuf::new(),
                monitor: None,
                monitor_error: None,
            },
            components,
            services,
        }
    }

    #[test]
    fn only_daemons_that_registered_none_of_their_services_are_registered_nowhere() {
        let status = lab(
            vec![
                daemon("none", State::Running),
                daemon("some", State::Running),
                daemon("unnamed", State::Running),
                daemon("stopped", State::Stopped),
            ],
            vec![
                service("a", "none", &[], &["ns1"]),
                service("b", "none", &[], &["ns2", "ns1"]),
                service("quiet", "none", &[], &[]),
                service("c", "some", &["ns1"], &["ns2"]),
                service("d", "some", &[], &["ns2"]),
                service("e", "unnamed", &[], &[]),
                service("f", "stopped", &[], &[]),
            ],
        );
        let nowhere = status.registered_nowhere();
        assert_eq!(nowhere.len(), 1, "{nowhere:?}");
        let none = &nowhere[0];
        assert_eq!(none.daemon, "none");
        assert_eq!(none.services, ["a", "b"]);
        assert_eq!(none.nameservers, ["ns1", "ns2"]);
        assert_eq!(
            none.to_string(),
            "daemon none could not register any of its services (a, b) with ns1, ns2 (ns1: ns1 is down); the lab cannot be used by name (the daemon keeps trying every 2 s; `pyrolab-host down` stops the lab)"
        );
        let one = lab(
            vec![daemon("d", State::Running)],
            vec![service("s", "d", &[], &["production"])],
        );
        assert!(
            one.registered_nowhere()[0]
                .to_string()
                .starts_with("daemon d could not register any of its services (s) with production: production is down; ")
        );
    }
}
