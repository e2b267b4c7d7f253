//! A daemon: serves a group of services on one port, speaking Pyro5's
//! protocol.
//!
//! Connections wait for their sockets in an event loop, holding no thread
//! (an idle connection costs a few hundred bytes). Whichever worker a
//! ready socket wakes reads the message, runs the call there and replies.
//! A `thread` daemon has up to `threadpool_size` workers, so calls from
//! different connections run concurrently and a blocking driver call
//! holds up only its own connection; a `multiplex` daemon has one, so its
//! calls run one at a time, in arrival order.
//!
//! # Layout
//!
//! - `mod.rs`: [`Daemon`]: accepting, limits, shutdown.
//! - `launch.rs`: starting a daemon of the launch configuration: loading
//!   its services, binding, serving with its names registered.
//! - `reactor.rs`: the event loop and its pool of workers.
//! - `poller.rs`: waiting for many sockets at once (epoll).
//! - `connection.rs`: one client connection: handshake, messages, replies.
//! - `dispatch.rs`: running calls: services, `Pyro.Daemon`, batches,
//!   oneway calls.
//! - `lock.rs`: service locks of a lockable daemon.
//! - `metrics.rs`: call metrics (`Pyro.Daemon.metrics()`).
//! - `service.rs`: [`HostedService`] and instance modes.
//! - `pyro.rs`: Pyro5's payload objects: calls, metadata, exceptions.
//! - `registrar.rs`: keeping the daemon's names registered with its name
//!   servers.

mod connection;
mod dispatch;
pub mod launch;
mod lock;
pub mod metrics;
mod poller;
pub mod pyro;
mod reactor;
pub mod registrar;
mod service;
mod streams;

pub use lock::LockObserver;
pub use streams::StreamSettings;

/// An object the host implements itself (the name server's
/// `Pyro.NameServer`), served next to driver services.
pub trait NativeObject: Send + Sync {
    /// Pyro5 metadata for the handshake: `methods`, `oneway`, `attrs`.
    fn metadata(&self) -> Value;
    /// Runs a call by `caller`. An error is the exception to send, built
    /// with [`pyro::exception`].
    fn call(&self, method: &str, args: CallArgs, caller: &Caller) -> Result<Value, Value>;
}

use crate::sync::LockUnpoisoned;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyrolab_plugin_api::{CallArgs, Value};
pub use service::{HostedService, Sessions};

use crate::access::Caller;
use crate::config::schema::ServerType;
use crate::net::Bound;

/// How a daemon runs.
#[derive(Clone, Debug)]
pub struct DaemonSettings {
    /// The daemon's name in the configuration.
    pub name: String,
    /// `thread` or `multiplex`.
    pub servertype: ServerType,
    /// Whether clients can lock services (`LockableDaemon`).
    pub lockable: bool,
    /// On a `thread` daemon, the most calls that run at once (workers);
    /// a `multiplex` daemon has one.
    pub threadpool_size: usize,
    /// Connections served at once; more are refused with CONNECTFAIL.
    /// Connections still in their handshake hold no place.
    pub max_connections: usize,
    /// The largest message accepted, in bytes.
    pub max_message_size: u64,
    /// The largest reply sent, in bytes (annotations and payload): a call
    /// whose reply is larger closes its connection, as in Pyro5 (whose one
    /// `MAX_MESSAGE_SIZE` bounds both ways).
    pub max_reply_size: u64,
    /// The most memory large incoming messages may take at once, across
    /// connections (see [`connection::BUDGETED_FROM`]).
    pub max_message_memory: u64,
    /// How long a new connection has to complete its handshake before it
    /// is closed (`None`: as long as it likes).
    pub handshake_timeout: Option<Duration>,
    /// How long a connection may stay silent between calls before it is
    /// closed (`None`: for ever, as in Pyro5).
    pub idle_timeout: Option<Duration>,
    /// How long a connection may stay silent while no call of its runs,
    /// between calls or inside a message, before it is closed (Pyro5's
    /// `COMMTIMEOUT`; `None`: for ever).
    pub comm_timeout: Option<Duration>,
    /// How methods' item streams are served.
    pub streams: StreamSettings,
    /// Whether calls and connections are counted
    /// (`Pyro.Daemon.metrics()`).
    pub metrics: bool,
}

/// A timeout as configurations give it, in seconds: 0 for none.
pub fn timeout_from_seconds(seconds: f64) -> Option<Duration> {
    (seconds > 0.0).then(|| Duration::from_secs_f64(seconds))
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
    locks: lock::Locks,
    stopping: AtomicBool,
    /// Wakes the event loop at shutdown, once it runs.
    waker: Mutex<Option<Arc<poller::Waker>>>,
    next_connection: AtomicU64,
    /// Bytes large incoming messages hold now, across connections.
    message_memory: AtomicU64,
    /// Calls being run now (driver calls and daemon methods alike).
    calls_in_progress: AtomicU64,
    /// Where a multiplex daemon runs oneway calls.
    oneway_threads: OnewayThreads,
    /// The item streams clients are reading.
    streams: streams::Streams,
    /// What its calls and connections count up to (shared with oneway
    /// calls running apart).
    metrics: Arc<metrics::DaemonMetrics>,
}

