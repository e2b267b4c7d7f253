//! What `ps` shows: the lab as the manager sees it. The same types are the
//! control socket's answer and `ps --json`'s output (docs/cli-json.md).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The two kinds of component.
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
}

impl Kind {
    /// `nameserver` or `daemon`, as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Nameserver => "nameserver",
            Kind::Daemon => "daemon",
        }
    }

    /// `name server` or `daemon`, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Nameserver => "name server",
            Kind::Daemon => "daemon",
        }
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

/// One name server or daemon.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ComponentStatus {
    /// Its name in the configuration.
    pub name: String,
    /// `nameserver` or `daemon`.
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
    /// The daemon serving it.
    pub daemon: String,
    /// Its URI while its daemon runs.
    pub uri: Option<String>,
    /// The name servers it is registered with.
    pub registered_with: Vec<String>,
    /// Why a registration failed (the daemon keeps trying).
    pub registration_errors: Vec<String>,
    /// Who holds its lock (lockable daemons).
    pub lock_holder: Option<String>,
}
