//! `pyrolab-host up | down | ps | start | stop | restart | reload`: the
//! lab under the manager (see `crate::manager`).

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Args;

use super::Context;
use super::startup::{self, Progress};
use crate::config::ConfigStore;
use crate::data_dir::DataDir;
use crate::lab::logfile;
use crate::lab::status::{ComponentId, Kind, LabStatus, ServiceStatus, State};
use crate::manager::control::{self, ClientError};
use crate::manager::protocol::Request;
use crate::manager::{self, InstanceLock, Options};

#[derive(Debug, Args)]
pub struct UpCommand {
    /// Store FILE as the configuration first (as `config update FILE`
    /// does), then start it. Default: the stored configuration.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Run the manager in this process, logging to stderr too, until
    /// Ctrl-C, SIGTERM or `pyrolab-host down` (for systemd and other
    /// service managers; tells systemd when the lab is ready).
    #[arg(long)]
    foreground: bool,

    /// The manager process `up` starts in the background.
    #[arg(long, hide = true)]
    detached: bool,

    /// Print the final status as JSON (`ps --json`'s document, see
    /// docs/cli-json.md) instead of tables. The progress lines on stderr
    /// are the same.
    #[arg(long)]
    json: bool,
}

impl UpCommand {
    /// Whether this process becomes the manager (and logs to its file).
    pub fn runs_manager(&self) -> bool {
        self.foreground
    }

    /// Whether this process is the background manager (no terminal).
    pub fn detached(&self) -> bool {
        self.detached
    }

    /// The `--config FILE` to store and start, whose `data_dir:` chooses
    /// the data directory when nothing else does.
    pub fn config_file(&self) -> Option<&Path> {
        self.config.as_deref()
    }
}

/// The options of commands that stop components.
#[derive(Debug, Args)]
pub struct StopOptions {
    /// Seconds each component gets to finish its calls and unregister
    /// before it is killed (0 to 86400). Daemons stop first, then name
    /// servers, so stopping everything can take up to twice as long.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = manager::DEFAULT_STOP_TIMEOUT.as_secs_f64(),
        value_parser = parse_timeout
    )]
    timeout: f64,
}

/// The longest `--timeout`: a day.
const MAX_TIMEOUT: f64 = 86_400.0;

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if (0.0..=MAX_TIMEOUT).contains(&seconds) => Ok(seconds),
        Ok(_) => Err(format!("must be between 0 and {MAX_TIMEOUT} seconds")),
        Err(_) => Err(format!("{text:?} is not a number of seconds")),
    }
}

/// Which component.
#[derive(Debug, Args)]
pub struct ComponentArgs {
    /// `nameserver`, `daemon` or `command`.
    #[arg(value_enum)]
    kind: Kind,
    /// Its name in the configuration; `HOST/NAME` for a component of
    /// another host of the lab (done by that host's manager).
    name: String,
}

fn data_dir(context: &Context) -> anyhow::Result<&DataDir> {
    context
        .data_dir
        .as_ref()
        .context("no data directory: give --data-dir DIR or set PYROLAB_HOME")
}

/// How long to wait for the answer to a request that stops components.
fn stop_wait(timeout: f64) -> Duration {
    // Daemons stop, then name servers: two rounds, each up to the timeout
    // and the kill after it.
    Duration::from_secs_f64(timeout.max(0.0) * 2.0) + Duration::from_secs(30)
}

/// How long to wait for components to start.
const START_WAIT: Duration = Duration::from_secs(300);

