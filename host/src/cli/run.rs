//! `pyrolab-host run ...`: run one component in the foreground (what the
//! manager of `pyrolab-host up` starts, and what systemd units can run).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::Context;
use crate::config::{ConfigStore, LaunchConfig, load_file};
use crate::daemon::registrar::Registrar;
use crate::loader::{PLUGIN_PATH_ENV, PluginSearchPath};
use crate::supervised::{self, Event};
use crate::{daemon, nameserver};

#[derive(Debug, Subcommand)]
pub enum RunCommand {
    /// Run one daemon of the launch configuration in the foreground, serving
    /// its services until interrupted (Ctrl-C or SIGTERM: calls in progress
    /// finish, then it exits 0).
    ///
    /// Once listening it prints `daemon NAME listening on HOST:PORT` and one
    /// `service NAME: PYRO:NAME@HOST:PORT` line per service.
    Daemon {
        /// The daemon's name in the configuration.
        name: String,

        /// Use this configuration file instead of the stored one.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,

        /// Run as a child of the manager (see `supervised.rs`).
        #[arg(long, hide = true)]
        supervised: bool,
    },
    /// Run one name server of the launch configuration in the foreground
    /// until interrupted (Ctrl-C or SIGTERM; exits 0).
    ///
    /// Once listening it prints `name server NAME listening on HOST:PORT`,
    /// then `URI = PYRO:Pyro.NameServer@HOST:PORT`, and, with `broadcast:
    /// true`, `broadcast responder on HOST:PORT`.
    Nameserver {
        /// The name server's name in the configuration.
        name: String,

        /// Use this configuration file instead of the stored one.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,

        /// Run as a child of the manager (see `supervised.rs`).
        #[arg(long, hide = true)]
        supervised: bool,
    },
}

impl RunCommand {
    /// Whether the component runs as the manager's child.
    pub fn supervised(&self) -> bool {
        match self {
            RunCommand::Daemon { supervised, .. } | RunCommand::Nameserver { supervised, .. } => {
                *supervised
            }
        }
    }
}

pub fn run(command: RunCommand, context: &Context) -> anyhow::Result<ExitCode> {
    // Each connection is a descriptor: the usual soft limit (1,024) would
    // refuse connections long before `max_connections`.
    #[cfg(unix)]
    crate::net::raise_open_file_limit();
    match command {
        RunCommand::Daemon {
            name,
            config,
            supervised,
        } => run_daemon(context, &name, config.as_deref(), supervised),
        RunCommand::Nameserver {
            name,
            config,
            supervised,
        } => run_nameserver(context, &name, config.as_deref(), supervised),
    }
}

pub(super) fn launch_config(
    context: &Context,
    file: Option<&Path>,
) -> anyhow::Result<LaunchConfig> {
    if let Some(file) = file {
        let loaded = load_file(file, false).map_err(|err| match err {
            crate::config::ConfigError::Invalid { diagnostics, .. } => {
                for diagnostic in &diagnostics {
                    eprintln!("{diagnostic}");
                }
                anyhow::anyhow!("{} has errors", file.display())
            }
            other => other.into(),
        })?;
        for warning in &loaded.warnings {
            eprintln!("{warning}");
        }
        return Ok(loaded.config);
    }
    let Some(data_dir) = &context.data_dir else {
        bail!("no data directory: give --config FILE, --data-dir DIR or set PYROLAB_HOME");
    };
    let store = ConfigStore::new(data_dir);
    store.load()?.with_context(|| {
        format!(
            "no configuration is stored in {} (give --config FILE, or store one with `pyrolab-host config update FILE`)",
            store.path().display()
        )
    })
}

