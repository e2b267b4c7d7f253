//! The `pyrolab-host` command line.
//!
//! # Layout
//!
//! - `mod.rs`: global options, dispatch, exit codes, the `--json`
//!   convention.
//! - `call.rs`: `pyrolab-host call`, the command-line client.
//! - `config.rs`: `pyrolab-host config validate | update | export | show | reset`.
//! - `errors.rs`: how errors and remote exceptions are printed.
//! - `generate.rs`: `pyrolab-host completions SHELL | man --out-dir DIR`.
//! - `info.rs`: `pyrolab-host info`.
//! - `logs.rs`: `pyrolab-host logs`.
//! - `manage.rs`: `pyrolab-host up | down | ps | start | stop | restart |
//!   reload`: the lab under the manager.
//! - `startup.rs`: following the lab's start-up for `up` (progress lines).
//! - `monitor.rs`: `pyrolab-host monitor`, the web monitor on its own.
//! - `new.rs`: `pyrolab-host new driver`: a driver project from templates
//!   (`host/templates/driver/`).
//! - `nslist.rs`: `pyrolab-host nslist`; finding configured name servers.
//! - `plugins.rs`: `pyrolab-host plugins list | inspect | call`.
//! - `run.rs`: `pyrolab-host run daemon | nameserver`.
//! - `systemd.rs`: `pyrolab-host systemd-unit`.
//! - `table.rs`: the one table style of every listing.
//! - `tls.rs`: `pyrolab-host tls init | issue | show`: the lab's CA.
//! - `version.rs`: what `--version` says (the plugin ABI drivers must match).
//!
//! # Conventions
//!
//! - Listings (`ps`, `ps --lab`, `info`, `nslist`, `plugins list`, `tls
//!   show`, and `up`'s final status) print tables of `table.rs` on
//!   stdout, and with `--json` one pretty-printed JSON document instead
//!   (`print_json`), documented in docs/cli-json.md: fields are added,
//!   never renamed or removed.
//! - Progress and diagnostics go to stderr, so stdout is only the result.
//! - Errors are printed by `errors.rs`: `error: MESSAGE`, then `  caused
//!   by: CAUSE` lines; a remote exception as `error: CLASS: MESSAGE
//!   (raised by OBJECT.METHOD on URI)`, its traceback under `-v`.
//!
//! # Exit codes
//!
//! - 0: done (`up` of a lab already running included, when its
//!   autolaunched components run).
//! - 1: the command failed: an error, a remote exception, a component that
//!   did not start, an invalid configuration, a library that did not load
//!   (`plugins list`).
//! - 2: a usage error (unknown option, missing argument), from clap.

mod call;
mod config;
mod errors;
mod generate;
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
mod startup;
mod systemd;
mod table;
mod tls;
mod version;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
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
/// then PYROLAB_PLUGIN_PATH, then <data-dir>/plugins, then the system
/// plugin directory, /usr/lib/pyrolab-host/plugins (where the .deb puts
/// the bundled drivers; PYROLAB_SYSTEM_PLUGIN_DIR replaces it, empty for
/// none).
#[derive(Debug, Parser)]
#[command(
    name = "pyrolab-host",
    version = version::short(),
    long_version = version::long(),
    about,
    long_about
)]
pub struct Cli {
    /// The data directory: configuration, logs, name-server databases and
    /// the plugins/ folder. Default: PYROLAB_HOME, else PYROLAB_DATA_DIR
    /// (PyroLab's name), else the `data_dir:` of the file given to `up
    /// --config FILE` or `config update FILE`, else a `.pyrolab-host`
    /// directory in the working directory or a parent (a project's own
    /// lab, such as the checkout's demo), else the platform's data
    /// directory (~/.local/share/pyrolab-host on Linux).
    #[arg(long, global = true, env = DATA_DIR_ENV, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Search DIR for driver libraries, before PYROLAB_PLUGIN_PATH,
    /// <data-dir>/plugins and the system plugin directory. Repeatable;
    /// earlier directories win.
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    plugin_dirs: Vec<PathBuf>,

    /// Log more: -v info, -vv debug, -vvv trace. The PYROLAB_LOG variable
    /// (e.g. PYROLAB_LOG=debug) overrides it. Also shows the remote
    /// traceback of a failed `call`.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the lab: every autolaunched name server and daemon, each in
    /// its own process, under a background manager that restarts what
    /// crashes and keeps each component's log.
    ///
    /// Says on stderr each component that becomes ready and what it still
    /// waits for; returns once all are ready, printing the lab's status
    /// (exit status 1, with the reasons, if any failed). On a lab already
    /// running it says so and shows the status (exit status 0 when its
    /// autolaunched components run); a different --config FILE is not
    /// applied: `config update FILE`, then `reload`, do that.
    Up(manage::UpCommand),

    /// Stop the lab: daemons first (they unregister), then name servers,
    /// then the manager.
    Down(manage::StopOptions),