/// Where a `multiplex` daemon runs oneway calls: each on a thread of its
/// own, as Pyro5 does (`ONEWAY_THREADED`), so the calls after it are not
/// held up, at most [`OnewayThreads::MAX`] at once; beyond that a oneway
/// call runs on the daemon's worker, which meanwhile reads nothing (the
/// back-pressure that bounds a flood of them).
#[derive(Default)]
struct OnewayThreads {
    running: Arc<std::sync::atomic::AtomicUsize>,
}

impl OnewayThreads {
    /// Oneway calls of a multiplex daemon running at once, at most.
    const MAX: usize = 16;

    fn run(&self, job: dispatch::Job) {
        let running = &self.running;
        let free = running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < Self::MAX).then_some(n + 1)
            })
            .is_ok();
        if !free {
            job();
            return;
        }
        let done = Arc::clone(running);
        // Kept here too, so that a thread that cannot start leaves the
        // call to run in line.
        let job = Arc::new(Mutex::new(Some(job)));
        let taken = Arc::clone(&job);
        let spawned = std::thread::Builder::new()
            .name("oneway".to_owned())
            .spawn(move || {
                if let Some(job) = taken.lock_unpoisoned().take() {
                    job();
                }
                done.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            tracing::warn!("cannot start a thread for a oneway call ({err}); running it in line");
            running.fetch_sub(1, Ordering::SeqCst);
            if let Some(job) = job.lock_unpoisoned().take() {
                job();
            }
        }
    }
}

/// Stops a running [`Daemon::serve`] from another thread.
#[derive(Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

impl ShutdownHandle {
    /// How many calls the daemon is running now: a daemon that does not
    /// answer while it runs some is busy, one that runs none is stuck
    /// (the manager's liveness probe tells them apart so).
    pub fn calls_in_progress(&self) -> u64 {
        self.shared.calls_in_progress.load(Ordering::SeqCst)
    }

    /// Asks the daemon to stop: it accepts no more connections, lets calls
    /// in progress finish and reply, then `serve` returns.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Some(waker) = &*self.shared.waker.lock_unpoisoned() {
            waker.signal();
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
        let services: BTreeMap<String, HostedService> = services
            .into_iter()
            .map(|service| (service.name().to_owned(), service))
            .collect();
        let objects: BTreeMap<String, Arc<dyn NativeObject>> = objects.into_iter().collect();
        let metered =
            services
                .values()
                .map(|service| {
                    let metadata = service.metadata(added_methods(settings.lockable));
                    (service.name().to_owned(), metrics::method_names(&metadata))
                })
                .chain(objects.iter().map(|(name, object)| {
                    (name.clone(), metrics::method_names(&object.metadata()))
                }));
        let metrics = metrics::DaemonMetrics::new(&settings.name, settings.metrics, metered);
        let settings_streams = settings.streams.clone();
        Daemon {
            shared: Arc::new(Shared {
                settings,
                services,
                objects,
                location: Mutex::new(String::new()),
                locks: lock::Locks::default(),
                stopping: AtomicBool::new(false),
                waker: Mutex::new(None),
                next_connection: AtomicU64::new(1),
                message_memory: AtomicU64::new(0),
                calls_in_progress: AtomicU64::new(0),
                oneway_threads: OnewayThreads::default(),
                streams: streams::Streams::new(settings_streams),
                metrics: Arc::new(metrics),
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
        }
    }

    /// Serves clients on `listener` until `shutdown` is triggered, on this
    /// thread and the workers it starts. `location` is the `host:port` (or
    /// `./u:path`) clients use; it appears in `Pyro.Daemon.info()`.
    pub fn serve(&self, bound: Bound, shutdown: &ShutdownHandle) {
        debug_assert!(Arc::ptr_eq(&self.shared, &shutdown.shared));
        *self.shared.location.lock_unpoisoned() = bound.location;
        if let Err(err) = reactor::Reactor::run(Arc::clone(&self.shared), bound.listener, bound.tls)
        {
            tracing::error!("daemon {}: cannot serve: {err}", self.shared.settings.name);
        }
    }
}

impl Shared {
    /// Methods the daemon adds to every service's metadata.
    fn added_methods(&self) -> &'static [&'static str] {
        added_methods(self.settings.lockable)
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Counts a call as running until the guard is dropped.
    fn call_running(&self) -> CallRunning<'_> {
        self.calls_in_progress.fetch_add(1, Ordering::SeqCst);
        CallRunning(&self.calls_in_progress)
    }
}

/// Methods a daemon adds to every service's metadata: a lockable one's
/// lock methods.
fn added_methods(lockable: bool) -> &'static [&'static str] {
    match lockable {
        true => lock::LOCK_METHODS,
        false => &[],
    }
}

/// A call counted in [`Shared::calls_in_progress`] while it lives (a
/// panicking call is uncounted too).
struct CallRunning<'a>(&'a AtomicU64);

impl Drop for CallRunning<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