fn run_daemon(
    context: &Context,
    name: &str,
    file: Option<&Path>,
    supervised: bool,
) -> anyhow::Result<ExitCode> {
    let config = launch_config(context, file)?;
    let search_path = PluginSearchPath::from_sources(
        &context.plugin_dirs,
        &config.plugin_dirs,
        std::env::var_os(PLUGIN_PATH_ENV),
        context.data_dir.as_ref(),
    );
    let launch = daemon::launch::Launch::prepare(&config, name, &search_path)
        .map_err(print_service_failures)?;
    let bound = daemon::launch::bind(&config, name, context.data_dir.as_ref())?;
    // Its name servers are called with its own certificate.
    crate::tls::set_default_client(daemon::launch::client_tls(
        &config,
        name,
        context.data_dir.as_ref(),
    )?);
    let location = bound.location.clone();
    let local_address = bound.listener.local_location();
    let shutdown = launch.shutdown_handle();
    let on_signal = shutdown.clone();
    ctrlc::set_handler(move || {
        tracing::info!("stopping: letting calls in progress finish");
        on_signal.shutdown();
    })
    .context("cannot install the signal handler")?;
    println!("daemon {name} listening on {location}");
    let served = launch.services(&location);
    for service in &served {
        println!("service {}: {}", service.name, service.uri);
    }
    if !supervised {
        // Supervised, the lines above are the log already.
        tracing::info!("daemon {name} listening on {location}");
    }
    if supervised {
        launch.observe_locks(Box::new(|service, holder| {
            supervised::report(&Event::Lock {
                service: service.to_owned(),
                holder: holder.map(str::to_owned),
            });
        }));
    }
    let address = location.clone();
    let mut served = Some(served);
    let on_change = move |registrations| {
        if !supervised {
            return;
        }
        // The first outcome makes the daemon ready; later ones update it.
        supervised::report(&match served.take() {
            Some(services) => Event::Ready {
                address: address.clone(),
                services,
                registrations,
                local_address: local_address.clone(),
            },
            None => Event::Registrations { registrations },
        });
    };
    let registrar = Arc::new(
        Registrar::start(launch.registrations(&location), on_change)
            .context("cannot start registering with the name servers")?,
    );
    if supervised {
        let on_close = shutdown.clone();
        let activity = shutdown.clone();
        let nudge = Arc::clone(&registrar);
        supervised::watch_stdin(
            move |line| {
                if line == supervised::REGISTER_NOW {
                    nudge.nudge();
                }
            },
            move || on_close.shutdown(),
            move || activity.calls_in_progress(),
        )?;
    }
    launch.serve(bound, &shutdown, &registrar);
    tracing::info!("daemon {name} stopped");
    Ok(ExitCode::SUCCESS)
}

/// Lists each service that could not be loaded on stderr, as its own
/// `error:` line (the manager shows the last one as the reason).
fn print_service_failures(err: daemon::launch::LaunchError) -> anyhow::Error {
    if let daemon::launch::LaunchError::Services { failures, .. } = &err {
        for failure in failures {
            eprintln!("error: {failure}");
        }
    }
    err.into()
}

fn run_nameserver(
    context: &Context,
    name: &str,
    file: Option<&Path>,
    supervised: bool,
) -> anyhow::Result<ExitCode> {
    let config = launch_config(context, file)?;
    let launch = nameserver::launch::Launch::prepare(&config, name, context.data_dir.as_ref())?;
    let bound = nameserver::launch::bind(&config, name, context.data_dir.as_ref())?;
    let running = launch.start(bound)?;
    let location = running.location().to_owned();
    let shutdown = running.shutdown_handle();
    let on_signal = shutdown.clone();
    ctrlc::set_handler(move || {
        tracing::info!("stopping");
        on_signal.shutdown();
    })
    .context("cannot install the signal handler")?;
    println!("name server {name} listening on {location}");
    println!("URI = {}", running.uri());
    if let Some(address) = running.broadcast_address() {
        println!("broadcast responder on {address}");
    }
    tracing::info!(
        "name server {name} listening on {location} with {} registrations",
        running.count()
    );
    if supervised {
        let on_close = shutdown.clone();
        let activity = shutdown.clone();
        supervised::watch_stdin(
            |_| {},
            move || on_close.shutdown(),
            move || activity.calls_in_progress(),
        )?;
        supervised::report(&Event::Ready {
            address: location.clone(),
            services: Vec::new(),
            registrations: Vec::new(),
            local_address: None,
        });
    }
    running.serve(&shutdown);
    tracing::info!("name server {name} stopped");
    Ok(ExitCode::SUCCESS)
}