pub fn up(command: UpCommand, context: &Context, verbose: u8) -> anyhow::Result<ExitCode> {
    let began = Instant::now();
    let data_dir = data_dir(context)?;
    if let Some(pid) = InstanceLock::holder(data_dir) {
        if command.foreground {
            // This process was to be the manager (systemd's): it cannot be.
            bail!(
                "a manager is already running for {} (pid {pid}); see `pyrolab-host ps`, or stop it with `pyrolab-host down`",
                data_dir.root().display()
            );
        }
        return already_running(data_dir, command.config.as_deref(), command.json, began);
    }
    if let Some(file) = &command.config {
        store_config(data_dir, file)?;
    }
    let store = ConfigStore::new(data_dir);
    let config = store.load()?.with_context(|| {
        format!(
            "no configuration is stored in {} (give `up --config FILE`, or store one with `pyrolab-host config update FILE`)",
            store.path().display()
        )
    })?;
    if config.autolaunch.components().is_empty() {
        eprintln!(
            "warning: the configuration autolaunches nothing (add an `autolaunch:` section); the manager starts idle, see `pyrolab-host start`"
        );
    }
    let options = Options {
        data_dir: data_dir.clone(),
        exe: std::env::current_exe().context("cannot find the pyrolab-host executable")?,
        child_args: global_args(context, data_dir, verbose)?,
        plugin_dirs: context
            .plugin_dirs
            .iter()
            .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| dir.clone()))
            .collect(),
    };
    if command.foreground {
        let print = !command.detached;
        let json = command.json;
        manager::run(options, move |status| {
            if !print {
                return;
            }
            if let Err(err) = print_lab_status(status, json) {
                tracing::warn!("cannot print the lab's status: {err}");
            }
        })?;
        return Ok(ExitCode::SUCCESS);
    }
    let progress = Progress::new(config.autolaunch.components(), began);
    start_in_background(options, progress, command.json)
}

/// `up` of a lab whose manager already runs: not an error. Says so (and,
/// for `--config FILE`, whether FILE differs from the stored
/// configuration: it is not applied), follows the start-up if it is still
/// under way, and reports the status and exit code a first `up` would.
fn already_running(
    data_dir: &DataDir,
    config: Option<&Path>,
    json: bool,
    began: Instant,
) -> anyhow::Result<ExitCode> {
    let status = wait_for_control_socket(data_dir, &mut || match InstanceLock::holder(data_dir) {
        Some(_) => Ok(()),
        None => bail!(
            "the manager running for {} stopped",
            data_dir.root().display()
        ),
    })?;
    eprintln!(
        "the lab is already running for {} (manager pid {}); `pyrolab-host down` stops it",
        data_dir.root().display(),
        status.manager.pid
    );
    if let Some(file) = config {
        compare_with_stored(data_dir, file)?;
    }
    let status = if status.manager.starting {
        eprintln!("it is still starting its components:");
        let expected = match ConfigStore::new(data_dir).load() {
            Ok(Some(config)) => config.autolaunch.components(),
            _ => Vec::new(),
        };
        let mut progress = Progress::new(expected, began);
        progress.already_seen(&status);
        startup::follow(data_dir, &mut progress, START_WAIT, &mut || {
            anyhow::anyhow!("the manager stopped while starting the lab")
        })?
    } else {
        status
    };
    print_lab_status(&status, json)?;
    Ok(report_failures(&status))
}

/// Says whether `file` (given to `up --config` of a running lab) differs
/// from the stored configuration, and how to apply it if so. A file with
/// errors is an error: it could not be applied either way.
fn compare_with_stored(data_dir: &DataDir, file: &Path) -> anyhow::Result<()> {
    let Some(given) = super::config::check(file, false)? else {
        bail!(
            "{} has errors; the running lab and the stored configuration were not changed",
            file.display()
        );
    };
    let store = ConfigStore::new(data_dir);
    // What `config update FILE` would store, against what is stored: the
    // store writes `to_yaml` of what it was given, so an unchanged file
    // gives the same text (comparing the configurations loaded back would
    // also compare paths resolved from two different folders).
    let stored = std::fs::read_to_string(store.path()).ok();
    if stored.as_deref() == Some(crate::config::to_yaml(&given).as_str()) {
        eprintln!(
            "{} is the stored configuration ({})",
            file.display(),
            store.path().display()
        );
    } else {
        eprintln!(
            "warning: {} differs from the stored configuration and was not applied; to apply it to the running lab: `pyrolab-host config update {}`, then `pyrolab-host reload`",
            file.display(),
            file.display()
        );
    }
    Ok(())
}

