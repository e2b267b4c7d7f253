//! Starting a name server of the launch configuration, the one way the
//! CLI (`run nameserver`, which the manager runs) and tests do it:
//!
//! 1. [`Launch::prepare`] opens its storage and builds the registry;
//! 2. [`bind`] binds its socket (where a transport such as TLS will wrap
//!    the listener);
//! 3. [`Launch::start`] registers the name server itself, starts its
//!    broadcast responder and autoclean as configured;
//! 4. [`Running::serve`] serves until the stop signal.

use std::sync::Arc;
use std::time::Duration;

use crate::config::LaunchConfig;
use crate::config::schema::{NameServerConfig, ServerType};
use crate::daemon::{Daemon, DaemonSettings, NativeObject, ShutdownHandle, timeout_from_seconds};
use crate::data_dir::DataDir;
use crate::net::{self, BindError, Bound};

use super::storage::{self, StoreError};
use super::{AutoCleaner, BroadcastResponder, NAMESERVER_OBJECT, NameServer};

/// Name-server messages are small; anything bigger is not a name-server
/// call.
const MAX_MESSAGE_SIZE: u64 = 1 << 20;
/// A listing of a large lab is large: replies are held to Pyro5's default
/// limit, which stock clients accept.
const MAX_REPLY_SIZE: u64 = 1 << 30;
/// All large name-server messages at once: 64 of the largest.
const MAX_MESSAGE_MEMORY: u64 = 64 << 20;
/// Lookups and registrations at once: each is short, so a few workers
/// serve many clients.
const WORKERS: usize = 16;

