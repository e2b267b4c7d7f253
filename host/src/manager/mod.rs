//! The manager of `pyrolab-host up`: runs the lab's components as child
//! processes and keeps them running.
//!
//! # Lifecycle
//!
//! [`run`] takes the instance lock (one manager per data directory),
//! cleans up after a killed predecessor, and opens the control socket.
//! A start-up thread starts the autolaunched name servers, waits until
//! they are ready, then the autolaunched daemons; meanwhile the control
//! socket is answered (changes wait for the start-up). Each component has
//! a supervisor that restarts it when it crashes. `down` or SIGTERM /
//! SIGINT stop the daemons, then the name servers; then the manager exits.
//!
//! # Layout
//!
//! - `mod.rs`: the [`Manager`] and its lifecycle: start-up, starting and
//!   stopping one component, shutting down.
//! - `component.rs`: one component's supervisor: its child process, its
//!   output, restarts with back-off.
//! - `foreign.rs`: components of kind `command` (programs not our own):
//!   their process, readiness observed from outside.
//! - `nameservers.rs`: how the daemons follow their name servers.
//! - `commands.rs`: what the manager does for each CLI command.
//! - `protocol.rs`: the control protocol: requests and replies, versioned.
//! - `control.rs`: the control socket that carries them.
//! - `reload.rs`: what a changed configuration means for the running lab
//!   (a plan), and carrying it out.
//! - `lab_status.rs`: the lab's status, from what the manager knows.
//! - `web_monitor.rs`: the web monitor the manager serves.
//! - `management.rs`: the management object the other hosts of the lab
//!   call (`manager:`).
//! - `instance.rs`: one manager per data directory; cleaning up after a
//!   killed one.
//! - `notify.rs`: systemd readiness notification.
//! - `process.rs`: signals, exit descriptions.
//!
//! What `ps` shows and the log files are the lab's, not the manager's
//! alone (the web monitor and `logs` read them too): see [`crate::lab`].
//!
//! # Files (in the data directory)
//!
//! - `run/manager.pid`: the instance lock, holding the manager's pid.
//! - `run/control.sock`: the control socket.
//! - `run/config.yaml`: the configuration the components run with: the
//!   stored configuration as of `up` or the last `reload`.
//! - `run/children.json`: the components' pids.
//! - `logs/manager.log`, `logs/KIND-NAME.log`: the logs.

mod commands;
mod component;
pub mod control;
mod foreign;
mod instance;
mod lab_status;
mod liveness;
pub mod management;
mod nameservers;
mod notify;
mod process;
pub mod protocol;
mod reload;
mod web_monitor;

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use crate::config::{ConfigError, ConfigStore, LaunchConfig};
use crate::data_dir::DataDir;
use crate::lab::logfile::{LogFile, log_path};
use crate::lab::status::{ComponentId, Kind, LabStatus, State};
use crate::sync::{self, LockUnpoisoned};
use component::Slot;
pub use component::{CRASH_LOOP_LIMIT, STABLE_AFTER};
pub use instance::{InstanceLock, LockError};
use nameservers::failed_nameserver;
use reload::fingerprint;

/// How long a component may take to become ready before it is killed and
/// counted as failed. Generous: a driver may take a while to open its
/// instrument.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a component gets to stop gracefully by default.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How the manager runs its children.
pub struct Options {
    /// The data directory.
    pub data_dir: DataDir,
    /// The `pyrolab-host` executable the children run.
    pub exe: PathBuf,
    /// Global options for the children (`--data-dir`, `--plugin-dir`,
    /// `-v`), before `run KIND NAME`.
    pub child_args: Vec<OsString>,
    /// The `--plugin-dir` directories (also in `child_args`).
    pub plugin_dirs: Vec<PathBuf>,
}

/// The manager.
pub struct Manager {
    options: Options,
    lab: Mutex<Lab>,
    /// Notified on every change of `lab` and every child exit.
    changed: Condvar,
    started: SystemTime,
    started_at: Instant,
    shutting_down: AtomicBool,
    /// Control requests being answered; the manager exits only once they
    /// are (`down` is answered after the lab stopped).
    requests: AtomicUsize,
    /// The web monitor (`monitor:` in the configuration), or why it is not
    /// running.
    monitor: Mutex<Option<Result<crate::monitor::Monitor, String>>>,
    /// The management object, while it is served (`manager:`).
    management: Mutex<Option<management::Management>>,
}

