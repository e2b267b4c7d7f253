//! The `pyrolab-host` command line.
//!
//! # Layout
//!
//! - `mod.rs`: global options, dispatch, exit codes.
//! - `config.rs`: `pyrolab-host config validate | update | export | show | reset`.
//! - `info.rs`: `pyrolab-host info`.
//! - `plugins.rs`: `pyrolab-host plugins list | inspect | call`.

mod config;
mod info;
mod plugins;

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
    /// the plugins/ folder. Default: the platform's data directory
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
    /// Check, store and show the launch configuration.
    #[command(subcommand)]
    Config(config::ConfigCommand),

    /// Show the stored name servers, daemons and services.
    Info {
        /// Print JSON (every setting, defaults filled in) instead of tables.
        #[arg(long)]
        json: bool,
    },

    /// Find, list and try out driver plugins.
    #[command(subcommand)]
    Plugins(plugins::PluginsCommand),
}

/// What a command needs from the global options.
pub struct Context {
    /// The data directory, if one could be determined.
    pub data_dir: Option<DataDir>,
    /// The plugin search path.
    pub search_path: PluginSearchPath,
}

impl Cli {
    fn context(&self) -> Context {
        let data_dir = self
            .data_dir
            .clone()
            .map(DataDir::new)
            .or_else(DataDir::platform_default);
        let search_path = PluginSearchPath::from_sources(
            &self.plugin_dirs,
            &stored_plugin_dirs(data_dir.as_ref()),
            std::env::var_os(PLUGIN_PATH_ENV),
            data_dir.as_ref(),
        );
        Context {
            data_dir,
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
            tracing::warn!("ignoring the stored configuration's plugin_dirs: {err}");
            Vec::new()
        }
    }
}

/// Runs the command line and returns the process exit code: 0 on success,
/// 1 when the command failed, 2 for a usage error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.verbose);
    let context = cli.context();
    let result = match cli.command {
        Command::Config(command) => config::run(command, &context),
        Command::Info { json } => info::run(&context, json),
        Command::Plugins(command) => plugins::run(command, &context),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