    /// Show the lab's components and services: status, pid, uptime,
    /// restarts, address, lock holders.
    Ps {
        /// Print JSON (see docs/cli-json.md) instead of tables.
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
    ///
    /// Each ARG is read as a YAML/JSON literal (42, 2.5, true, null,
    /// "text", [1, 2], {a: 1}); anything else is taken as a string. A
    /// method that returns an item stream (a generator) prints each item as
    /// a line of JSON as it arrives. A remote exception (also one that ends
    /// a stream) is printed on stderr as `error: CLASS: MESSAGE (raised by
    /// OBJECT.METHOD on URI)`, with the remote traceback under -v; the exit
    /// code is then 1.
    Call(call::CallCommand),

    /// Check, store and show the launch configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),

    /// Show the stored name servers, daemons and services.
    Info {
        /// Print JSON (every setting, defaults filled in; see
        /// docs/cli-json.md) instead of tables.
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

    /// List a name server's registrations: NAME, URI and DESCRIPTION.
    ///
    /// Without --host and --port, asks the configured name server (from
    /// --config or the stored configuration; with several, the first that
    /// answers, in the configuration's order, or the one --nameserver
    /// names), else PYRO_NS_HOST:PYRO_NS_PORT, by default localhost:9090,
    /// as Pyro5 does.
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

    /// Print a shell completion script (bash, zsh, fish, elvish,
    /// powershell), generated from this build's commands.
    ///
    /// Install it where the shell looks, e.g. bash: `pyrolab-host
    /// completions bash > ~/.local/share/bash-completion/completions/pyrolab-host`;
    /// zsh: as `_pyrolab-host` in a directory of your `fpath`; fish:
    /// `pyrolab-host completions fish > ~/.config/fish/completions/pyrolab-host.fish`.
    /// docs/completions.md has the details.
    Completions(generate::CompletionsCommand),

    /// Write man pages for the program and every subcommand into a
    /// directory, generated from this build's commands.
    ///
    /// Writes pyrolab-host.1 and one page per subcommand, nested ones too
    /// (pyrolab-host-up.1, pyrolab-host-plugins-list.1, ...), replacing
    /// pages of the same names, and prints the path of each file written,
    /// one per line. Read one with `man -l DIR/pyrolab-host-up.1`, or
    /// write them into ~/.local/share/man/man1 for `man pyrolab-host-up`.
    Man(generate::ManCommand),
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
    /// The launch configuration this command stores (`up --config FILE`,
    /// `config update FILE`): its `data_dir:` chooses the data directory
    /// when no option or variable does.
    fn config_file(&self) -> Option<&Path> {
        match &self.command {
            Command::Up(up) => up.config_file(),
            Command::Config(config::ConfigCommand::Update { file, .. }) => Some(file),
            _ => None,
        }
    }

    /// The data directory, chosen as `crate::data_dir` describes.
    fn chosen_data_dir(&self) -> Option<DataDir> {
        let from_config = self.config_file().and_then(crate::config::data_dir_of);
        DataDir::choose_with_config(self.data_dir.as_deref(), from_config.as_deref())
    }

    /// Says where the lab's data goes when the configuration's `data_dir:`
    /// could surprise: when an option or variable overrides it, and when
    /// `up` obeys it but the commands that follow (`ps`, `call`, `down`),
    /// given no file, would not find it from the working directory.
    fn note_a_surprising_data_dir(&self, chosen: &DataDir) {
        let Some(file) = self.config_file() else {
            return;
        };
        let Some(wanted) = crate::config::data_dir_of(file) else {
            return;
        };
        let shown = |dir: &Path| std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
        let (wanted, chosen) = (shown(&wanted), shown(chosen.root()));
        if wanted != chosen {
            eprintln!(
                "note: {}'s data_dir ({}) is not used: --data-dir, PYROLAB_HOME or PYROLAB_DATA_DIR names {}",
                file.display(),
                wanted.display(),
                chosen.display()
            );
            return;
        }
        let here = std::env::current_dir().unwrap_or_default();
        if matches!(&self.command, Command::Up(_)) && !DataDir::new(&chosen).is_found_from(&here) {
            eprintln!(
                "note: the lab keeps its data in {dir} ({file}'s data_dir); other commands act on it given `--data-dir {dir}` (or PYROLAB_HOME={dir})",
                dir = chosen.display(),
                file = file.display(),
            );
        }
    }

    fn context(&self) -> Context {
        let data_dir = self.chosen_data_dir();
        if let Some(chosen) = &data_dir {
            self.note_a_surprising_data_dir(chosen);
        }
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
    let cli = match run_generator(Cli::parse()) {
        ControlFlow::Break(code) => return code,
        ControlFlow::Continue(cli) => cli,
    };
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
        Command::Completions(_) | Command::Man(_) => unreachable!("run by run_generator"),
    };
    exit_code(result, verbose)
}

/// Runs `completions` and `man`, which need the command definitions only:
/// no data directory or configuration is looked at, no logging set up (a
/// package build runs them, in a clean environment). Gives any other
/// command back.
fn run_generator(cli: Cli) -> ControlFlow<ExitCode, Cli> {
    let verbose = cli.verbose;
    let result = match cli.command {
        Command::Completions(command) => {
            end_quietly_when_stdout_closes();
            generate::completions(command)
        }
        Command::Man(command) => {
            end_quietly_when_stdout_closes();
            generate::man(command)
        }
        command => return ControlFlow::Continue(Cli { command, ..cli }),
    };
    ControlFlow::Break(exit_code(result, verbose))
}

/// A command's exit code: its own, or 1 after printing its error
/// (errors.rs).
fn exit_code(result: anyhow::Result<ExitCode>, verbose: u8) -> ExitCode {
    match result {
        Ok(code) => code,
        Err(err) => {
            errors::print(&err, verbose > 0);
            ExitCode::FAILURE
        }
    }
}

/// Prints `value` as the `--json` of every listing prints it: one
/// pretty-printed document and a newline (docs/cli-json.md).
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
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
            let data_dir = cli.chosen_data_dir();
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