/// What the manager knows of the lab, behind one lock: every change is
/// announced on `Manager::changed`.
struct Lab {
    /// The configuration as of `up` or the last `reload`.
    config: LaunchConfig,
    slots: std::collections::BTreeMap<ComponentId, Slot>,
    /// Still starting the autolaunched components.
    starting: bool,
    /// Every component stopped: the manager is about to exit.
    done: bool,
}

/// Why the manager could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Another manager runs for the data directory, or its lock cannot be
    /// taken.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// The stored configuration cannot be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No configuration is stored.
    #[error(
        "no configuration is stored in {} (store one with `pyrolab-host config update FILE`, or give `up --config FILE`)",
        .path.display()
    )]
    NoConfig {
        /// Where it would be.
        path: PathBuf,
    },
    /// The run directory, the control socket or a thread.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// SIGTERM and SIGINT could not be caught.
    #[error("cannot install the signal handler")]
    Signal(#[source] ctrlc::Error),
}

/// Runs the manager in this process until `down` or SIGTERM / SIGINT.
/// `on_started` sees the lab's status once the autolaunched components
/// have started (or failed to).
pub fn run(
    options: Options,
    on_started: impl FnOnce(&LabStatus) + Send + 'static,
) -> Result<(), StartError> {
    let _lock = InstanceLock::acquire(&options.data_dir)?;
    tracing::info!(
        "manager (pid {}) starting for {}",
        std::process::id(),
        options.data_dir.root().display()
    );
    instance::clean_up_stale_children(&options.data_dir);
    let store = ConfigStore::new(&options.data_dir);
    let config = store.load()?.ok_or_else(|| StartError::NoConfig {
        path: store.path().to_owned(),
    })?;
    let manager = Arc::new(Manager {
        options,
        lab: Mutex::new(Lab {
            config: config.clone(),
            slots: Default::default(),
            starting: true,
            done: false,
        }),
        changed: Condvar::new(),
        started: SystemTime::now(),
        started_at: Instant::now(),
        shutting_down: AtomicBool::new(false),
        requests: AtomicUsize::new(0),
        monitor: Mutex::new(None),
        management: Mutex::new(None),
    });
    manager.write_active_config(&config)?;
    let listener = control::bind(&manager.options.data_dir)?;
    let on_signal = Arc::clone(&manager);
    ctrlc::set_handler(move || {
        let manager = Arc::clone(&on_signal);
        thread::spawn(move || {
            tracing::info!("signalled: stopping the lab");
            manager.shut_down(DEFAULT_STOP_TIMEOUT);
        });
    })
    .map_err(StartError::Signal)?;
    let starter = Arc::clone(&manager);
    thread::Builder::new()
        .name("startup".to_owned())
        .spawn(move || {
            starter.start_lab();
            on_started(&starter.status());
        })?;
    manager.start_monitor(&config);
    manager.start_management();
    manager.serve_control(listener);
    // Before the manager goes: the monitor looks at it, and the other
    // hosts stop finding it.
    manager.stop_management();
    manager.stop_monitor();
    instance::forget_children(&manager.options.data_dir);
    let _ = std::fs::remove_file(control::socket_path(&manager.options.data_dir));
    tracing::info!("manager stopped");
    Ok(())
}

