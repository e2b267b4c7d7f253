//! Starting a daemon of the launch configuration, the one way the CLI
//! (`run daemon`, which the manager runs) and tests do it, after
//! mini-redis's `server::run(listener, shutdown)`:
//!
//! 1. [`Launch::prepare`] loads the daemon's services (every failure
//!    reported, none half-loaded) and builds the [`Daemon`];
//! 2. [`bind`] binds its socket (where a transport such as TLS will wrap
//!    the listener);
//! 3. [`Launch::serve`] serves on that listener until the stop signal,
//!    keeping the daemon's names registered meanwhile.

use crate::config::LaunchConfig;
use crate::config::schema::{DaemonClass, DaemonConfig};
use crate::data_dir::DataDir;
use crate::loader::{Loader, PluginSearchPath};
use crate::net::{self, BindError, Bound};
use crate::supervised::ServedService;

use super::registrar::{Registrar, Registration, registrations_for};
use super::{Daemon, DaemonSettings, HostedService, LockObserver, ShutdownHandle, StreamSettings};

/// Why a daemon could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The configuration has no daemon of that name.
    #[error("no daemon named {name:?} in the configuration (daemons: {})", known.join(", "))]
    UnknownDaemon {
        /// The name asked for.
        name: String,
        /// The daemons it has.
        known: Vec<String>,
    },
    /// Some of its services could not be loaded (each failure is listed).
    #[error("daemon {daemon}: {} of its services could not be loaded", failures.len())]
    Services {
        /// The daemon.
        daemon: String,
        /// `service NAME: why`, one per service that failed.
        failures: Vec<String>,
    },
    /// Its socket could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
}

/// A daemon of the configuration, its services loaded, not yet serving.
pub struct Launch {
    name: String,
    daemon: Daemon,
    config: LaunchConfig,
}

impl Launch {
    /// Loads daemon `name`'s services from `search_path` and builds the
    /// daemon. A `single` service's driver is constructed now, so its
    /// constructor's error stops the daemon from starting.
    pub fn prepare(
        config: &LaunchConfig,
        name: &str,
        search_path: &PluginSearchPath,
    ) -> Result<Launch, LaunchError> {
        let daemon_config = daemon_config(config, name)?;
        let services = load_services(config, name, search_path)?;
        let daemon = Daemon::new(settings(name, daemon_config), services);
        Ok(Launch {
            name: name.to_owned(),
            daemon,
            config: config.clone(),
        })
    }

    /// A handle that stops [`Launch::serve`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.daemon.shutdown_handle()
    }

    /// Has `observer` told of every change of a service lock.
    pub fn observe_locks(&self, observer: LockObserver) {
        self.daemon.observe_locks(observer);
    }

    /// The services it serves at `location`, with their URIs.
    pub fn services(&self, location: &str) -> Vec<ServedService> {
        self.config
            .services
            .iter()
            .filter(|(_, s)| s.daemon == self.name)
            .map(|(service, _)| ServedService {
                name: service.to_owned(),
                uri: format!("PYRO:{service}@{location}"),
            })
            .collect()
    }

    /// The names it keeps registered when serving at `location`: each
    /// service with the name servers it lists, and itself with its own.
    pub fn registrations(&self, location: &str) -> Vec<Registration> {
        registrations_for(&self.config, &self.name, location)
    }

    /// Serves on `bound` until `shutdown` is triggered; calls in progress
    /// finish. `registrar` (started by the caller, who may nudge it)
    /// keeps the names registered meanwhile and removes them after.
    pub fn serve(self, bound: Bound, shutdown: &ShutdownHandle, registrar: &Registrar) {
        self.daemon.serve(bound, shutdown);
        registrar.stop();
    }
}

