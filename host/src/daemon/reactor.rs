//! The event loop: connections wait for their sockets in one [`Poller`],
//! holding no thread, and a small pool of workers serves whichever is
//! ready.
//!
//! Every worker waits on the poller itself, and the one an event wakes
//! reads the message, runs the call and writes the reply: there is no
//! hand-off between an I/O thread and a call thread, so a call costs the
//! same wake-up as on a thread of its own. A `thread` daemon has up to
//! `threadpool_size` workers (Pyro5's meaning: that many calls at once);
//! a new one starts when a worker begins a call while none is idle. The first
//! [`MIN_WORKERS`] start with the daemon and stay; those started beyond them retire after
//! [`WORKER_IDLE`] without an event. A `multiplex`
//! daemon has exactly one, the thread that called
//! [`Daemon::serve`](super::Daemon::serve): its calls run one at a time,
//! in the order they arrive.
//!
//! On a `thread` daemon, a worker that has just answered a call, while two
//! other workers wait on the poller, may wait on that connection alone
//! for its next message ([`LINGER`]), muted in the poller meanwhile: a
//! client making calls one after another is then served as by a thread of
//! its own, one blocking read per call and no poller wake-up. At most half
//! the pool lingers, and only while two other workers wait on the poller,
//! so other connections are served as promptly as before and lingering
//! never makes the pool grow.

use std::collections::HashMap;
use std::io;
use std::net::Shutdown;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::Shared;
use super::connection::{Connection, Cut, Next, Workers};
use super::dispatch::Job;
use super::metrics::{self, Refusal};
use super::poller::{Events, Happened, Poller, Waker};
use crate::config::schema::ServerType;
use crate::net::{Listener, Stream};
use crate::sync::LockUnpoisoned;
use crate::tls::ServerTls;

/// The poller's key for the listening socket.
const LISTENER: u64 = u64::MAX;
/// The poller's key for the shutdown signal.
const WAKER: u64 = u64::MAX - 1;
/// Each worker's read buffer: a small message, or many, in one read.
const SCRATCH: usize = 64 * 1024;
/// Workers a thread daemon keeps when idle (Pyro5's `THREADPOOL_SIZE_MIN`).
const MIN_WORKERS: usize = 4;
/// How long an idle worker beyond the minimum waits before it retires.
const WORKER_IDLE: Duration = Duration::from_secs(30);
/// Connections in their handshake a daemon keeps at least room for (at
/// most `max_connections` of them, or this many if that is more): beyond
/// that, the oldest makes way for a new one, so sockets that never
/// complete a handshake cannot keep a client that would out.
const MIN_HANDSHAKING: usize = 64;
/// How often, at most, connections are looked at for their handshake and
/// idle timeouts (a quarter of the shorter timeout, within these bounds).
const SWEEP_LONGEST: Duration = Duration::from_secs(1);
const SWEEP_SHORTEST: Duration = Duration::from_millis(50);
/// How often accepting is tried again after it failed (50 ms apart).
const ACCEPT_RETRIES: u32 = 20;
/// How long a worker that has answered a call waits on that connection
/// alone for the next one (the socket's read timeout; the kernel rounds it
/// up to its clock tick, a few milliseconds).
const LINGER: Duration = Duration::from_millis(2);
/// Workers left waiting on the poller while one lingers: one for the next
/// call elsewhere, and one more, so that call does not start another.
const IDLE_BESIDE_LINGER: usize = 2;
/// How long a shutdown waits for calls in progress.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How often workers look at the drain's deadline while draining.
const DRAIN_TICK: Duration = Duration::from_millis(100);

pub(super) struct Reactor {
    shared: Arc<Shared>,
    poller: Poller,
    waker: Arc<Waker>,
    listener: Listener,
    /// What connections speak, when not plain TCP.
    tls: Option<ServerTls>,
    connections: Mutex<HashMap<u64, Arc<Connection>>>,
    /// Connections holding a place: past their CONNECT, at most
    /// `max_connections` of them.
    placed: AtomicUsize,
    /// Workers running, and how many of them are waiting for an event.
    workers: AtomicUsize,
    idle: AtomicUsize,
    /// Workers waiting on one connection alone (see [`LINGER`]).
    lingering: AtomicUsize,
    max_workers: usize,
    min_workers: usize,
    /// Set at shutdown: no more connections; those in progress finish
    /// by the deadline.
    draining: AtomicBool,
    drain_deadline: Mutex<Option<Instant>>,
    /// Every connection is closed: the workers stop.
    finished: AtomicBool,
}

