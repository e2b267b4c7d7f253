//! The `pyrolab-host` command line.
//!
//! # Layout
//!
//! - `mod.rs`: global options, dispatch, exit codes.
//! - `call.rs`: `pyrolab-host call`, the command-line client.
//! - `config.rs`: `pyrolab-host config validate | update | export | show | reset`.
//! - `info.rs`: `pyrolab-host info`.
//! - `logs.rs`: `pyrolab-host logs`.
//! - `manage.rs`: `pyrolab-host up | down | ps | start | stop | restart |
//!   reload`: the lab under the manager.
//! - `monitor.rs`: `pyrolab-host monitor`, the web monitor on its own.
//! - `new.rs`: `pyrolab-host new driver`: a driver project from templates
//!   (`host/templates/driver/`).
//! - `nslist.rs`: `pyrolab-host nslist`; finding configured name servers.
//! - `plugins.rs`: `pyrolab-host plugins list | inspect | call`.
//! - `run.rs`: `pyrolab-host run daemon | nameserver`.
//! - `systemd.rs`: `pyrolab-host systemd-unit`.
//! - `tls.rs`: `pyrolab-host tls init | issue | show`: the lab's CA.

mod call;
mod config;
mod info;
mod lab;
mod logs;
mod manage;
mod monitor;
mod new;
mod nslist;
mod plugins;
mod run;
mod simulate;
mod systemd;
mod table;
mod tls;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::ConfigStore;
use crate::data_dir::{DATA_DIR_ENV, DataDir};
use crate::loader::{PLUGIN_PATH_ENV, PluginSearchPath};
use crate::logging;

/// Serve lab instrument drivers to Pyro5 and PyroLab clients.
///
/// Drivers are plugin libraries (.so / .dll / .dylib) built against
/// pyrolab-plugin-api. A launch configuration names each service's driver by
/// `module` and `classname`; the host finds the library on the plugin search
/// path: every --plugin-dir, then the stored configuration's plugin_dirs,
/// then PYROLAB_PLUGIN_PATH, then <data-dir>/plugins.
#[derive(Debug, Parser)]
#[command(name = "pyrolab-host", version, about, long_about)]
pub struct Cli {
    /// The data directory: configuration, logs, name-server databases and
    /// the plugins/ folder. Default: PYROLAB_HOME, else PYROLAB_DATA_DIR
    /// (PyroLab's name), else the platform's data directory
    /// (~/.local/share/pyrolab-host on Linux).
    #[arg(long, global = true, env = DATA_DIR_ENV, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Search DIR for driver libraries, before PYROLAB_PLUGIN_PATH and
    /// <data-dir>/plugins. Repeatable; earlier directories win.
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,

    /// Log more: -v info, -vv debug, -vvv trace. The PYROLAB_LOG variable
    /// (e.g. PYROLAB_LOG=debug) overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the lab: every autolaunched name server and daemon, each in
    /// its own process, under a background manager that restarts what
    /// crashes and keeps each component's log. Returns once all are ready
    /// (exit status 1, with the reasons, if any failed).
    Up(manage::UpCommand),

    /// Stop the lab: daemons first (they unregister), then name servers,
    /// then the manager.
    Down(manage::StopOptions),

    /// Show the lab's components and services: status, pid, uptime,
    /// restarts, address, lock holders.
    Ps {
        /// Print JSON (docs/cli-json.md) instead of tables.
        #[arg(long)]
        json: bool,

        /// Every host of the lab: each host's manager whose configuration
        /// has a `manager:` section, found on the lab's name servers.
        #[arg(long)]
        lab: bool,
    },

    /// Start a stopped or failed component of the configuration.
    Start(manage::ComponentArgs),

    /// Stop a component (it stays stopped until `start`).
    Stop {
        #[command(flatten)]
        component: manage::ComponentArgs,
        #[command(flatten)]
        options: manage::StopOptions,
    },

    /// Stop, then start a component.
    Restart {
        #[command(flatten)]
        component: manage::ComponentArgs,
        #[command(flatten)]
        options: manage::StopOptions,
    },

    /// Re-read the stored configuration: restart only the components whose
    /// configuration changed, start newly autolaunched ones, stop removed
    /// ones.
    Reload(manage::StopOptions),

    /// Print a component's log (or the manager's: `logs manager`).
    Logs(logs::LogsCommand),

