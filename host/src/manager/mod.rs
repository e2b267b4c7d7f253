//! The manager of `pyrolab-host up`: runs the lab's components as child
//! processes and keeps them running.
//!
//! # Layout
//!
//! - `mod.rs`: the [`Manager`]: start-up, stop, reload, status.
//! - `component.rs`: one component's supervisor: its child process, its
//!   output, restarts with back-off.
//! - `control.rs`: the control socket the CLI talks to.
//! - `protocol.rs`: what the CLI asks and the manager answers on it.
//! - `reload.rs`: what a changed configuration means for the running lab
//!   (a plan), and carrying it out.
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

mod component;
pub mod control;
mod instance;
mod notify;
mod process;
pub mod protocol;
mod reload;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;

use crate::config::{ConfigStore, LaunchConfig};
use crate::data_dir::DataDir;
use crate::lab::logfile::{LogFile, log_path, manager_log_path};
use crate::lab::status::{
    ComponentId, ComponentStatus, Kind, LabStatus, ManagerStatus, RegistrationFailure,
    ServiceStatus, State,
};
use component::Slot;
pub use component::{CRASH_LOOP_LIMIT, STABLE_AFTER};
pub use instance::{InstanceLock, LockError};
use protocol::{Reply, Request};
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
}

struct Lab {
    config: LaunchConfig,
    slots: std::collections::BTreeMap<ComponentId, Slot>,
    /// Still starting the autolaunched components.
    starting: bool,
    /// Every component stopped: the manager is about to exit.
    done: bool,
}

