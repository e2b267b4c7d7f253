//! A daemon: serves a group of services on one port, speaking Pyro5's
//! protocol.
//!
//! Each connection has its own thread, as in Pyro5's threaded server. On a
//! `thread` daemon calls run on those threads, so calls from different
//! connections run concurrently and blocking driver code never holds up
//! anyone else's I/O. On a `multiplex` daemon every call is handed to one
//! executor thread and runs there, one at a time, in arrival order.
//!
//! # Layout
//!
//! - `mod.rs`: [`Daemon`]: accepting, limits, shutdown.
//! - `launch.rs`: starting a daemon of the launch configuration: loading
//!   its services, binding, serving with its names registered.
//! - `connection.rs`: one client connection: handshake, messages, replies.
//! - `dispatch.rs`: running calls: services, `Pyro.Daemon`, batches,
//!   oneway calls, the executor of a multiplex daemon.
//! - `lock.rs`: service locks of a lockable daemon.
//! - `service.rs`: [`HostedService`] and instance modes.
//! - `pyro.rs`: Pyro5's payload objects: calls, metadata, exceptions.
//! - `registrar.rs`: keeping the daemon's names registered with its name
//!   servers.

mod connection;
mod dispatch;
pub mod launch;
mod lock;
pub mod pyro;
pub mod registrar;
mod service;

pub use lock::LockObserver;

/// An object the host implements itself (the name server's
/// `Pyro.NameServer`), served next to driver services.
pub trait NativeObject: Send + Sync {
    /// Pyro5 metadata for the handshake: `methods`, `oneway`, `attrs`.
    fn metadata(&self) -> Value;
    /// Runs a call. An error is the exception to send, built with
    /// [`pyro::exception`].
    fn call(&self, method: &str, args: CallArgs) -> Result<Value, Value>;
}

use crate::sync::LockUnpoisoned;
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pyrolab_plugin_api::{CallArgs, Value};
pub use service::{HostedService, Sessions};

use crate::config::schema::ServerType;
use crate::net::{ListenAddress, Listener, Stream};
use crate::wire::message::{Message, kind};
use crate::wire::serializer;
use dispatch::Executor;

/// How a daemon runs.
#[derive(Clone, Debug)]
pub struct DaemonSettings {
    /// The daemon's name in the configuration.
    pub name: String,
    /// `thread` or `multiplex`.
    pub servertype: ServerType,
    /// Whether clients can lock services (`LockableDaemon`).
    pub lockable: bool,
    /// Connections served at once; more are refused with CONNECTFAIL.
    pub max_connections: usize,
    /// The largest message accepted, in bytes.
    pub max_message_size: u64,
}

/// A daemon serving services.
pub struct Daemon {
    shared: Arc<Shared>,
}

struct Shared {
    settings: DaemonSettings,
    // Looked up on every call: a few names, compared faster than hashed.
    services: BTreeMap<String, HostedService>,
    objects: BTreeMap<String, Arc<dyn NativeObject>>,
    /// `host:port` as clients address it.
    location: Mutex<String>,
    executor: Option<Executor>,
    locks: lock::Locks,
    active: AtomicUsize,
    stopping: AtomicBool,
    /// Open connections, so shutdown can stop their reading.
    connections: Mutex<HashMap<u64, Stream>>,
    next_connection: AtomicU64,
}

/// Stops a running [`Daemon::serve`] from another thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
    address: Arc<Mutex<Option<ListenAddress>>>,
}

impl ShutdownHandle {
    /// Asks the daemon to stop: it accepts no more connections, lets calls
    /// in progress finish and reply, then `serve` returns.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection to ourselves.
        if let Some(address) = &*self.address.lock_unpoisoned() {
            address.poke();
        }
    }
}

impl Daemon {
    /// A daemon for `services`.
    pub fn new(settings: DaemonSettings, services: Vec<HostedService>) -> Self {
        Daemon::with_objects(settings, services, Vec::new())
    }