    /// Print a systemd unit that runs the lab at boot (`up --foreground`
    /// with readiness notification).
    SystemdUnit(systemd::SystemdUnitCommand),

    /// Call a method of a remote service and print the result as JSON.
    Call(call::CallCommand),

    /// Check, store and show the launch configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),

    /// Show the stored name servers, daemons and services.
    Info {
        /// Print JSON (every setting, defaults filled in) instead of tables.
        #[arg(long)]
        json: bool,
    },

    /// Serve the web monitor (a page and a JSON API showing name servers,
    /// services and their status, this host's components and logs) against
    /// any name server, until Ctrl-C.
    Monitor(monitor::MonitorCommand),

    /// Create a project: `new driver NAME` starts a driver of your own.
    #[command(subcommand)]
    New(new::NewCommand),

    /// List a name server's registrations.
    Nslist(nslist::NslistCommand),

    /// Find, list and try out driver plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),

    /// Run one component in the foreground.
    #[command(subcommand)]
    Run(run::RunCommand),

    /// Serve a simulated instrument (B2900, RTO, SMCV100B, KDC101, PPCL55x) until
    /// Ctrl-C, to try a lab configuration with no hardware.
    Simulate(simulate::SimulateCommand),

    /// The lab's certificate authority: create it, issue certificates to
    /// components and users, list them (docs/security.md).
    #[command(subcommand)]
    Tls(tls::TlsCommand),
}

/// What a command needs from the global options.
pub struct Context {
    /// The data directory, if one could be determined.
    pub data_dir: Option<DataDir>,
    /// The `--plugin-dir` directories.
    pub plugin_dirs: Vec<PathBuf>,
    /// The plugin search path.
    pub search_path: PluginSearchPath,
}

impl Cli {
    fn context(&self) -> Context {
        let data_dir = DataDir::choose(self.data_dir.as_deref());
        let search_path = PluginSearchPath::from_sources(
            &self.plugin_dirs,
            &stored_plugin_dirs(data_dir.as_ref()),
            std::env::var_os(PLUGIN_PATH_ENV),
            data_dir.as_ref(),
        );
        Context {
            data_dir,
            plugin_dirs: self.plugin_dirs.clone(),
            search_path,
        }
    }
}

/// The `plugin_dirs` of the stored configuration, if there is one. A stored
/// configuration that no longer loads is reported by the commands that use
/// it; here it only contributes nothing.
fn stored_plugin_dirs(data_dir: Option<&DataDir>) -> Vec<PathBuf> {
    let Some(data_dir) = data_dir else {
        return Vec::new();
    };
    match ConfigStore::new(data_dir).load() {
        Ok(Some(config)) => config.plugin_dirs,
        Ok(None) => Vec::new(),
        Err(err) => {
            eprintln!(
                "warning: the stored configuration has errors ({err}; `pyrolab-host config validate {}` lists them); its plugin_dirs are ignored",
                data_dir.config_file().display()
            );
            Vec::new()
        }
    }
}

/// Runs the command line and returns the process exit code: 0 on success,
/// 1 when the command failed, 2 for a usage error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Run(_) | Command::Up(_) | Command::Monitor(_)
    ) {
        // One-shot commands only: a long-running process that loses its
        // stdout must not end as if it had finished its work.
        end_quietly_when_stdout_closes();
    }
    init_logging(&cli);
    let context = cli.context();
    let verbose = cli.verbose;
    if !context.plugin_dirs.is_empty()
        && matches!(
            cli.command,
            Command::Down(_)
                | Command::Ps { .. }
                | Command::Start(_)
                | Command::Stop { .. }
                | Command::Restart { .. }
                | Command::Reload(_)
        )
    {
        eprintln!(
            "warning: --plugin-dir is ignored here: the lab's components search the directories given to `up` (and the configuration's plugin_dirs)"
        );
    }
    let result = match cli.command {
        Command::Up(command) => manage::up(command, &context, verbose),
        Command::Down(options) => manage::down(options, &context),
        Command::Ps { json, lab: true } => lab::ps(&context, json),
        Command::Ps { json, lab: false } => manage::ps(&context, json),
        Command::Start(component) => manage::start(component, &context),
        Command::Stop { component, options } => manage::stop(component, options, &context),
        Command::Restart { component, options } => manage::restart(component, options, &context),
        Command::Reload(options) => manage::reload(options, &context),
        Command::Logs(command) => logs::run(command, &context),
        Command::SystemdUnit(command) => systemd::run(command, &context),
        Command::Call(command) => call::run(command, &context),
        Command::Config(command) => config::run(command, &context),
        Command::Info { json } => info::run(&context, json),
        Command::Monitor(command) => monitor::run(command, &context),
        Command::New(command) => new::run(command),
        Command::Nslist(command) => nslist::run(command, &context),
        Command::Plugins(command) => plugins::run(command, &context),
        Command::Run(command) => run::run(command, &context),
        Command::Simulate(command) => simulate::run(command),
        Command::Tls(command) => tls::run(command, &context),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {}", error_chain(&err));
            ExitCode::FAILURE
        }
    }
}