/// Runs the manager in this process until `down` or SIGTERM / SIGINT.
/// `on_started` sees the lab's status once the autolaunched components
/// have started (or failed to).
pub fn run(
    options: Options,
    on_started: impl FnOnce(&LabStatus) + Send + 'static,
) -> anyhow::Result<()> {
    let _lock = InstanceLock::acquire(&options.data_dir)?;
    tracing::info!(
        "manager (pid {}) starting for {}",
        std::process::id(),
        options.data_dir.root().display()
    );
    instance::clean_up_stale_children(&options.data_dir);
    let store = ConfigStore::new(&options.data_dir);
    let config = store.load()?.with_context(|| {
        format!(
            "no configuration is stored in {} (store one with `pyrolab-host config update FILE`, or give `up --config FILE`)",
            store.path().display()
        )
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
    .context("cannot install the signal handler")?;
    let starter = Arc::clone(&manager);
    thread::Builder::new()
        .name("startup".to_owned())
        .spawn(move || {
            starter.start_lab();
            on_started(&starter.status());
        })?;
    manager.start_monitor(&config);
    manager.serve_control(listener);
    // Stop the monitor before the manager goes (it looks at the manager),
    // outside the lock its poller may be waiting for.
    let monitor = manager
        .monitor
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take();
    drop(monitor);
    instance::forget_children(&manager.options.data_dir);
    let _ = std::fs::remove_file(control::socket_path(&manager.options.data_dir));
    tracing::info!("manager stopped");
    Ok(())
}

impl Manager {
    fn lab(&self) -> MutexGuard<'_, Lab> {
        self.lab.lock().unwrap_or_else(|p| p.into_inner())
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
                })
            })
            .collect();
        instance::record_children(&self.options.data_dir, &children);
    }

    /// Starts the web monitor, if the configuration has a `monitor:`
    /// section. A monitor that cannot start (its port is taken) is
    /// reported in the status; the lab runs all the same.
    fn start_monitor(self: &Arc<Self>, config: &LaunchConfig) {
        let Some(settings) = &config.monitor else {
            return;
        };
        let host = crate::net::resolve_host(&settings.host);
        let listen = if host.contains(':') {
            format!("[{host}]:{}", settings.port)
        } else {
            format!("{host}:{}", settings.port)
        };
        let nameservers = config
            .nameservers
            .iter()
            .map(|(name, ns)| crate::monitor::NameServerTarget {
                name: name.to_owned(),
                host: crate::net::resolve_host(&ns.host),
                port: ns.ns_port,
            })
            .collect();
        let manager = Arc::downgrade(self);
        let started = crate::monitor::Monitor::start(crate::monitor::Settings {
            listen: listen.clone(),
            polling: Duration::from_secs_f64(settings.polling),
            nameservers,
            lab: Some(Box::new(move || manager.upgrade().map(|m| m.status()))),
            data_dir: Some(self.options.data_dir.clone()),
        })
        .map_err(|err| format!("the web monitor cannot listen on {listen}: {err}"));
        match &started {
            Ok(monitor) => tracing::info!("web monitor at {}", monitor.url()),
            Err(err) => tracing::error!("{err}"),
        }
        *self.monitor.lock().unwrap_or_else(|p| p.into_inner()) = Some(started);
    }

    /// Starts the autolaunched name servers, waits for them, then the
    /// autolaunched daemons.
    fn start_lab(self: &Arc<Self>) {
        let autolaunch = self.lab().config.autolaunch.clone();
        for (kind, names) in [
            (Kind::Nameserver, &autolaunch.nameservers),
            (Kind::Daemon, &autolaunch.daemons),
        ] {
            let ids: Vec<ComponentId> = names
                .iter()
                .map(|name| ComponentId {
                    kind,
                    name: name.clone(),
                })
                .collect();
            for id in &ids {
                if let Err(err) = self.start_component(id, true) {
                    tracing::error!("{id}: {err}");
                }
            }
            self.wait_settled(&ids);
        }
        let status = self.status();
        let failed: Vec<&str> = status
            .components
            .iter()
            .filter(|c| c.status != State::Running)
            .map(|c| c.name.as_str())
            .collect();
        self.lab().starting = false;
        self.changed.notify_all();
        if let Some(Ok(monitor)) = &*self.monitor.lock().unwrap_or_else(|p| p.into_inner()) {
            monitor.look_now();
        }
        let mut summary = if failed.is_empty() {
            format!("{} components running", status.components.len())
        } else {
            format!("not running: {}", failed.join(", "))
        };
        let nowhere: Vec<_> = status
            .registered_nowhere()
            .into_iter()
            .filter(|d| d.autolaunch)
            .collect();
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

    /// Name server `ns` is ready again: asks the daemons that register
    /// with it to do so now, rather than at their next check.
    fn nameserver_ready(&self, lab: &mut Lab, ns: &str) {
        let config = &lab.config;
        for (id, slot) in lab.slots.iter_mut() {
            if id.kind == Kind::Daemon && nameservers_of(config, &id.name).contains(ns) {
                if let Some(stdin) = &mut slot.stdin {
                    use std::io::Write;
                    let _ = writeln!(stdin, "{}", crate::supervised::REGISTER_NOW);
                }
            }
        }
    }

    /// Name server `ns` stopped or crashed: whatever the daemons had
    /// registered with it is gone (with memory storage), until they
    /// register again.
    fn nameserver_gone(&self, lab: &mut Lab, ns: &str) {
        for (id, slot) in lab.slots.iter_mut() {
            if id.kind != Kind::Daemon {
                continue;
            }
            for outcome in slot.registrations.iter_mut().filter(|r| r.nameserver == ns) {
                outcome.error = Some(format!("name server {ns} is not running"));
            }
        }
    }

    /// Waits (a few seconds at most) until the running daemons that use
    /// name server `ns` report their names registered there.
    fn wait_registered(&self, ns: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut lab = self.lab();
        loop {
            let pending = lab.slots.iter().any(|(id, slot)| {
                id.kind == Kind::Daemon
                    && slot.ready
                    && slot
                        .registrations
                        .iter()
                        .any(|r| r.nameserver == ns && r.error.is_some())
            });
            let left = deadline.saturating_duration_since(Instant::now());
            if !pending || left.is_zero() {
                return;
            }
            lab = self
                .changed
                .wait_timeout(lab, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits until each of `ids` is running, stopped or failed.
    fn wait_settled(&self, ids: &[ComponentId]) {
        // A component is killed when not ready within READY_TIMEOUT; this
        // only guards against waiting forever for a stuck supervisor.
        let deadline = Instant::now() + READY_TIMEOUT + Duration::from_secs(10);
        let mut lab = self.lab();
        while ids
            .iter()
            .any(|id| lab.slots.get(id).is_some_and(|s| !s.state.settled()))
        {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            lab = self
                .changed
                .wait_timeout(lab, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
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
            lab = self
                .changed
                .wait_timeout(lab, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner())
                .0;
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

    /// Stops every component (daemons first, so they can unregister from
    /// the name servers), then lets the manager exit.
    fn shut_down(&self, timeout: Duration) {
        if self.shutting_down.swap(true, Ordering::SeqCst) {
            let mut lab = self.lab();
            while !lab.done {
                lab = self.changed.wait(lab).unwrap_or_else(|p| p.into_inner());
            }
            return;
        }
        notify::notify("STOPPING=1");
        for kind in [Kind::Daemon, Kind::Nameserver] {
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

    /// The lab's status now.
    fn status(&self) -> LabStatus {
        let lab = self.lab();
        let components = lab
            .slots
            .iter()
            .map(|(id, slot)| ComponentStatus {
                name: id.name.clone(),
                kind: id.kind,
                status: slot.state,
                pid: slot.pid,
                uptime_s: slot.since.map(|(_, at)| at.elapsed().as_secs_f64()),
                restarts: slot.restarts,
                address: slot.address.clone().filter(|_| slot.pid.is_some()),
                last_error: slot.last_error.clone(),
                autolaunch: lab.config.autolaunch.includes(id),
                log: slot.log_path.clone(),
            })
            .collect();
        let mut services = Vec::new();
        for (id, slot) in lab.slots.iter().filter(|(id, _)| id.kind == Kind::Daemon) {
            let running = slot.pid.is_some() && slot.ready;
            for (name, _) in lab
                .config
                .services
                .iter()
                .filter(|(_, s)| s.daemon == id.name)
            {
                let outcomes = slot.registrations.iter().filter(|r| r.name == name);
                services.push(ServiceStatus {
                    name: name.to_owned(),
                    daemon: id.name.clone(),
                    uri: slot
                        .services
                        .iter()
                        .find(|s| s.name == name)
                        .map(|s| s.uri.clone())
                        .filter(|_| running),
                    registered_with: outcomes
                        .clone()
                        .filter(|r| r.error.is_none() && running)
                        .map(|r| r.nameserver.clone())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                    registration_errors: outcomes
                        .clone()
                        .filter_map(|r| {
                            let error = r.error.as_ref()?;
                            Some(format!("{}: {error}", r.nameserver))
                        })
                        .filter(|_| running)
                        .collect(),
                    registration_failures: outcomes
                        .filter_map(|r| {
                            Some(RegistrationFailure {
                                nameserver: r.nameserver.clone(),
                                error: r.error.clone()?,
                            })
                        })
                        .filter(|_| running)
                        .collect(),
                    lock_holder: slot.locks.get(name).cloned(),
                });
            }
        }
        LabStatus {
            manager: ManagerStatus {
                pid: std::process::id(),
                data_dir: self.options.data_dir.root().to_owned(),
                started: humantime::format_rfc3339_millis(self.started).to_string(),
                uptime_s: self.started_at.elapsed().as_secs_f64(),
                starting: lab.starting,
                log: manager_log_path(&self.options.data_dir),
                monitor: self.monitor_state().0,
                monitor_error: self.monitor_state().1,
            },
            components,
            services,
        }
    }

    /// Restarts the web monitor with `config`'s settings (or stops it, if
    /// it has none). Returns its URL, or `off`; why it could not start
    /// goes into `errors`.
    fn restart_monitor(
        self: &Arc<Self>,
        config: &LaunchConfig,
        errors: &mut Vec<String>,
    ) -> String {
        // Outside the lock its poller may be waiting for.
        let old = self
            .monitor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        drop(old);
        self.start_monitor(config);
        let (url, error) = self.monitor_state();
        errors.extend(error);
        url.unwrap_or_else(|| "off".to_owned())
    }

    /// The monitor's URL, or why it is not running.
    fn monitor_state(&self) -> (Option<String>, Option<String>) {
        match &*self.monitor.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(Ok(monitor)) => (Some(monitor.url()), None),
            Some(Err(err)) => (None, Some(err.clone())),
            None => (None, None),
        }
    }

    /// Answers the control socket until the lab is down.
    fn serve_control(self: &Arc<Self>, listener: UnixListener) {
        for stream in listener.incoming() {
            if self.lab().done {
                break;
            }
            let stream = match stream {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::warn!("control socket: {err}");
                    thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let manager = Arc::clone(self);
            self.requests.fetch_add(1, Ordering::SeqCst);
            let spawned = thread::Builder::new()
                .name("control".to_owned())
                .spawn(move || {
                    control::serve_connection(stream, |r| manager.handle(r));
                    let _lab = manager.lab();
                    manager.requests.fetch_sub(1, Ordering::SeqCst);
                    manager.changed.notify_all();
                });
            if let Err(err) = spawned {
                self.requests.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!("control socket: cannot serve a connection: {err}");
            }
        }
        // Let the answers in progress (`down`'s above all) reach their
        // clients; a silent client gets the request timeout at most.
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut lab = self.lab();
        while self.requests.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            lab = self
                .changed
                .wait_timeout(lab, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn handle(self: &Arc<Self>, request: Request) -> Result<Reply, String> {
        let seconds =
            |s: f64| Duration::try_from_secs_f64(s.max(0.0)).unwrap_or(DEFAULT_STOP_TIMEOUT);
        if self.shutting_down.load(Ordering::SeqCst)
            && !matches!(request, Request::Status {} | Request::Down { .. })
        {
            return Err("the lab is shutting down".to_owned());
        }
        if !matches!(request, Request::Status {} | Request::Down { .. }) {
            // Changes wait until the start-up has started everything, so
            // they do not race it.
            let mut lab = self.lab();
            while lab.starting {
                lab = self.changed.wait(lab).unwrap_or_else(|p| p.into_inner());
            }
        }
        match request {
            Request::Status {} => Ok(Reply::Status(self.status())),
            Request::WaitStarted {} => Ok(Reply::Status(self.status())),
            Request::Down { timeout_s } => {
                self.shut_down(seconds(timeout_s));
                Ok(Reply::Status(self.status()))
            }
            Request::Start { kind, name } => {
                let id = ComponentId { kind, name };
                self.start_component(&id, true)?;
                self.wait_settled(std::slice::from_ref(&id));
                if kind == Kind::Nameserver {
                    self.wait_registered(&id.name);
                }
                Ok(Reply::Status(self.status()))
            }
            Request::Stop {
                kind,
                name,
                timeout_s,
            } => {
                self.stop_component(&ComponentId { kind, name }, seconds(timeout_s))?;
                Ok(Reply::Status(self.status()))
            }
            Request::Restart {
                kind,
                name,
                timeout_s,
            } => {
                let id = ComponentId { kind, name };
                if self.lab().slots.contains_key(&id) {
                    self.stop_component(&id, seconds(timeout_s))?;
                }
                self.start_component(&id, true)?;
                self.wait_settled(std::slice::from_ref(&id));
                if kind == Kind::Nameserver {
                    self.wait_registered(&id.name);
                }
                Ok(Reply::Status(self.status()))
            }
            Request::Reload { timeout_s } => self.reload(seconds(timeout_s)).map(Reply::Reloaded),
        }
    }
}

/// Why daemon `id` must not start: one of its name servers is managed here
/// and failed.
fn failed_nameserver(lab: &Lab, id: &ComponentId) -> Option<String> {
    if id.kind != Kind::Daemon {
        return None;
    }
    nameservers_of(&lab.config, &id.name)
        .into_iter()
        .find_map(|ns| {
            let slot = lab.slots.get(&ComponentId {
                kind: Kind::Nameserver,
                name: ns.clone(),
            })?;
            (slot.state == State::Failed).then(|| {
                format!(
                    "its name server {ns} failed ({}); start it first",
                    slot.last_error.as_deref().unwrap_or("no reason recorded")
                )
            })
        })
}

/// The name servers daemon `daemon` registers with (for itself or its
/// services).
fn nameservers_of(config: &LaunchConfig, daemon: &str) -> BTreeSet<String> {
    let Some(daemon_config) = config.daemons.get(daemon) else {
        return BTreeSet::new();
    };
    daemon_config
        .nameservers
        .iter()
        .chain(
            config
                .services
                .iter()
                .filter(|(_, s)| s.daemon == daemon)
                .flat_map(|(_, s)| &s.nameservers),
        )
        .cloned()
        .collect()
}