    /// A daemon for `services` and the host's own `objects`, each under
    /// its object id.
    pub fn with_objects(
        settings: DaemonSettings,
        services: Vec<HostedService>,
        objects: Vec<(String, Arc<dyn NativeObject>)>,
    ) -> Self {
        let executor = match settings.servertype {
            ServerType::Multiplex => Some(Executor::start(&settings.name)),
            ServerType::Thread => None,
        };
        let services = services
            .into_iter()
            .map(|service| (service.name().to_owned(), service))
            .collect();
        Daemon {
            shared: Arc::new(Shared {
                settings,
                services,
                objects: objects.into_iter().collect(),
                location: Mutex::new(String::new()),
                executor,
                locks: lock::Locks::default(),
                active: AtomicUsize::new(0),
                stopping: AtomicBool::new(false),
                connections: Mutex::new(HashMap::new()),
                next_connection: AtomicU64::new(1),
            }),
        }
    }

    /// Has `observer` told of every change of a service lock (lockable
    /// daemons only have locks).
    pub fn observe_locks(&self, observer: LockObserver) {
        self.shared.locks.observe(observer);
    }

    /// A handle that stops [`serve`](Daemon::serve).
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            shared: Arc::clone(&self.shared),
            address: Arc::new(Mutex::new(None)),
        }
    }

    /// Serves clients on `listener` until `shutdown` is triggered. `location`
    /// is the `host:port` (or `./u:path`) clients use; it appears in
    /// `Pyro.Daemon.info()`.
    pub fn serve(&self, listener: Listener, location: &str, shutdown: &ShutdownHandle) {
        *self.shared.location.lock_unpoisoned() = location.to_owned();
        *shutdown.address.lock_unpoisoned() = listener.address().ok();
        // A shutdown requested before the address was recorded could not
        // wake `accept`: it is seen here instead.
        if self.shared.stopping.load(Ordering::SeqCst) {
            self.drain();
            return;
        }
        loop {
            let stream = listener.accept();
            if self.shared.stopping.load(Ordering::SeqCst) {
                break;
            }
            match stream {
                Ok(stream) => self.accept(stream),
                Err(err) => {
                    // Typically out of file descriptors: back off instead of
                    // spinning, and keep serving the connections we have.
                    tracing::warn!("accepting a connection failed: {err}");
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        self.drain();
    }

    fn accept(&self, stream: Stream) {
        let shared = Arc::clone(&self.shared);
        let admitted =
            shared.active.fetch_add(1, Ordering::SeqCst) < shared.settings.max_connections;
        let spawned = thread::Builder::new()
            .name(format!("{}-conn", shared.settings.name))
            .spawn(move || {
                if admitted {
                    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
                    if let Ok(clone) = stream.try_clone() {
                        shared.lock_connections().insert(id, clone);
                    }
                    connection::run(&shared, stream, id);
                    shared.lock_connections().remove(&id);
                    shared.locks.release_connection(id);
                } else {
                    refuse(&shared, stream);
                }
                shared.active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            tracing::error!("cannot start a connection thread: {err}");
            self.shared.active.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Lets connections finish what they are doing: their reading side is
    /// closed, so each ends after replying to the call in progress.
    fn drain(&self) {
        for stream in self.shared.lock_connections().values() {
            let _ = stream.shutdown(Shutdown::Read);
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.shared.active.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        let left = self.shared.active.load(Ordering::SeqCst);
        if left > 0 {
            tracing::warn!("{left} connections still busy after 30 s; stopping anyway");
        }
    }
}

impl Shared {
    /// Methods the daemon adds to every service's metadata.
    fn added_methods(&self) -> &'static [&'static str] {
        if self.settings.lockable {
            lock::LOCK_METHODS
        } else {
            &[]
        }
    }

    fn lock_connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Stream>> {
        self.connections.lock_unpoisoned()
    }
}

/// Answers a connection over the limit: its CONNECT gets a CONNECTFAIL
/// saying why, so the client reports the reason instead of hanging.
fn refuse(shared: &Shared, mut stream: Stream) {
    let max = shared.settings.max_connections;
    tracing::warn!(
        peer = %stream.peer(),
        "refusing a connection: already serving the maximum of {max}"
    );
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(request) = Message::read_from(&mut stream, shared.settings.max_message_size) else {
        return;
    };
    let Some(serializer) = serializer::by_id(request.serializer_id) else {
        return;
    };
    let reason = format!("too many connections: this daemon serves at most {max} at once");
    if let Ok(payload) = serializer.serialize(&reason.into()) {
        let reply = Message::new(
            kind::CONNECTFAIL,
            request.serializer_id,
            0,
            request.seq,
            payload,
        );
        let _ = stream.write_all(&reply.encode(false));
    }
}