/// `err` and its causes, each after a colon, leaving out a cause whose
/// text the message already ends with (an error that prints its cause and
/// also returns it as its source would otherwise say it twice).
fn error_chain(err: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if message.ends_with(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message
}

/// A reader that stops early (`pyrolab-host ps | head -1`) closes the
/// pipe: for a command that prints, that is the end of its output, not a
/// failure. `println!` panics on it (Rust ignores `SIGPIPE`); this ends the
/// process with status 0 instead, saying nothing. Any other failure to
/// print still panics as before.
fn end_quietly_when_stdout_closes() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        // EPIPE's number, not its (translated) text.
        let closed =
            message.starts_with("failed printing to stdout") && message.contains("(os error 32)");
        if closed {
            std::process::exit(0);
        }
        report(info);
    }));
}

/// Components and the manager report what they do (info); one-shot
/// commands only what goes wrong (warnings). The manager logs to its file.
fn init_logging(cli: &Cli) {
    let output = match &cli.command {
        Command::Run(run) if run.supervised() => logging::Output::Supervised,
        Command::Up(up) if up.runs_manager() => {
            let data_dir = DataDir::choose(cli.data_dir.as_deref());
            let log = data_dir.map(|dir| crate::lab::logfile::manager_log_path(&dir));
            match log.map(|path| crate::lab::logfile::LogFile::shared(&path)) {
                Some(Ok(log)) => logging::Output::Manager {
                    log,
                    stderr: !up.detached(),
                },
                Some(Err(err)) => {
                    eprintln!("warning: cannot open the manager's log: {err}");
                    logging::Output::Stderr
                }
                None => logging::Output::Stderr,
            }
        }
        _ => logging::Output::Stderr,
    };
    let running = matches!(&cli.command, Command::Run(_))
        || matches!(&cli.command, Command::Up(up) if up.runs_manager());
    logging::init(cli.verbose.saturating_add(u8::from(running)), output);
}

/// A command-line argument as a value: a YAML/JSON literal when it reads as
/// one, else the text itself.
fn argument(text: &str) -> pyrolab_plugin_api::Value {
    crate::config::literal(text).unwrap_or_else(|_| text.into())
}

/// Positional ARGs and `--kw NAME=VALUE` options as call arguments.
fn call_arguments(
    args: &[String],
    kwargs: &[String],
) -> anyhow::Result<pyrolab_plugin_api::CallArgs> {
    let mut call =
        pyrolab_plugin_api::CallArgs::positional(args.iter().map(|a| argument(a)).collect());
    for kwarg in kwargs {
        let Some((name, value)) = kwarg.split_once('=') else {
            anyhow::bail!("--kw expects NAME=VALUE, found {kwarg:?}");
        };
        call = call.kwarg(name, argument(value));
    }
    Ok(call)
}

#[cfg(test)]
mod tests {
    use pyrolab_plugin_api::Value;

    use super::*;

    #[test]
    fn arguments_are_yaml_literals_or_text() {
        assert_eq!(argument("42"), Value::Int(42));
        assert_eq!(argument("\"42\""), Value::from("42"));
        assert_eq!(argument("hello world"), Value::from("hello world"));
        assert_eq!(
            argument("[1, two]"),
            Value::List(vec![1.into(), "two".into()])
        );
        assert_eq!(argument("{a: 1}"), Value::Map(vec![("a".into(), 1.into())]));
        assert_eq!(argument("a: b: c"), Value::from("a: b: c"));
        assert_eq!(argument(""), Value::Null);
    }
}
