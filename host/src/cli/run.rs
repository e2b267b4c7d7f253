//! `pyrolab-host run ...`: run one component in the foreground (what the
//! manager of `pyrolab-host up` starts, and what systemd units can run).

use std::collections::BTreeSet;
use std::net::{TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Subcommand;

use super::Context;
use crate::config::schema::{
    DaemonClass, DaemonConfig, NameServerConfig, ServerType, ServiceConfig, Storage as StorageKind,
};
use crate::config::{ConfigStore, LaunchConfig, load_file};
use crate::daemon::pyro::DAEMON_OBJECT;
use crate::daemon::registrar::{Registrar, Registration};
use crate::daemon::{Daemon, DaemonSettings, HostedService, NativeObject};
use crate::loader::{Loader, PLUGIN_PATH_ENV, PluginSearchPath};
use crate::nameserver::storage::{DbmStore, MemoryStore, SqlStore, Store};
use crate::nameserver::{AutoCleaner, BroadcastResponder, NAMESERVER_OBJECT, NameServer, tags};
use crate::net::{self, Listener};
use crate::supervised::{self, Event, ServedService};

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
    let served: Vec<ServedService> = config
        .services
        .iter()
        .filter(|(_, s)| s.daemon == name)
        .map(|(service, _)| ServedService {
            name: service.to_owned(),
            uri: format!("PYRO:{service}@{location}"),
        })
        .collect();
    for service in &served {
        println!("service {}: {}", service.name, service.uri);
    }
    if !supervised {
        // Supervised, the lines above are the log already.
        tracing::info!("daemon {name} listening on {location}");
    }
    if supervised {
        daemon.observe_locks(Box::new(|service, holder| {
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
            },
            None => Event::Registrations { registrations },
        });
    };
    let registrar = Arc::new(
        Registrar::start(registrations(&config, name, &location), on_change)
            .context("cannot start registering with the name servers")?,
    );
    if supervised {
        let on_close = shutdown.clone();
        let nudge = Arc::clone(&registrar);
        supervised::watch_stdin(
            move |line| {
                if line == supervised::REGISTER_NOW {
                    nudge.nudge();
                }
            },
            move || on_close.shutdown(),
        )?;
    }
    daemon.serve(listener, &location, &shutdown);
    registrar.stop();
    tracing::info!("daemon {name} stopped");
    Ok(ExitCode::SUCCESS)
}

fn run_nameserver(
    context: &Context,
    name: &str,
    file: Option<&Path>,
    supervised: bool,
) -> anyhow::Result<ExitCode> {
    let config = launch_config(context, file)?;
    let Some(ns_config) = config.nameservers.get(name) else {
        let known: Vec<&str> = config.nameservers.names().collect();
        bail!(
            "no name server named {name:?} in the configuration (name servers: {})",
            known.join(", ")
        );
    };
    let store = open_store(context, name, ns_config)?;
    let nameserver = Arc::new(
        NameServer::open(store)
            .with_context(|| format!("name server {name}: cannot read its storage"))?,
    );
    let (listener, location) = bind_tcp(
        &format!("name server {name}"),
        &ns_config.host,
        ns_config.ns_port,
        None,
        0,
    )?;
    let uri = format!("PYRO:{NAMESERVER_OBJECT}@{location}");
    nameserver
        .register_self(&uri)
        .with_context(|| format!("name server {name}: cannot write its storage"))?;
    let object: Arc<dyn NativeObject> = nameserver.clone();
    let daemon = Daemon::with_objects(
        DaemonSettings {
            name: name.to_owned(),
            servertype: ServerType::Thread,
            lockable: false,
            max_connections: NAMESERVER_MAX_CONNECTIONS,
            max_message_size: NAMESERVER_MAX_MESSAGE_SIZE,
        },
        Vec::new(),
        vec![(NAMESERVER_OBJECT.to_owned(), object)],
    );
    let shutdown = daemon.shutdown_handle();
    let on_signal = shutdown.clone();
    ctrlc::set_handler(move || {
        tracing::info!("stopping");
        on_signal.shutdown();
    })
    .context("cannot install the signal handler")?;
    println!("name server {name} listening on {location}");
    println!("URI = {uri}");
    let _responder = if ns_config.broadcast {
        let host = net::resolve_host(ns_config.ns_bchost.as_deref().unwrap_or(&ns_config.host));
        let responder = BroadcastResponder::start(&host, ns_config.ns_bcport, uri.clone())
            .with_context(|| {
                format!(
                    "name server {name}: cannot answer broadcasts on {host}:{}",
                    ns_config.ns_bcport
                )
            })?;
        println!("broadcast responder on {}", responder.address());
        Some(responder)
    } else {
        None
    };
    let _cleaner = if ns_config.ns_autoclean > 0.0 {
        let period = Duration::from_secs_f64(ns_config.ns_autoclean);
        Some(
            AutoCleaner::start(Arc::clone(&nameserver), period)
                .context("cannot start autoclean")?,
        )
    } else {
        None
    };
    tracing::info!(
        "name server {name} listening on {location} with {} registrations",
        nameserver.count()
    );
    if supervised {
        let on_close = shutdown.clone();
        supervised::watch_stdin(|_| {}, move || on_close.shutdown())?;
        supervised::report(&Event::Ready {
            address: location.clone(),
            services: Vec::new(),
            registrations: Vec::new(),
        });
    }
    daemon.serve(listener, &location, &shutdown);
    tracing::info!("name server {name} stopped");
    Ok(ExitCode::SUCCESS)
}