impl Reactor {
    /// Serves `listener` on this thread (and the workers it starts) until
    /// the daemon is shut down and its connections are done.
    pub(super) fn run(
        shared: Arc<Shared>,
        listener: Listener,
        tls: Option<ServerTls>,
    ) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let poller = Poller::new()?;
        let waker = Arc::new(Waker::new()?);
        poller.add_listener(&listener, LISTENER)?;
        poller.add_waker(&waker, WAKER)?;
        let max_workers = match shared.settings.servertype {
            ServerType::Thread => shared.settings.threadpool_size.max(1),
            ServerType::Multiplex => 1,
        };
        let reactor = Arc::new(Reactor {
            shared: Arc::clone(&shared),
            poller,
            waker: Arc::clone(&waker),
            listener,
            tls,
            connections: Mutex::new(HashMap::new()),
            placed: AtomicUsize::new(0),
            workers: AtomicUsize::new(1),
            idle: AtomicUsize::new(0),
            lingering: AtomicUsize::new(0),
            max_workers,
            min_workers: MIN_WORKERS.min(max_workers),
            draining: AtomicBool::new(false),
            drain_deadline: Mutex::new(None),
            finished: AtomicBool::new(false),
        });
        *shared.waker.lock_unpoisoned() = Some(waker);
        // A shutdown asked for before the waker was in place is seen here.
        if shared.is_stopping() {
            reactor.waker.signal();
        }
        // The workers a thread daemon keeps start now (as Pyro5's pool
        // does): a lingering worker needs two others on the poller.
        for _ in 1..reactor.min_workers {
            reactor.add_worker();
        }
        let sweeper = reactor.start_sweeper();
        reactor.work(false);
        reactor.wait_for_workers();
        if let Some(sweeper) = sweeper {
            sweeper.thread().unpark();
            let _ = sweeper.join();
        }
        Ok(())
    }

    /// Starts the thread that closes connections past their handshake or
    /// idle timeout, if the daemon has either.
    fn start_sweeper(self: &Arc<Self>) -> Option<thread::JoinHandle<()>> {
        let settings = &self.shared.settings;
        let shortest = [
            settings.handshake_timeout,
            settings.idle_timeout,
            settings.comm_timeout,
        ]
        .into_iter()
        .flatten()
        .min()?;
        let every = (shortest / 4).clamp(SWEEP_SHORTEST, SWEEP_LONGEST);
        let reactor = Arc::clone(self);
        let started = thread::Builder::new()
            .name(format!("{}-timeouts", settings.name))
            .spawn(move || {
                while !reactor.finished.load(Ordering::SeqCst) {
                    thread::park_timeout(every);
                    reactor.sweep();
                }
            });
        match started {
            Ok(sweeper) => Some(sweeper),
            Err(err) => {
                tracing::error!("cannot start the thread that applies timeouts: {err}");
                None
            }
        }
    }

    /// Cuts short every connection past its handshake or idle timeout.
    fn sweep(&self) {
        let settings = &self.shared.settings;
        let now = Instant::now();
        let connections = self.connections.lock_unpoisoned();
        for connection in connections.values() {
            let silent = connection.silent_for(now);
            let overdue = if !connection.is_placed() {
                settings
                    .handshake_timeout
                    .is_some_and(|limit| now.duration_since(connection.accepted()) >= limit)
                    .then_some(Cut::HandshakeTimeout)
            } else if settings
                .idle_timeout
                .is_some_and(|idle| silent >= idle && connection.is_idle())
            {
                Some(Cut::Idle)
            } else {
                settings
                    .comm_timeout
                    .is_some_and(|limit| silent >= limit && !connection.is_in_call())
                    .then_some(Cut::CommTimeout)
            };
            if let Some(why) = overdue {
                connection.cut_short(why);
            }
        }
    }

    /// A worker: waits for events and serves them until the daemon is
    /// done (or, when `may_retire`, until it has been idle long enough).
    fn work(self: &Arc<Self>, may_retire: bool) {
        let mut scratch = vec![0u8; SCRATCH];
        let mut deferred = Vec::new();
        let mut events = Events::new();
        loop {
            // Only workers that may retire, or that watch a drain's
            // deadline, wait with a timeout: a timed wait costs a timer
            // on every call.
            let timeout = if self.draining() {
                Some(DRAIN_TICK)
            } else {
                may_retire.then_some(WORKER_IDLE)
            };
            self.idle.fetch_add(1, Ordering::SeqCst);
            let event = self.poller.wait(&mut events, timeout);
            self.idle.fetch_sub(1, Ordering::SeqCst);
            match event {
                Ok(Some((WAKER, _))) => self.begin_drain(),
                Ok(Some((LISTENER, _))) => self.accept(),
                Ok(Some((id, happened))) => self.serve(id, happened, &mut scratch, &mut deferred),
                Ok(None) => {
                    self.check_drain_deadline();
                    if may_retire && !self.draining() && self.retire() {
                        return;
                    }
                }
                Err(err) => {
                    tracing::error!("waiting for sockets failed: {err}");
                    thread::sleep(Duration::from_millis(50));
                }
            }
            if self.finished.load(Ordering::SeqCst) {
                break;
            }
        }
        self.workers.fetch_sub(1, Ordering::SeqCst);
    }

    /// Serves connection `id`, whose socket has news, unless another
    /// worker is serving it (that one then looks again); then runs the
    /// oneway calls it left.
    fn serve(
        self: &Arc<Self>,
        id: u64,
        happened: Happened,
        scratch: &mut [u8],
        deferred: &mut Vec<Job>,
    ) {
        let Some(connection) = self.connections.lock_unpoisoned().get(&id).cloned() else {
            return;
        };
        if !connection.claim(happened) {
            return;
        }
        loop {
            let next = catch_unwind(AssertUnwindSafe(|| {
                connection.serve(&self.shared, scratch, deferred, self)
            }))
            .unwrap_or_else(|_| {
                Next::Close(Some(
                    "serving it failed unexpectedly (a bug in pyrolab-host; please report it)"
                        .to_owned(),
                ))
            });
            match next {
                Next::Close(reason) => {
                    // Never released: no worker serves it again.
                    self.close(&connection, reason);
                    break;
                }
                Next::Pause => {
                    // Let go even if news came meanwhile (its next call,
                    // say): its unread bytes raise no new event, so ask
                    // for one, and another worker serves it while this
                    // one runs the oneway calls it left.
                    connection.let_go();
                    if let Err(err) = self.poller.unmute(&connection.stream, connection.id) {
                        tracing::warn!("cannot watch a connection's socket again: {err}");
                    }
                    break;
                }
                Next::Wait if connection.release() => break,
                Next::Wait => {}
            }
        }
        self.run_deferred(deferred);
    }

    /// Runs the oneway calls a connection left.
    fn run_deferred(self: &Arc<Self>, deferred: &mut Vec<Job>) {
        for job in deferred.drain(..) {
            self.before_call();
            let _running = self.shared.call_running();
            if catch_unwind(AssertUnwindSafe(job)).is_err() {
                tracing::error!("a oneway call failed unexpectedly (a bug in pyrolab-host)");
            }
        }
    }

    /// Accepts every connection waiting (the listener is edge-triggered:
    /// those left would not be reported again until another arrives).
    fn accept(&self) {
        let mut failures = 0;
        loop {
            match self.listener.accept() {
                Ok(stream) => self.admit(stream),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(err) => {
                    // Typically out of file descriptors: back off and try
                    // again for a while (connections closing free some),
                    // serving the connections we have meanwhile on the
                    // other workers.
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!("accepting a connection failed: {err}");
                    }
                    if failures == ACCEPT_RETRIES || self.draining() {
                        tracing::warn!(
                            "still cannot accept connections ({err}); those waiting are \
                             taken when the next one arrives"
                        );
                        break;
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }

    /// Takes on a new connection, or refuses it when the daemon serves its
    /// maximum already.
    fn admit(&self, stream: Stream) {
        // The TLS handshake is read and answered as the connection's first
        // bytes, by the workers, within its handshake_timeout.
        let stream = match (&self.tls, stream) {
            (Some(tls), Stream::Tcp(tcp)) => match tls.accept(tcp) {
                Ok(socket) => Stream::Tls(Arc::new(socket)),
                Err(err) => {
                    tracing::warn!("cannot serve a connection over TLS: {err}");
                    self.shared.metrics.refused(Refusal::Tls);
                    return;
                }
            },
            (_, stream) => stream,
        };
        // Reads and writes say, each, whether to wait; a wait is a
        // worker's linger, which the read timeout ends.
        if let Err(err) = stream.set_read_timeout(Some(LINGER)) {
            tracing::warn!(peer = %stream.peer(), "cannot serve a connection: {err}");
            return;
        }
        // Replies go out in one write, and without Nagle's delay: Python
        // clients do not set TCP_NODELAY, so a split reply would cost them
        // 40 ms.
        let _ = stream.set_nodelay();
        let mut connections = self.connections.lock_unpoisoned();
        // Places are taken at the CONNECT (a client over the limit is told
        // so then); until it, a connection only waits for its handshake.
        let handshaking =
            connections.len() - self.placed.load(Ordering::SeqCst).min(connections.len());
        let room = self.handshake_room();
        if handshaking >= room {
            if handshaking >= 2 * room {
                // Those making way are not closed yet: a flood faster than
                // they go is turned away at the door.
                tracing::warn!(
                    peer = %stream.peer(),
                    "closing a connection at once: {handshaking} connections are still in \
                     their handshake"
                );
                self.shared.metrics.refused(Refusal::Flood);
                return;
            }
            make_way(&connections);
        }
        let id = self.shared.next_connection.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::new(id, stream));
        if let Err(err) = self.poller.add_socket(&connection.stream, id) {
            tracing::warn!(peer = %connection.peer(), "cannot serve a connection: {err}");
            return;
        }
        connections.insert(id, connection);
        self.shared.metrics.connection_accepted();
    }

    /// How many connections may wait for their handshake at once.
    fn handshake_room(&self) -> usize {
        self.shared.settings.max_connections.max(MIN_HANDSHAKING)
    }

    /// Closes a connection and releases what it held (its locks, its
    /// `session` instances).
    fn close(&self, connection: &Connection, reason: Option<String>) {
        let Some(connection) = self.forget(connection.id) else {
            return;
        };
        self.shared.metrics.connection_closed();
        let reason = match connection.cut_reason() {
            Some(why) => {
                self.shared.metrics.cut(metered_cut(why));
                Some(self.describe_cut(why))
            }
            None => {
                if reason.is_some() {
                    self.shared.metrics.cut(metrics::Cut::Error);
                }
                reason
            }
        };
        match reason {
            None => tracing::debug!(peer = %connection.peer(), "connection closed"),
            Some(reason) => {
                tracing::warn!(peer = %connection.peer(), "closing connection: {reason}")
            }
        }
        if connection.is_placed() {
            self.placed.fetch_sub(1, Ordering::SeqCst);
        }
        connection.release_memory(&self.shared);
        self.poller.remove(&connection.stream);
        let _ = connection.stream.shutdown(Shutdown::Both);
        self.shared.locks.release_connection(connection.id);
        self.shared.streams.connection_closed(connection.id);
        if self.draining() && self.connections.lock_unpoisoned().is_empty() {
            self.finish();
        }
    }

    /// Why a connection was cut short, for the log.
    fn describe_cut(&self, why: Cut) -> String {
        let settings = &self.shared.settings;
        let seconds = |limit: Option<Duration>| limit.unwrap_or_default().as_secs_f64();
        match why {
            Cut::HandshakeTimeout => format!(
                "no handshake within {} s (handshake_timeout)",
                seconds(settings.handshake_timeout)
            ),
            Cut::Idle => format!(
                "silent for {} s between calls (idle_timeout)",
                seconds(settings.idle_timeout)
            ),
            Cut::CommTimeout => format!(
                "silent for {} s (commtimeout)",
                seconds(settings.comm_timeout)
            ),
            Cut::Crowded => format!(
                "made way for a new connection: {} were still in their handshake, \
                 this one the longest",
                self.handshake_room()
            ),
        }
    }

    /// Takes connection `id` out of the table, which gives its room back
    /// once most of it is unused (after a crowd of connections has gone).
    fn forget(&self, id: u64) -> Option<Arc<Connection>> {
        let mut connections = self.connections.lock_unpoisoned();
        let connection = connections.remove(&id)?;
        if connections.capacity() > 1024 && connections.len() * 4 < connections.capacity() {
            connections.shrink_to_fit();
        }
        Some(connection)
    }

    /// Called as this worker begins a call, which may block for as long
    /// as the driver takes: if no other worker is waiting for events, one
    /// more starts (if the pool may grow), so the daemon keeps answering.
    /// Handshakes, pings and hang-ups never block and start none (a crowd
    /// of clients leaving at once would otherwise fill the pool).
    fn before_call(self: &Arc<Self>) {
        if self.idle.load(Ordering::SeqCst) == 0 {
            self.add_worker();
        }
    }

    /// Whether a worker may linger on a connection now (see [`LINGER`]):
    /// while at least [`IDLE_BESIDE_LINGER`] other workers wait on the
    /// poller, and fewer than half the pool lingers already. Lingering
    /// then never leaves a call elsewhere without a worker, so it never
    /// makes the pool grow.
    fn may_linger(&self, already: bool) -> bool {
        self.max_workers > 1
            && self.idle.load(Ordering::SeqCst) >= IDLE_BESIDE_LINGER
            && !self.draining()
            && (already || self.lingering.load(Ordering::SeqCst) < self.linger_limit())
    }

    /// At most half the pool lingers.
    fn linger_limit(&self) -> usize {
        self.max_workers / 2
    }

    /// Starts one more worker, if the pool may grow.
    fn add_worker(self: &Arc<Self>) {
        let running = self.workers.load(Ordering::SeqCst);
        if running >= self.max_workers
            || self
                .workers
                .compare_exchange(running, running + 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return;
        }
        let reactor = Arc::clone(self);
        let may_retire = running >= self.min_workers;
        let started = thread::Builder::new()
            .name(format!("{}-worker", self.shared.settings.name))
            .spawn(move || reactor.work(may_retire));
        if let Err(err) = started {
            tracing::error!("cannot start a worker thread: {err}");
            self.workers.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether this idle worker leaves the pool (it does if the pool has
    /// more than its minimum); the count is taken down here.
    fn retire(&self) -> bool {
        let running = self.workers.load(Ordering::SeqCst);
        running > self.min_workers
            && self
                .workers
                .compare_exchange(running, running - 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// The shutdown: accept nothing more, close the connections that are
    /// between calls, and let the others finish theirs.
    fn begin_drain(&self) {
        if self.finished.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut deadline = self.drain_deadline.lock_unpoisoned();
            if deadline.is_some() {
                return;
            }
            *deadline = Some(Instant::now() + DRAIN_LIMIT);
            self.draining.store(true, Ordering::SeqCst);
        }
        // Only the finish signals the waker again, for good.
        self.waker.clear();
        self.poller.remove(&self.listener);
        let connections: Vec<_> = self
            .connections
            .lock_unpoisoned()
            .values()
            .cloned()
            .collect();
        for connection in connections {
            if connection.is_idle() {
                self.close(&connection, None);
            }
        }
        if self.connections.lock_unpoisoned().is_empty() {
            self.finish();
        }
    }

    fn check_drain_deadline(&self) {
        let overdue = self
            .drain_deadline
            .lock_unpoisoned()
            .is_some_and(|deadline| Instant::now() >= deadline);
        if overdue && !self.finished.load(Ordering::SeqCst) {
            let left = self.connections.lock_unpoisoned().len();
            tracing::warn!(
                "{left} connections still busy after {} s; stopping anyway",
                DRAIN_LIMIT.as_secs()
            );
            self.finish();
        }
    }

    /// Every worker stops (the waker stays signalled, so each sees it),
    /// and the sweeper with them.
    fn finish(&self) {
        self.finished.store(true, Ordering::SeqCst);
        self.waker.signal();
    }

    /// Waits (bounded) for the other workers to stop: a worker still in a
    /// oneway call is left to finish it on its own.
    fn wait_for_workers(&self) {
        let deadline = Instant::now() + DRAIN_LIMIT;
        while self.workers.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Workers for Arc<Reactor> {
    fn before_call(&self) {
        Reactor::before_call(self);
    }

    fn linger(&self, connection: &Connection, already: bool) -> bool {
        if !self.may_linger(already) {
            return false;
        }
        if already {
            return true;
        }
        if self.lingering.fetch_add(1, Ordering::SeqCst) >= self.linger_limit() {
            self.lingering.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        if let Err(err) = self.poller.mute(&connection.stream, connection.id) {
            tracing::debug!(peer = %connection.peer(), "cannot mute a connection: {err}");
            self.lingering.fetch_sub(1, Ordering::SeqCst);
            return false;
        }
        true
    }

    fn end_linger(&self, connection: &Connection) -> io::Result<()> {
        self.lingering.fetch_sub(1, Ordering::SeqCst);
        self.poller.unmute(&connection.stream, connection.id)
    }

    fn take_place(&self) -> bool {
        let max = self.shared.settings.max_connections;
        self.placed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |placed| {
                (placed < max).then_some(placed + 1)
            })
            .is_ok()
    }
}

/// Cuts short the connection that has waited longest for its handshake
/// (and is not already going).
fn make_way(connections: &HashMap<u64, Arc<Connection>>) {
    let oldest = connections
        .values()
        .filter(|connection| !connection.is_placed() && connection.cut_reason().is_none())
        .min_by_key(|connection| connection.accepted());
    if let Some(oldest) = oldest {
        oldest.cut_short(Cut::Crowded);
    }
}

/// How the metrics name why a connection was cut short.
fn metered_cut(why: Cut) -> metrics::Cut {
    match why {
        Cut::HandshakeTimeout => metrics::Cut::HandshakeTimeout,
        Cut::Idle => metrics::Cut::IdleTimeout,
        Cut::CommTimeout => metrics::Cut::CommTimeout,
        Cut::Crowded => metrics::Cut::Crowded,
    }
}
