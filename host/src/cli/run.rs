//! `pyrolab-host run ...`: run one component in the foreground (what the
//! manager of `pyrolab-host up` starts, and what systemd units can run).

use std::net::{TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::Context;
use crate::config::schema::{DaemonClass, DaemonConfig};
use crate::config::{ConfigStore, LaunchConfig, load_file};
use crate::daemon::{Daemon, DaemonSettings, HostedService};
use crate::loader::{Loader, PLUGIN_PATH_ENV, PluginSearchPath};
use crate::net::{self, Listener};

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
    },
}

pub fn run(command: RunCommand, context: &Context) -> anyhow::Result<ExitCode> {
    match command {
        RunCommand::Daemon { name, config } => run_daemon(context, &name, config.as_deref()),
    }
}

fn launch_config(context: &Context, file: Option<&Path>) -> anyhow::Result<LaunchConfig> {
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

fn run_daemon(context: &Context, name: &str, file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let config = launch_config(context, file)?;
    let Some(daemon_config) = config.daemons.get(name) else {
        let known: Vec<&str> = config.daemons.names().collect();
        bail!(
            "no daemon named {name:?} in the configuration (daemons: {})",
            known.join(", ")
        );
    };
    let search_path = PluginSearchPath::from_sources(
        &context.plugin_dirs,
        &config.plugin_dirs,
        std::env::var_os(PLUGIN_PATH_ENV),
        context.data_dir.as_ref(),
    );
    let services = load_services(&config, name, &search_path)?;
    let (listener, location) = bind(name, daemon_config)?;
    let daemon = Daemon::new(
        DaemonSettings {
            name: name.to_owned(),
            servertype: daemon_config.servertype,
            lockable: daemon_config.classname == DaemonClass::LockableDaemon,
            max_connections: daemon_config.max_connections,
            max_message_size: daemon_config.max_message_size,
        },
        services,
    );
    let shutdown = daemon.shutdown_handle();
    let on_signal = shutdown.clone();
    ctrlc::set_handler(move || {
        tracing::info!("stopping: letting calls in progress finish");
        on_signal.shutdown();
    })
    .context("cannot install the signal handler")?;
    println!("daemon {name} listening on {location}");
    for (service, _) in config.services.iter().filter(|(_, s)| s.daemon == name) {
        println!("service {service}: PYRO:{service}@{location}");
    }
    tracing::info!("daemon {name} listening on {location}");
    daemon.serve(listener, &location, &shutdown);
    tracing::info!("daemon {name} stopped");
    Ok(ExitCode::SUCCESS)
}

/// Loads every service of the daemon; all failures are reported, and any
/// one stops the daemon from starting half-equipped.
fn load_services(
    config: &LaunchConfig,
    daemon: &str,
    search_path: &PluginSearchPath,
) -> anyhow::Result<Vec<HostedService>> {
    let loader = Loader::new();
    let mut services = Vec::new();
    let mut failures = Vec::new();
    for (name, service) in config.services.iter().filter(|(_, s)| s.daemon == daemon) {
        let loaded = search_path
            .resolve(&service.module)
            .and_then(|path| loader.load(&path))
            .and_then(|library| {
                HostedService::new(
                    name,
                    library,
                    &service.classname,
                    service.parameters.clone(),
                    service.instancemode,
                )
            });
        match loaded {
            Ok(hosted) => services.push(hosted),
            Err(err) => failures.push(format!("service {name}: {err}")),
        }
    }
    if !failures.is_empty() {
        for failure in &failures {
            eprintln!("error: {failure}");
        }
        bail!(
            "daemon {daemon}: {} of its services could not be loaded",
            failures.len()
        );
    }
    Ok(services)
}

/// Binds the daemon's socket; returns the listener and the location
/// clients use (`host:port`, or `./u:path` for a Unix socket).
fn bind(name: &str, config: &DaemonConfig) -> anyhow::Result<(Listener, String)> {
    if let Some(path) = &config.unixsocket {
        let listener = Listener::bind_unix(path).with_context(|| {
            format!(
                "daemon {name}: cannot listen on unix socket {}",
                path.display()
            )
        })?;
        return Ok((listener, format!("./u:{}", path.display())));
    }
    let host = net::resolve_host(&config.host);
    let addresses: Vec<_> = (host.as_str(), config.port)
        .to_socket_addrs()
        .with_context(|| format!("daemon {name}: cannot resolve host {host:?}"))?
        .collect();
    let listener = TcpListener::bind(&addresses[..])
        .with_context(|| format!("daemon {name}: cannot listen on {host}:{}", config.port))?;
    let port = listener.local_addr()?.port();
    // Behind NAT, clients reach the daemon at another address, and URIs
    // must carry that one.
    let (host, port) = match &config.nathost {
        Some(nathost) => (
            nathost.clone(),
            if config.natport == 0 {
                port
            } else {
                config.natport
            },
        ),
        None => (host, port),
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok((Listener::Tcp(listener), format!("{host}:{port}")))
}