/// The names daemon `daemon` keeps registered: each service with the name
/// servers it lists, and the daemon itself (its `Pyro.Daemon` object) with
/// the daemon's name servers, as PyroLab registers them.
fn registrations(config: &LaunchConfig, daemon: &str, location: &str) -> Vec<Registration> {
    let Some(daemon_config) = config.daemons.get(daemon) else {
        return Vec::new();
    };
    let with = |ns_name: &str, name: &str, uri: String, metadata: BTreeSet<String>| {
        let ns = config.nameservers.get(ns_name)?;
        Some(Registration {
            nameserver: ns_name.to_owned(),
            host: net::resolve_host(&ns.host),
            port: ns.ns_port,
            name: name.to_owned(),
            uri,
            metadata,
        })
    };
    let services: Vec<(&str, &ServiceConfig)> = config
        .services
        .iter()
        .filter(|(_, s)| s.daemon == daemon)
        .collect();
    let mut registrations = Vec::new();
    for (name, service) in &services {
        let metadata = tags::for_service(
            &service.module,
            &service.classname,
            pyrolab_plugin_api::PLUGIN_API_VERSION,
            &service.description,
        );
        for ns in &service.nameservers {
            registrations.extend(with(
                ns,
                name,
                format!("PYRO:{name}@{location}"),
                metadata.clone(),
            ));
        }
    }
    let served: Vec<&str> = services.iter().map(|(name, _)| *name).collect();
    let metadata = tags::for_daemon(&served);
    for ns in &daemon_config.nameservers {
        registrations.extend(with(
            ns,
            daemon,
            format!("PYRO:{DAEMON_OBJECT}@{location}"),
            metadata.clone(),
        ));
    }
    registrations
}

/// A name server's connections at once (its clients come and go quickly).
const NAMESERVER_MAX_CONNECTIONS: usize = 1024;
/// Name-server messages are small; anything bigger is not a name-server
/// call.
const NAMESERVER_MAX_MESSAGE_SIZE: u64 = 1 << 20;

fn open_store(
    context: &Context,
    name: &str,
    config: &NameServerConfig,
) -> anyhow::Result<Box<dyn Store>> {
    if config.storage == StorageKind::Memory {
        return Ok(Box::new(MemoryStore));
    }
    let path = match (&config.storage_file, &context.data_dir) {
        (Some(file), _) => file.clone(),
        (None, Some(data_dir)) => config
            .storage_path(name, data_dir)
            .expect("file storage has a path"),
        (None, None) => bail!(
            "name server {name}: {} storage needs storage_file, --data-dir or PYROLAB_HOME",
            config.storage.as_str()
        ),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let store: Box<dyn Store> = match config.storage {
        StorageKind::Sql => Box::new(SqlStore::open(&path)?),
        StorageKind::Dbm => Box::new(DbmStore::open(&path)?),
        StorageKind::Memory => unreachable!("handled above"),
    };
    tracing::info!(
        "name server {name}: registrations kept in {}",
        path.display()
    );
    Ok(store)
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
    bind_tcp(
        &format!("daemon {name}"),
        &config.host,
        config.port,
        config.nathost.as_deref(),
        config.natport,
    )
}

/// Binds a TCP port for `what`; returns the listener and the `host:port`
/// clients use: behind NAT that is `nathost:natport` (`natport` 0 = the
/// bound port), since URIs must carry the address clients can reach.
fn bind_tcp(
    what: &str,
    host: &str,
    port: u16,
    nathost: Option<&str>,
    natport: u16,
) -> anyhow::Result<(Listener, String)> {
    let host = net::resolve_host(host);
    let addresses: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .with_context(|| format!("{what}: cannot resolve host {host:?}"))?
        .collect();
    let listener = TcpListener::bind(&addresses[..])
        .with_context(|| format!("{what}: cannot listen on {host}:{port}"))?;
    let bound = listener.local_addr()?.port();
    let (host, port) = match nathost {
        Some(nathost) => (
            nathost.to_owned(),
            if natport == 0 { bound } else { natport },
        ),
        None => (host, bound),
    };
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host
    };
    Ok((Listener::Tcp(listener), format!("{host}:{port}")))
}