/// Why a name server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The configuration has no name server of that name.
    #[error("no name server named {name:?} in the configuration (name servers: {})", known.join(", "))]
    UnknownNameServer {
        /// The name asked for.
        name: String,
        /// The name servers it has.
        known: Vec<String>,
    },
    /// Its storage could not be opened, read or written.
    #[error("name server {name}: {what} its storage: {source}")]
    Storage {
        /// The name server.
        name: String,
        /// `cannot read`, `cannot write`, `cannot open`.
        what: &'static str,
        /// Why.
        source: StoreError,
    },
    /// Its socket could not be bound.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A background part (broadcast responder, autoclean) could not start.
    #[error("name server {name}: {what}: {source}")]
    Start {
        /// The name server.
        name: String,
        /// What could not start.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A name server of the configuration, its registry loaded, not yet
/// serving.
pub struct Launch {
    name: String,
    config: NameServerConfig,
    nameserver: Arc<NameServer>,
}

impl Launch {
    /// Opens name server `name`'s storage (file stores in `data_dir` unless
    /// it names a file) and loads what it holds.
    pub fn prepare(
        config: &LaunchConfig,
        name: &str,
        data_dir: Option<&DataDir>,
    ) -> Result<Launch, LaunchError> {
        let ns_config = nameserver_config(config, name)?;
        let storage_error = |what| {
            let name = name.to_owned();
            move |source| LaunchError::Storage { name, what, source }
        };
        let store =
            storage::open(name, ns_config, data_dir).map_err(storage_error("cannot open"))?;
        let nameserver = NameServer::open(store)
            .map_err(storage_error("cannot read"))?
            .with_rights(ns_config.access.clone());
        Ok(Launch {
            name: name.to_owned(),
            config: ns_config.clone(),
            nameserver: Arc::new(nameserver),
        })
    }

    /// Registers the name server itself at `bound`'s location, and starts
    /// its broadcast responder and autoclean as configured.
    pub fn start(self, bound: Bound) -> Result<Running, LaunchError> {
        let Launch {
            name,
            config,
            nameserver,
        } = self;
        let uri = format!("PYRO:{NAMESERVER_OBJECT}@{}", bound.location);
        nameserver
            .register_self(&uri)
            .map_err(|source| LaunchError::Storage {
                name: name.clone(),
                what: "cannot write",
                source,
            })?;
        let start_error = |what: String| {
            let name = name.clone();
            move |source| LaunchError::Start { name, what, source }
        };
        let responder = if config.broadcast {
            let host = net::resolve_host(config.ns_bchost.as_deref().unwrap_or(&config.host));
            let what = format!("cannot answer broadcasts on {host}:{}", config.ns_bcport);
            Some(
                BroadcastResponder::start(&host, config.ns_bcport, uri.clone())
                    .map_err(start_error(what))?,
            )
        } else {
            None
        };
        let cleaner = if config.ns_autoclean > 0.0 {
            let period = Duration::from_secs_f64(config.ns_autoclean);
            Some(
                AutoCleaner::start(Arc::clone(&nameserver), period)
                    .map_err(start_error("cannot start autoclean".to_owned()))?,
            )
        } else {
            None
        };
        let object: Arc<dyn NativeObject> = nameserver.clone();
        let daemon = Daemon::with_objects(
            DaemonSettings {
                name: name.clone(),
                servertype: ServerType::Thread,
                lockable: false,
                threadpool_size: WORKERS,
                max_connections: config.max_connections,
                max_message_size: MAX_MESSAGE_SIZE,
                max_reply_size: MAX_REPLY_SIZE,
                max_message_memory: MAX_MESSAGE_MEMORY,
                handshake_timeout: timeout_from_seconds(config.handshake_timeout),
                idle_timeout: timeout_from_seconds(config.idle_timeout),
                comm_timeout: None,
                // The name server's methods return no streams.
                streams: Default::default(),
                metrics: true,
            },
            Vec::new(),
            vec![(NAMESERVER_OBJECT.to_owned(), object)],
        );
        Ok(Running {
            nameserver,
            daemon,
            bound,
            uri,
            _responder: responder,
            _cleaner: cleaner,
        })
    }
}

/// A started name server, ready to serve.
pub struct Running {
    nameserver: Arc<NameServer>,
    daemon: Daemon,
    bound: Bound,
    uri: String,
    _responder: Option<BroadcastResponder>,
    _cleaner: Option<AutoCleaner>,
}

impl Running {
    /// Its URI, `PYRO:Pyro.NameServer@HOST:PORT`.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Where clients reach it (`host:port`).
    pub fn location(&self) -> &str {
        &self.bound.location
    }

    /// Where its broadcast responder answers, if it has one.
    pub fn broadcast_address(&self) -> Option<String> {
        self._responder.as_ref().map(|r| r.address().to_string())
    }

    /// How many names it holds now.
    pub fn count(&self) -> usize {
        self.nameserver.count()
    }

    /// A handle that stops [`Running::serve`].
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.daemon.shutdown_handle()
    }

    /// Serves until `shutdown` is triggered.
    pub fn serve(self, shutdown: &ShutdownHandle) {
        self.daemon.serve(self.bound, shutdown);
    }
}

/// Binds name server `name`'s socket (its host and `ns_port`), with its
/// TLS (files found in `data_dir` unless the configuration names them).
/// An address beyond loopback without TLS is refused unless `insecure`.
pub fn bind(
    config: &LaunchConfig,
    name: &str,
    data_dir: Option<&DataDir>,
) -> Result<Bound, LaunchError> {
    let ns = nameserver_config(config, name)?;
    let what = format!("name server {name}");
    let files = crate::daemon::launch::tls_files(&what, ns.tls.as_ref(), name, data_dir)?;
    let bound = net::bind_tcp(&what, &ns.host, ns.ns_port, None, 0)?.with_tls(&what, files)?;
    bound.check_exposure(&what, ns.insecure)?;
    Ok(bound)
}

fn nameserver_config<'a>(
    config: &'a LaunchConfig,
    name: &str,
) -> Result<&'a NameServerConfig, LaunchError> {
    config
        .nameservers
        .get(name)
        .ok_or_else(|| LaunchError::UnknownNameServer {
            name: name.to_owned(),
            known: config.nameservers.names().map(str::to_owned).collect(),
        })
}