fn store_config(data_dir: &DataDir, file: &Path) -> anyhow::Result<()> {
    let Some(config) = super::config::check(file, false)? else {
        bail!(
            "{} has errors; nothing was started, the stored configuration was not changed",
            file.display()
        );
    };
    let store = ConfigStore::new(data_dir);
    store
        .save(&config)
        .with_context(|| format!("cannot write {}", store.path().display()))?;
    eprintln!("stored {} as {}", file.display(), store.path().display());
    Ok(())
}

/// The global options the manager and its children need: this data
/// directory and plugin directories (absolute: the manager outlives this
/// shell's working directory), and the verbosity.
fn global_args(
    context: &Context,
    data_dir: &DataDir,
    verbose: u8,
) -> anyhow::Result<Vec<OsString>> {
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let mut args: Vec<OsString> = vec!["--data-dir".into(), absolute(data_dir.root()).into()];
    for dir in &context.plugin_dirs {
        args.push("--plugin-dir".into());
        args.push(absolute(dir).into());
    }
    if verbose > 0 {
        args.push(format!("-{}", "v".repeat(verbose.into())).into());
    }
    Ok(args)
}

/// Starts the manager as a background process, follows the start-up
/// (progress on stderr) and reports once the lab is up.
fn start_in_background(
    mut options: Options,
    mut progress: Progress,
    json: bool,
) -> anyhow::Result<ExitCode> {
    // Children and the manager itself get the absolute data directory.
    let data_dir = DataDir::new(std::path::absolute(options.data_dir.root())?);
    options.data_dir = data_dir.clone();
    let mut manager = BackgroundManager::spawn(&options)?;
    if let Some(line) = progress.waiting_for_all(Instant::now()) {
        eprintln!("{line}");
    }
    let first = wait_for_control_socket(&data_dir, &mut || manager.still_running())?;
    if first.manager.pid != manager.child.id() {
        // Another `up` won the race: ours found the lock taken and exits.
        let _ = manager.child.wait();
        return already_running(&data_dir, None, json, progress.began());
    }
    let status = startup::follow(&data_dir, &mut progress, START_WAIT, &mut || manager.gone())?;
    print_lab_status(&status, json)?;
    Ok(report_failures(&status))
}

/// The manager process `up` started, logging to its file.
struct BackgroundManager {
    child: std::process::Child,
    log_path: PathBuf,
    /// Where this run's lines begin in the log.
    log_start: u64,
}