impl Manager {
    fn lab(&self) -> MutexGuard<'_, Lab> {
        self.lab.lock_unpoisoned()
    }

    fn active_config_path(&self) -> PathBuf {
        self.options.data_dir.run_dir().join("config.yaml")
    }

    /// Writes the configuration the children read (beside, then renamed
    /// over: a child starting meanwhile reads the old or the new one).
    fn write_active_config(&self, config: &LaunchConfig) -> std::io::Result<()> {
        let path = self.active_config_path();
        let temporary = path.with_extension("yaml.tmp");
        std::fs::write(&temporary, crate::config::to_yaml(config))?;
        std::fs::rename(&temporary, &path)
    }

    fn record_children(&self, lab: &Lab) {
        let children: Vec<instance::ChildRecord> = lab
            .slots
            .iter()
            .filter_map(|(id, slot)| {
                slot.pid.map(|pid| instance::ChildRecord {
                    kind: id.kind,
                    name: id.name.clone(),
                    pid,
                    command_line: lab
                        .config
                        .commands
                        .get(&id.name)
                        .filter(|_| id.kind == Kind::Command)
                        .map(foreign::command_line),
                })
            })
            .collect();
        instance::record_children(&self.options.data_dir, &children);
    }

    /// Starts the autolaunched name servers, waits for them, then the
    /// autolaunched daemons.
    fn start_lab(self: &Arc<Self>) {
        let autolaunched = self.lab().config.autolaunch.components();
        for kind in Kind::START_ORDER {
            let ids: Vec<ComponentId> = autolaunched
                .iter()
                .filter(|id| id.kind == kind)
                .cloned()
                .collect();
            for id in &ids {
                if let Err(err) = self.start_component(id, true) {
                    tracing::error!("{id}: {err}");
                }
            }
            self.wait_settled(&ids);
        }
        let status = self.status();
        self.lab().starting = false;
        self.changed.notify_all();
        self.refresh_monitor();
        announce_started(&status);
    }

    /// Waits until each of `ids` is running, stopped or failed.
    fn wait_settled(&self, ids: &[ComponentId]) {
        // A component is killed when not ready within its ready timeout;
        // this only guards against waiting forever for a stuck supervisor.
        let patience = {
            let lab = self.lab();
            let longest = ids
                .iter()
                .map(|id| component::ready_timeout(&lab.config, id));
            longest.max().unwrap_or(READY_TIMEOUT) + Duration::from_secs(10)
        };
        let _ = sync::wait_until(&self.changed, self.lab(), patience, |lab| {
            ids.iter()
                .all(|id| lab.slots.get(id).is_none_or(|s| s.state.settled()))
        });
    }

    /// Starts a component of the configuration (it must be stopped or
    /// failed).
    fn start_component(self: &Arc<Self>, id: &ComponentId, fail_fast: bool) -> Result<(), String> {
        let mut lab = self.lab();
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err("the lab is shutting down".to_owned());
        }
        let fingerprint = fingerprint(&lab.config, id)
            .ok_or_else(|| format!("there is no {id} in the configuration"))?;
        if !lab.slots.contains_key(id) {
            let path = log_path(&self.options.data_dir, id.kind, &id.name);
            let log = LogFile::shared(&path)
                .map_err(|err| format!("cannot open its log {}: {err}", path.display()))?;
            lab.slots
                .insert(id.clone(), Slot::new(fingerprint.clone(), log, path));
        }
        if !lab.slots[id].startable() {
            return Err(format!("{id} is already {}", lab.slots[id].state.as_str()));
        }
        if let Some(reason) = failed_nameserver(&lab, id) {
            // Its name server's address may well be another lab's name
            // server (a port in use): registering there would take that
            // lab's names.
            let slot = lab.slots.get_mut(id).expect("inserted above");
            let error = format!("not started: {reason}");
            slot.state = State::Failed;
            slot.last_error = Some(error.clone());
            slot.note(&error);
            self.changed.notify_all();
            return Err(error);
        }
        let slot = lab.slots.get_mut(id).expect("inserted above");
        if let Some(finished) = slot.supervisor.take() {
            let _ = finished.join();
        }
        slot.fingerprint = fingerprint;
        slot.want_running = true;
        slot.generation += 1;
        slot.state = State::Starting;
        slot.last_error = None;
        let generation = slot.generation;
        let manager = Arc::clone(self);
        let supervised = id.clone();
        let handle = thread::Builder::new()
            .name(format!("supervise {}", id.name))
            .spawn(move || manager.supervise(&supervised, generation, fail_fast))
            .map_err(|err| format!("cannot start its supervisor: {err}"))?;
        slot.supervisor = Some(handle);
        self.changed.notify_all();
        Ok(())
    }

    /// Stops a component: SIGTERM, then SIGKILL after `timeout`.
    fn stop_component(&self, id: &ComponentId, timeout: Duration) -> Result<(), String> {
        let (supervisor, pid) = {
            let mut lab = self.lab();
            let slot = lab
                .slots
                .get_mut(id)
                .ok_or_else(|| format!("{id} is not managed (it was never started)"))?;
            slot.want_running = false;
            slot.generation += 1;
            let pid = slot.pid;
            match pid {
                Some(pid) => {
                    slot.note(&format!(
                        "stopping (SIGTERM; killed after {:.1} s)",
                        timeout.as_secs_f64()
                    ));
                    slot.state = State::Stopping;
                    process::kill(pid, process::Signal::Term);
                }
                None => {
                    if slot.state != State::Failed {
                        slot.state = State::Stopped;
                    }
                }
            }
            self.changed.notify_all();
            (slot.supervisor.take(), pid)
        };
        let Some(supervisor) = supervisor else {
            return Ok(());
        };
        let deadline = Instant::now() + timeout;
        let mut lab = self.lab();
        let ended = |lab: &Lab| {
            lab.slots
                .get(id)
                .is_none_or(|slot| matches!(slot.state, State::Stopped | State::Failed))
        };
        while !ended(&lab) && !supervisor.is_finished() && Instant::now() < deadline {
            lab = sync::wait_a_while(&self.changed, lab, Duration::from_millis(50));
        }
        if !ended(&lab) && !supervisor.is_finished() {
            if let (Some(slot), Some(pid)) = (lab.slots.get(id), pid) {
                slot.note(&format!(
                    "did not stop within {:.1} s; killing it",
                    timeout.as_secs_f64()
                ));
                tracing::warn!("{id} did not stop within {timeout:?}; killing it");
                process::kill(pid, process::Signal::Kill);
            }
        }
        drop(lab);
        let _ = supervisor.join();
        let mut lab = self.lab();
        if let Some(slot) = lab.slots.get_mut(id) {
            slot.state = State::Stopped;
        }
        self.changed.notify_all();
        Ok(())
    }

    /// Stops every component (commands and daemons first, so they can
    /// unregister from the name servers), then lets the manager exit.
    fn shut_down(&self, timeout: Duration) {
        if self.shutting_down.swap(true, Ordering::SeqCst) {
            drop(sync::wait_for(&self.changed, self.lab(), |lab| lab.done));
            return;
        }
        notify::notify("STOPPING=1");
        for kind in Kind::START_ORDER.into_iter().rev() {
            let ids: Vec<ComponentId> = self
                .lab()
                .slots
                .keys()
                .filter(|id| id.kind == kind)
                .cloned()
                .collect();
            thread::scope(|scope| {
                for id in &ids {
                    scope.spawn(move || self.stop_component(id, timeout));
                }
            });
        }
        self.lab().done = true;
        self.changed.notify_all();
        // Wake the control loop so it sees `done`.
        let _ =
            std::os::unix::net::UnixStream::connect(control::socket_path(&self.options.data_dir));
    }
}

/// Says how the start-up went, in the log and to systemd (`READY=1`, with
/// a one-line `STATUS=`).
fn announce_started(status: &LabStatus) {
    let failed: Vec<&str> = status
        .components
        .iter()
        .filter(|c| c.status != State::Running)
        .map(|c| c.name.as_str())
        .collect();
    let mut summary = if failed.is_empty() {
        format!("{} components running", status.components.len())
    } else {
        format!("not running: {}", failed.join(", "))
    };
    let nowhere = status.autolaunched_registered_nowhere();
    for daemon in &nowhere {
        tracing::error!("{daemon}");
    }
    if !nowhere.is_empty() {
        let names: Vec<&str> = nowhere.iter().map(|d| d.daemon.as_str()).collect();
        summary.push_str(&format!(
            "; registered none of their services: {}",
            names.join(", ")
        ));
    }
    tracing::info!("lab started: {summary}");
    notify::notify(&format!("READY=1\nSTATUS={summary}"));
}