/// Binds daemon `name`'s socket: its Unix socket, or its TCP host and
/// port (with its NAT address in the location clients use), with its TLS
/// (files found in `data_dir` unless the configuration names them). A
/// TCP socket beyond loopback without TLS is refused unless `insecure`.
pub fn bind(
    config: &LaunchConfig,
    name: &str,
    data_dir: Option<&DataDir>,
) -> Result<Bound, LaunchError> {
    let daemon = daemon_config(config, name)?;
    let what = format!("daemon {name}");
    let files = tls_files(&what, daemon.tls.as_ref(), name, data_dir)?;
    let bound = match &daemon.unixsocket {
        Some(path) => net::bind_unix(&what, path)?,
        None => net::bind_tcp(
            &what,
            &daemon.host,
            daemon.port,
            daemon.nathost.as_deref(),
            daemon.natport,
        )?,
    };
    let bound = bound.with_tls(&what, files)?;
    bound.check_exposure(&what, daemon.insecure)?;
    Ok(bound)
}

/// What daemon `name` calls others (its name servers) with: its own
/// certificate and CA, when it has TLS.
pub fn client_tls(
    config: &LaunchConfig,
    name: &str,
    data_dir: Option<&DataDir>,
) -> Result<Option<crate::tls::ClientTls>, LaunchError> {
    let daemon = daemon_config(config, name)?;
    let what = format!("daemon {name}");
    let Some(files) = tls_files(&what, daemon.tls.as_ref(), name, data_dir)? else {
        return Ok(None);
    };
    crate::tls::ClientTls::for_component(&files)
        .map(Some)
        .map_err(|err| {
            LaunchError::Bind(BindError::Tls {
                what,
                reason: err.to_string(),
            })
        })
}

/// The files of a component's TLS, if it has TLS.
pub(crate) fn tls_files(
    what: &str,
    tls: Option<&crate::config::schema::TlsConfig>,
    name: &str,
    data_dir: Option<&DataDir>,
) -> Result<Option<crate::tls::ServerTlsFiles>, BindError> {
    tls.map(|tls| tls.files(name, data_dir))
        .transpose()
        .map_err(|err| BindError::Tls {
            what: what.to_owned(),
            reason: err.to_string(),
        })
}

fn daemon_config<'a>(
    config: &'a LaunchConfig,
    name: &str,
) -> Result<&'a DaemonConfig, LaunchError> {
    config
        .daemons
        .get(name)
        .ok_or_else(|| LaunchError::UnknownDaemon {
            name: name.to_owned(),
            known: config.daemons.names().map(str::to_owned).collect(),
        })
}

fn settings(name: &str, config: &DaemonConfig) -> DaemonSettings {
    DaemonSettings {
        name: name.to_owned(),
        servertype: config.servertype,
        lockable: config.classname == DaemonClass::LockableDaemon,
        threadpool_size: config.threadpool_size,
        max_connections: config.max_connections,
        max_message_size: config.max_message_size,
        max_reply_size: config.max_message_size,
        max_message_memory: config.max_message_memory,
        handshake_timeout: super::timeout_from_seconds(config.handshake_timeout),
        idle_timeout: super::timeout_from_seconds(config.idle_timeout),
        comm_timeout: super::timeout_from_seconds(config.commtimeout),
        streams: StreamSettings {
            enabled: config.iter_streaming,
            lifetime: super::timeout_from_seconds(config.iter_stream_lifetime),
            linger: super::timeout_from_seconds(config.iter_stream_linger),
            max_per_connection: config.max_item_streams_per_connection,
            max_total: config.max_item_streams,
        },
        metrics: config.metrics,
    }
}

/// Loads every service of the daemon; all failures are collected, and any
/// one stops the daemon from starting half-equipped.
fn load_services(
    config: &LaunchConfig,
    daemon: &str,
    search_path: &PluginSearchPath,
) -> Result<Vec<HostedService>, LaunchError> {
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
                .map(|hosted| match service.pyrolab_service {
                    true => hosted,
                    false => hosted.without_service_methods(),
                })
                .map(|hosted| hosted.with_rights(service.access.clone()))
            });
        match loaded {
            Ok(hosted) => services.push(hosted),
            Err(err) => failures.push(format!("service {name}: {err}")),
        }
    }
    if failures.is_empty() {
        Ok(services)
    } else {
        Err(LaunchError::Services {
            daemon: daemon.to_owned(),
            failures,
        })
    }
}