impl BackgroundManager {
    /// Starts `up --foreground --detached` in its own process group, its
    /// output appended to the manager's log.
    fn spawn(options: &Options) -> anyhow::Result<Self> {
        let log_path = logfile::manager_log_path(&options.data_dir);
        crate::data_dir::create_private_dir(&options.data_dir.logs_dir())?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let log_start = log.metadata()?.len();
        let mut command = Command::new(&options.exe);
        command
            .args(&options.child_args)
            .args(["up", "--foreground", "--detached"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        {
            // Its own process group: the terminal's Ctrl-C and hang-up are
            // not for it.
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", options.exe.display()))?;
        Ok(BackgroundManager {
            child,
            log_path,
            log_start,
        })
    }

    /// An error if the manager has exited (its log's new lines printed).
    fn still_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(exit) => Err(self.exited(exit)),
            None => Ok(()),
        }
    }

    /// Why the manager stopped answering: it exited, or it is alive but
    /// its control socket went.
    fn gone(&mut self) -> anyhow::Error {
        match self.child.try_wait() {
            Ok(Some(exit)) => self.exited(exit),
            _ => anyhow::anyhow!(
                "the manager (pid {}) stopped answering on its control socket; see {}",
                self.child.id(),
                self.log_path.display()
            ),
        }
    }

    fn exited(&self, exit: std::process::ExitStatus) -> anyhow::Error {
        let output = std::fs::read(&self.log_path).unwrap_or_default();
        let tail =
            String::from_utf8_lossy(output.get(self.log_start as usize..).unwrap_or_default());
        eprint!("{tail}");
        anyhow::anyhow!(
            "the manager exited ({exit}) before the lab started; its log: {}",
            self.log_path.display()
        )
    }
}

/// How long a manager that holds the instance lock may take to open its
/// control socket.
const SOCKET_APPEARS_WITHIN: Duration = Duration::from_secs(30);

/// The manager's status as soon as its control socket answers.
/// `still_running` fails when the manager is gone (no use waiting).
fn wait_for_control_socket(
    data_dir: &DataDir,
    still_running: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<LabStatus> {
    let give_up_at = Instant::now() + SOCKET_APPEARS_WITHIN;
    loop {
        match control::request(data_dir, &Request::Status {}, Duration::from_secs(10)) {
            Ok(reply) => return Ok(reply.into_status()),
            Err(ClientError::NotRunning { .. }) => {
                still_running()?;
                if Instant::now() > give_up_at {
                    bail!(
                        "the manager did not open its control socket within {} s; see {}",
                        SOCKET_APPEARS_WITHIN.as_secs(),
                        logfile::manager_log_path(data_dir).display()
                    );
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// `ps`'s and `up`'s result on stdout: the status tables, or `ps
/// --json`'s document.
fn print_lab_status(status: &LabStatus, json: bool) -> anyhow::Result<()> {
    if json {
        print_status_json(status)
    } else {
        print_status(status);
        Ok(())
    }
}

/// `ps --json`: through a `Value`, whose keys are sorted, since `ps
/// --json` has always printed them in that order.
fn print_status_json(status: &LabStatus) -> anyhow::Result<()> {
    super::print_json(&serde_json::to_value(status)?)
}

/// Exit status 1, with the reasons, if an autolaunched component is not
/// running, or an autolaunched daemon registered none of its services
/// (one line each).
fn report_failures(status: &LabStatus) -> ExitCode {
    let failed: Vec<_> = status
        .components
        .iter()
        .filter(|c| c.status != State::Running && c.autolaunch)
        .collect();
    let nowhere = status.autolaunched_registered_nowhere();
    for daemon in &nowhere {
        eprintln!("error: {daemon}");
    }
    if failed.is_empty() {
        return if nowhere.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    for component in &failed {
        eprintln!(
            "error: {} {} {}: {}",
            component.kind.describe(),
            component.name,
            component.status.as_str(),
            component
                .last_error
                .as_deref()
                .unwrap_or("no reason recorded")
        );
    }
    eprintln!(
        "the other components are running; fix the cause (a fix in the configuration file: `pyrolab-host config update FILE` first), then `pyrolab-host start {} {}` (or `pyrolab-host down`)",
        failed[0].kind.as_str(),
        failed[0].name
    );
    ExitCode::FAILURE
}

pub fn down(options: StopOptions, context: &Context) -> anyhow::Result<ExitCode> {
    let data_dir = data_dir(context)?;
    let running = match control::request(data_dir, &Request::Status {}, Duration::from_secs(10)) {
        Ok(reply) => reply
            .into_status()
            .components
            .iter()
            .filter(|c| c.pid.is_some())
            .count(),
        Err(ClientError::NotRunning { data_dir }) => {
            println!("no manager is running for {data_dir}");
            return Ok(ExitCode::SUCCESS);
        }
        Err(err) => return Err(err.into()),
    };
    let request = Request::Down {
        timeout_s: options.timeout,
    };
    let status = match control::request(data_dir, &request, stop_wait(options.timeout)) {
        Ok(reply) => reply.into_status(),
        Err(ClientError::NotRunning { data_dir }) => {
            println!("no manager is running for {data_dir}");
            return Ok(ExitCode::SUCCESS);
        }
        Err(err) => return Err(err.into()),
    };
    // The manager exits right after answering; wait for it to be gone.
    let deadline = Instant::now() + Duration::from_secs(10);
    while InstanceLock::holder(data_dir).is_some() {
        if Instant::now() > deadline {
            bail!(
                "the components stopped, but the manager (pid {}) is still running",
                status.manager.pid
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!(
        "stopped {running} running component{} and the manager (pid {})",
        if running == 1 { "" } else { "s" },
        status.manager.pid
    );
    Ok(ExitCode::SUCCESS)
}

pub fn ps(context: &Context, json: bool) -> anyhow::Result<ExitCode> {
    let data_dir = data_dir(context)?;
    let status =
        control::request(data_dir, &Request::Status {}, Duration::from_secs(10))?.into_status();
    print_lab_status(&status, json)?;
    Ok(ExitCode::SUCCESS)
}

pub fn start(component: ComponentArgs, context: &Context) -> anyhow::Result<ExitCode> {
    if let Some((host, name)) = super::lab::remote(&component.name) {
        return super::lab::act(context, "start", component.kind, host, name, 0.0);
    }
    let request = Request::Start {
        kind: component.kind,
        name: component.name.clone(),
    };
    one_component(context, &request, &component, START_WAIT)
}

pub fn stop(
    component: ComponentArgs,
    options: StopOptions,
    context: &Context,
) -> anyhow::Result<ExitCode> {
    if let Some((host, name)) = super::lab::remote(&component.name) {
        return super::lab::act(context, "stop", component.kind, host, name, options.timeout);
    }
    let request = Request::Stop {
        kind: component.kind,
        name: component.name.clone(),
        timeout_s: options.timeout,
    };
    one_component(context, &request, &component, stop_wait(options.timeout))
}

pub fn restart(
    component: ComponentArgs,
    options: StopOptions,
    context: &Context,
) -> anyhow::Result<ExitCode> {
    if let Some((host, name)) = super::lab::remote(&component.name) {
        return super::lab::act(
            context,
            "restart",
            component.kind,
            host,
            name,
            options.timeout,
        );
    }
    let request = Request::Restart {
        kind: component.kind,
        name: component.name.clone(),
        timeout_s: options.timeout,
    };
    one_component(
        context,
        &request,
        &component,
        stop_wait(options.timeout) + START_WAIT,
    )
}

/// Sends a request about one component and reports where it ended up.
fn one_component(
    context: &Context,
    request: &Request,
    component: &ComponentArgs,
    wait: Duration,
) -> anyhow::Result<ExitCode> {
    let data_dir = data_dir(context)?;
    let status = control::request(data_dir, request, wait)?.into_status();
    let Some(found) = status
        .components
        .iter()
        .find(|c| c.kind == component.kind && c.name == component.name)
    else {
        bail!(
            "the manager does not list {} {}",
            component.kind.describe(),
            component.name
        );
    };
    let wanted = match request {
        Request::Stop { .. } => State::Stopped,
        _ => State::Running,
    };
    let mut line = format!(
        "{} {}: {}",
        found.kind.describe(),
        found.name,
        found.status.as_str()
    );
    if let Some(pid) = found.pid {
        line.push_str(&format!(" (pid {pid})"));
    }
    if let Some(address) = &found.address {
        line.push_str(&format!(" at {address}"));
    }
    if found.status == wanted {
        println!("{line}");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "error: {line}: {}",
        found.last_error.as_deref().unwrap_or("no reason recorded")
    );
    Ok(ExitCode::FAILURE)
}

pub fn reload(options: StopOptions, context: &Context) -> anyhow::Result<ExitCode> {
    let data_dir = data_dir(context)?;
    let request = Request::Reload {
        timeout_s: options.timeout,
    };
    let report = control::request(data_dir, &request, stop_wait(options.timeout) + START_WAIT)?
        .into_reload_report()
        .context("the manager answered `reload` without saying what it did")?;
    let reports: [(&[ComponentId], &str); 5] = [
        (&report.restarted, "restarted"),
        (&report.started, "started"),
        (&report.stopped, "stopped"),
        (
            &report.updated,
            "configuration updated (not running; starts with it)",
        ),
        (
            &report.no_longer_autolaunched,
            "no longer autolaunched (still running; `stop` it if it should not)",
        ),
    ];
    for (ids, verb) in reports {
        if !ids.is_empty() {
            let names: Vec<String> = ids
                .iter()
                .map(|id| format!("{} {}", id.kind.as_str(), id.name))
                .collect();
            println!("{verb}: {}", names.join(", "));
        }
    }
    if let Some(monitor) = &report.monitor {
        println!("monitor restarted with its new settings: {monitor}");
    }
    let nothing = reports.iter().all(|(ids, _)| ids.is_empty())
        && report.errors.is_empty()
        && report.monitor.is_none();
    if nothing {
        println!("nothing changed");
    }
    let status = &report.status;
    let mut failed = false;
    for error in &report.errors {
        eprintln!("error: {error}");
        failed = true;
    }
    for component in status
        .components
        .iter()
        .filter(|c| c.status == State::Failed)
    {
        eprintln!(
            "error: {} {} failed: {}",
            component.kind.describe(),
            component.name,
            component
                .last_error
                .as_deref()
                .unwrap_or("no reason recorded")
        );
        failed = true;
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints the tables `ps` and `up` show.
fn print_status(status: &LabStatus) {
    let mut out = String::new();
    let components: Vec<Vec<String>> = status
        .components
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.kind.as_str().to_owned(),
                c.status.as_str().to_owned(),
                c.pid.map_or("-".to_owned(), |p| p.to_string()),
                c.uptime_s.map_or("-".to_owned(), duration),
                c.restarts.to_string(),
                c.address.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    super::table::titled(
        &mut out,
        &format!(
            "Components (manager pid {}, data directory {})",
            status.manager.pid,
            status.manager.data_dir.display()
        ),
        &[
            "NAME", "KIND", "STATUS", "PID", "UPTIME", "RESTARTS", "ADDRESS",
        ],
        &components,
    );
    let services: Vec<Vec<String>> = status
        .services
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.daemon.clone(),
                registered_with(s),
                s.lock_holder.clone().unwrap_or_else(|| "-".to_owned()),
                s.uri.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    super::table::titled(
        &mut out,
        "Services",
        &["NAME", "DAEMON", "REGISTERED WITH", "LOCKED BY", "URI"],
        &services,
    );
    let errors: Vec<String> = status
        .components
        .iter()
        .filter_map(|c| {
            let error = c.last_error.as_ref()?;
            Some(format!("  {} {}: {error}\n", c.kind.as_str(), c.name))
        })
        .chain(status.services.iter().flat_map(|s| {
            s.registration_errors
                .iter()
                .map(move |e| format!("  service {} not registered with {e}\n", s.name))
        }))
        .collect();
    if !errors.is_empty() {
        out.push_str("\nLast errors\n");
        out.extend(errors);
    }
    if let Some(url) = &status.manager.monitor {
        out.push_str(&format!("\nMonitor: {url}\n"));
    }
    if let Some(error) = &status.manager.monitor_error {
        out.push_str(&format!("\nMonitor: not running: {error}\n"));
    }
    if status.manager.starting {
        out.push_str("\n(still starting the autolaunched components)\n");
    }
    print!("{out}");
}

/// The REGISTERED WITH column: the name servers a service is registered
/// with, then those it could not register with, marked `(FAILED)` (the
/// reason is under "Last errors"); `-` for none.
fn registered_with(service: &ServiceStatus) -> String {
    let failed = service
        .registration_failures
        .iter()
        .map(|f| format!("{} (FAILED)", f.nameserver));
    let all: Vec<String> = service
        .registered_with
        .iter()
        .cloned()
        .chain(failed)
        .collect();
    if all.is_empty() {
        "-".to_owned()
    } else {
        all.join(", ")
    }
}

/// `1h 02m`, `3m 04s`, `5.2s`.
fn duration(seconds: f64) -> String {
    let whole = seconds as u64;
    match whole {
        0..60 => format!("{seconds:.1}s"),
        60..3600 => format!("{}m {:02}s", whole / 60, whole % 60),
        3600..86400 => format!("{}h {:02}m", whole / 3600, whole % 3600 / 60),
        _ => format!("{}d {:02}h", whole / 86400, whole % 86400 / 3600),
    }
}
