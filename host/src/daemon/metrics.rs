//! Call metrics: per service and method, calls, errors by exception
//! class, a latency histogram, calls in flight, bytes in and out, locks
//! taken; per daemon, connections and refusals. Counted on every call with
//! a few relaxed atomic additions (see `benches/metrics_cost.rs` for what
//! that costs), and reported by `Pyro.Daemon.metrics()`, which the web
//! monitor reads and turns into Prometheus text and charts.
//!
//! The labels are bounded by what the daemon serves, never by what
//! clients send: the methods of each service are fixed when the daemon
//! starts (a call of any other name counts under [`OTHER_METHOD`]), and a
//! method keeps at most [`MAX_ERROR_CLASSES`] exception classes (the rest
//! count under [`OTHER_ERROR`]).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use pyrolab_plugin_api::Value;
use serde::{Deserialize, Serialize};

use crate::sync::LockUnpoisoned;

/// The latency histogram's bucket bounds, in seconds (each bucket counts
/// calls that took at most its bound, and more than the one before; one
/// more bucket counts those beyond the last): from the tens of
/// microseconds a call of a fast driver takes on loopback to the seconds
/// an instrument's measurement takes.
pub const LATENCY_BUCKETS: [f64; 19] = [
    0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The method label of calls of a name the service does not have.
pub const OTHER_METHOD: &str = "(other)";
/// The exception label of errors beyond a method's first
/// [`MAX_ERROR_CLASSES`] classes.
pub const OTHER_ERROR: &str = "(other)";
/// Exception classes kept apart per method.
pub const MAX_ERROR_CLASSES: usize = 16;

/// Why the daemon turned a connection away before serving it.
#[derive(Clone, Copy, Debug)]
pub enum Refusal {
    /// `max_connections` connections were served already (CONNECTFAIL).
    MaxConnections,
    /// The handshake was refused (a protocol version or serializer the
    /// daemon does not speak, a TLS client without a certificate, ...).
    Handshake,
    /// Too many connections were waiting for their handshake: closed at
    /// once.
    Flood,
    /// Its TLS could not be set up.
    Tls,
}

impl Refusal {
    const ALL: [Refusal; 4] = [
        Refusal::MaxConnections,
        Refusal::Handshake,
        Refusal::Flood,
        Refusal::Tls,
    ];

    fn label(self) -> &'static str {
        match self {
            Refusal::MaxConnections => "max_connections",
            Refusal::Handshake => "handshake",
            Refusal::Flood => "flood",
            Refusal::Tls => "tls",
        }
    }
}

/// Why the daemon closed a connection it served.
#[derive(Clone, Copy, Debug)]
pub enum Cut {
    /// No handshake in time.
    HandshakeTimeout,
    /// Silent too long between calls.
    IdleTimeout,
    /// Silent too long while no call ran.
    CommTimeout,
    /// Made way for a new connection while still in its handshake.
    Crowded,
    /// It broke the protocol or its limits (the log says how).
    Error,
}

impl Cut {
    const ALL: [Cut; 5] = [
        Cut::HandshakeTimeout,
        Cut::IdleTimeout,
        Cut::CommTimeout,
        Cut::Crowded,
        Cut::Error,
    ];

    fn label(self) -> &'static str {
        match self {
            Cut::HandshakeTimeout => "handshake_timeout",
            Cut::IdleTimeout => "idle_timeout",
            Cut::CommTimeout => "commtimeout",
            Cut::Crowded => "crowded",
            Cut::Error => "error",
        }
    }
}

/// A daemon's metrics.
pub struct DaemonMetrics {
    name: String,
    enabled: bool,
    started: SystemTime,
    // Looked up on every call: a few names, compared faster than hashed.
    services: BTreeMap<String, ServiceMetrics>,
    accepted: AtomicU64,
    closed: AtomicU64,
    refused: [AtomicU64; Refusal::ALL.len()],
    cut: [AtomicU64; Cut::ALL.len()],
}

/// A service's metrics: one set per method.
struct ServiceMetrics {
    methods: BTreeMap<String, MethodMetrics>,
    other: MethodMetrics,
    locks_taken: AtomicU64,
}

/// One method's metrics.
#[derive(Default)]
pub struct MethodMetrics {
    calls: AtomicU64,
    in_flight: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    nanos: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    /// Taken only when a call fails.
    errors: Mutex<Vec<(String, u64)>>,
}

impl DaemonMetrics {
    /// Metrics for a daemon named `name` serving `services`, each with its
    /// method names; `enabled: false` counts nothing (the report says so).
    pub fn new(
        name: &str,
        enabled: bool,
        services: impl IntoIterator<Item = (String, Vec<String>)>,
    ) -> DaemonMetrics {
        let services = services
            .into_iter()
            .map(|(service, methods)| {
                let methods = methods
                    .into_iter()
                    .map(|method| (method, MethodMetrics::default()))
                    .collect();
                (
                    service,
                    ServiceMetrics {
                        methods,
                        other: MethodMetrics::default(),
                        locks_taken: AtomicU64::new(0),
                    },
                )
            })
            .collect();
        DaemonMetrics {
            name: name.to_owned(),
            enabled,
            started: SystemTime::now(),
            services,
            accepted: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            refused: Default::default(),
            cut: Default::default(),
        }
    }

    /// The metrics of calls of `method` on `service` (`None`: metrics are
    /// off, or the daemon serves no such service).
    pub fn method(&self, service: &str, method: &str) -> Option<&MethodMetrics> {
        if !self.enabled {
            return None;
        }
        let service = self.services.get(service)?;
        Some(service.methods.get(method).unwrap_or(&service.other))
    }

    /// Starts counting a call of `method` on `service` whose request took
    /// `bytes_in` bytes on the wire and was read at `read_at` (the call's
    /// time counts from then).
    pub fn start(
        &self,
        service: &str,
        method: &str,
        bytes_in: usize,
        read_at: Instant,
    ) -> Meter<'_> {
        Meter::start(self.method(service, method), bytes_in, read_at)
    }

    /// Counts a lock taken on `service`.
    pub fn lock_taken(&self, service: &str) {
        if let Some(service) = self.services.get(service).filter(|_| self.enabled) {
            service.locks_taken.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a connection taken on.
    pub fn connection_accepted(&self) {
        if self.enabled {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a connection closed (one counted as accepted).
    pub fn connection_closed(&self) {
        if self.enabled {
            self.closed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a connection turned away.
    pub fn refused(&self, why: Refusal) {
        if self.enabled {
            self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a connection the daemon closed.
    pub fn cut(&self, why: Cut) {
        if self.enabled {
            self.cut[why as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Everything counted so far. Methods never called are left out.
    pub fn report(&self) -> MetricsReport {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let accepted = load(&self.accepted);
        let services = self
            .services
            .iter()
            .map(|(name, service)| {
                let methods = service
                    .methods
                    .iter()
                    .map(|(method, metrics)| (method.as_str(), metrics))
                    .chain(std::iter::once((OTHER_METHOD, &service.other)))
                    .filter_map(|(method, metrics)| Some((method.to_owned(), metrics.report()?)))
                    .collect();
                let report = ServiceReport {
                    locks_taken: load(&service.locks_taken),
                    methods,
                };
                (name.clone(), report)
            })
            .collect();
        MetricsReport {
            daemon: self.name.clone(),
            enabled: self.enabled,
            started: self
                .started
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
            latency_buckets: LATENCY_BUCKETS.to_vec(),
            connections: ConnectionReport {
                accepted,
                open: accepted.saturating_sub(load(&self.closed)),
                refused: Refusal::ALL
                    .iter()
                    .map(|why| (why.label().to_owned(), load(&self.refused[*why as usize])))
                    .collect(),
                cut: Cut::ALL
                    .iter()
                    .map(|why| (why.label().to_owned(), load(&self.cut[*why as usize])))
                    .collect(),
            },
            services,
        }
    }
}

impl MethodMetrics {
    fn report(&self) -> Option<MethodReport> {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let (calls, in_flight) = (load(&self.calls), load(&self.in_flight));
        if calls == 0 && in_flight == 0 {
            return None;
        }
        Some(MethodReport {
            calls,
            in_flight,
            bytes_in: load(&self.bytes_in),
            bytes_out: load(&self.bytes_out),
            seconds: Duration::from_nanos(load(&self.nanos)).as_secs_f64(),
            buckets: self.buckets.iter().map(load).collect(),
            errors: self.errors.lock_unpoisoned().iter().cloned().collect(),
        })
    }

    fn failed(&self, class: &str) {
        let mut errors = self.errors.lock_unpoisoned();
        if let Some(entry) = errors.iter_mut().find(|(known, _)| known == class) {
            entry.1 += 1;
            return;
        }
        let class = if errors.len() < MAX_ERROR_CLASSES {
            class
        } else {
            OTHER_ERROR
        };
        match errors.iter_mut().find(|(known, _)| known == class) {
            Some(entry) => entry.1 += 1,
            None => errors.push((class.to_owned(), 1)),
        }
    }
}

/// One call being counted: in flight until [`Meter::finish`] (or until
/// dropped unfinished, by a call that panicked, which then counts as a
/// failed call, a `RuntimeError`).
pub struct Meter<'a> {
    counted: Option<(&'a MethodMetrics, Instant)>,
    failed: bool,
}

impl<'a> Meter<'a> {
    /// Counts a call read at `read_at` as in flight (nothing, with
    /// `None`).
    pub fn start(
        metrics: Option<&'a MethodMetrics>,
        bytes_in: usize,
        read_at: Instant,
    ) -> Meter<'a> {
        let counted = metrics.map(|metrics| {
            metrics.in_flight.fetch_add(1, Ordering::Relaxed);
            metrics
                .bytes_in
                .fetch_add(bytes_in as u64, Ordering::Relaxed);
            (metrics, read_at)
        });
        Meter {
            counted,
            failed: false,
        }
    }

    /// Counts the call as failed with `exception` (a Pyro5 exception
    /// value), if it is `Some`.
    pub fn failed(&mut self, exception: Option<&Value>) {
        if let (Some((metrics, _)), Some(exception)) = (self.counted, exception) {
            metrics.failed(exception_class(exception));
            self.failed = true;
        }
    }

    /// Counts a result: failed if it is an error.
    pub fn result<T>(&mut self, result: &Result<T, Value>) {
        self.failed(result.as_ref().err());
    }

    /// Counts the call as done, its reply taking `bytes_out` bytes on the
    /// wire.
    pub fn finish(mut self, bytes_out: usize) {
        self.done(bytes_out);
    }

    fn done(&mut self, bytes_out: usize) {
        let Some((metrics, started)) = self.counted.take() else {
            return;
        };
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        metrics.calls.fetch_add(1, Ordering::Relaxed);
        metrics.nanos.fetch_add(nanos, Ordering::Relaxed);
        metrics.buckets[bucket_of(nanos)].fetch_add(1, Ordering::Relaxed);
        metrics
            .bytes_out
            .fetch_add(bytes_out as u64, Ordering::Relaxed);
        metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Meter<'_> {
    fn drop(&mut self) {
        if let Some((metrics, _)) = self.counted.filter(|_| !self.failed) {
            metrics.failed("RuntimeError");
        }
        self.done(0);
    }
}

impl MethodMetrics {
    /// Adds bytes of a request and its reply counted apart from its calls
    /// (a batch's, counted on its first call).
    pub fn add_bytes(&self, bytes_in: usize, bytes_out: usize) {
        self.bytes_in.fetch_add(bytes_in as u64, Ordering::Relaxed);
        self.bytes_out
            .fetch_add(bytes_out as u64, Ordering::Relaxed);
    }
}

/// The method names a service's Pyro5 metadata lists (`methods`,
/// `oneway`), and the property accessors (`__getattr__`, `__setattr__`)
/// when it has properties: the method labels of its metrics.
pub fn method_names(metadata: &Value) -> Vec<String> {
    let list = |key: &str| {
        metadata
            .get(key)
            .and_then(Value::as_list)
            .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned))
            .into_iter()
            .flatten()
    };
    let mut names: Vec<String> = list("methods").chain(list("oneway")).collect();
    if list("attrs").next().is_some() {
        names.extend(["__getattr__".to_owned(), "__setattr__".to_owned()]);
    }
    names.sort();
    names.dedup();
    names
}

/// The bucket a call of `nanos` nanoseconds falls in.
fn bucket_of(nanos: u64) -> usize {
    const BOUNDS: [u64; LATENCY_BUCKETS.len()] = {
        let mut bounds = [0; LATENCY_BUCKETS.len()];
        let mut i = 0;
        while i < bounds.len() {
            bounds[i] = (LATENCY_BUCKETS[i] * 1e9) as u64;
            i += 1;
        }
        bounds
    };
    BOUNDS.partition_point(|&bound| bound < nanos)
}

/// The class of a Pyro5 exception value, as Python names it:
/// `ValueError` for `builtins.ValueError`, `Pyro5.errors.DaemonError` as
/// it is.
pub fn exception_class(exception: &Value) -> &str {
    let class = exception
        .get("__class__")
        .and_then(Value::as_str)
        .unwrap_or("Exception");
    class.strip_prefix("builtins.").unwrap_or(class)
}

/// What `Pyro.Daemon.metrics()` answers: everything a daemon counted
/// since it started. Counters only grow while the daemon runs; `started`
/// changes when it restarts (and they begin again at zero).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// The daemon's name in the configuration.
    pub daemon: String,
    /// Whether it counts (`metrics: false` in its configuration: not).
    pub enabled: bool,
    /// When it started, in seconds since the Unix epoch.
    pub started: f64,
    /// The latency histogram's bucket bounds, in seconds.
    pub latency_buckets: Vec<f64>,
    /// Its connections.
    pub connections: ConnectionReport,
    /// Its services, by name.
    pub services: BTreeMap<String, ServiceReport>,
}

/// A daemon's connections.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionReport {
    /// Taken on since it started.
    pub accepted: u64,
    /// Open now.
    pub open: u64,
    /// Turned away before being served, by reason.
    pub refused: BTreeMap<String, u64>,
    /// Closed by the daemon, by reason.
    pub cut: BTreeMap<String, u64>,
}

/// A service's metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    /// Locks taken (`lock()` calls that got the lock).
    pub locks_taken: u64,
    /// Its methods that were called, by name.
    pub methods: BTreeMap<String, MethodReport>,
}

/// A method's metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MethodReport {
    /// Calls done (failed ones too).
    pub calls: u64,
    /// Calls running now.
    pub in_flight: u64,
    /// Bytes of requests, on the wire (headers included).
    pub bytes_in: u64,
    /// Bytes of replies, on the wire (headers included).
    pub bytes_out: u64,
    /// Time the calls took, in all, in seconds.
    pub seconds: f64,
    /// Calls per latency bucket (not cumulative), one more than
    /// `latency_buckets`: the last counts calls beyond the last bound.
    pub buckets: Vec<u64>,
    /// Failed calls by exception class.
    pub errors: BTreeMap<String, u64>,
}

impl MethodReport {
    /// Failed calls, of every class.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

impl MethodReport {
    /// Adds `other`'s counts to these (a service's totals over its
    /// methods).
    pub fn add(&mut self, other: &MethodReport) {
        self.calls += other.calls;
        self.in_flight += other.in_flight;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        self.seconds += other.seconds;
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (total, count) in self.buckets.iter_mut().zip(&other.buckets) {
            *total += count;
        }
        for (class, count) in &other.errors {
            *self.errors.entry(class.clone()).or_default() += count;
        }
    }
}

impl ServiceReport {
    /// Its methods' counts added up.
    pub fn total(&self) -> MethodReport {
        let mut total = MethodReport::default();
        for method in self.methods.values() {
            total.add(method);
        }
        total
    }
}

/// The `q` quantile (0 to 1) of the latencies counted in `buckets`
/// (per bucket, as [`MethodReport::buckets`]) under `bounds`, in
/// seconds, interpolated within its bucket as Prometheus'
/// `histogram_quantile` does; beyond the last bound, the last bound.
/// `None` when nothing was counted.
pub fn quantile(buckets: &[u64], bounds: &[f64], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * total as f64;
    let mut below = 0u64;
    for (i, &count) in buckets.iter().enumerate() {
        if count > 0 && (below + count) as f64 >= rank {
            let lower = if i == 0 { 0.0 } else { bounds[i - 1] };
            let Some(&upper) = bounds.get(i) else {
                return bounds.last().copied();
            };
            let within = (rank - below as f64) / count as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        below += count;
    }
    bounds.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics() -> DaemonMetrics {
        DaemonMetrics::new(
            "lab",
            true,
            [("sample".to_owned(), vec!["echo".to_owned()])],
        )
    }

    #[test]
    fn buckets_hold_calls_up_to_their_bound() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(25_000), 0);
        assert_eq!(bucket_of(25_001), 1);
        assert_eq!(bucket_of(1_000_000), 5);
        assert_eq!(bucket_of(30_000_000_000), LATENCY_BUCKETS.len() - 1);
        assert_eq!(bucket_of(u64::MAX), LATENCY_BUCKETS.len());
    }

    #[test]
    fn calls_errors_and_bytes_are_counted_per_method() {
        let metrics = metrics();
        let meter = metrics.start("sample", "echo", 100, Instant::now());
        assert_eq!(
            metrics.report().services["sample"].methods["echo"].in_flight,
            1
        );
        meter.finish(50);
        let failure = super::super::pyro::exception("builtins.ValueError", "bad", Vec::new());
        let class = exception_class(&failure).to_owned();
        assert_eq!(class, "ValueError");
        let mut meter = metrics.start("sample", "echo", 10, Instant::now());
        meter.failed(Some(&failure));
        meter.finish(5);
        let report = metrics.report();
        let echo = &report.services["sample"].methods["echo"];
        assert_eq!((echo.calls, echo.in_flight), (2, 0));
        assert_eq!((echo.bytes_in, echo.bytes_out), (110, 55));
        assert_eq!(echo.buckets.iter().sum::<u64>(), 2);
        assert_eq!(echo.errors, BTreeMap::from([(class, 1)]));
    }

    #[test]
    fn unknown_methods_and_error_classes_share_one_label() {
        let metrics = metrics();
        for n in 0..100 {
            let mut meter = metrics.start("sample", &format!("attack{n}"), 1, Instant::now());
            meter.failed(Some(&Value::Map(vec![(
                "__class__".into(),
                Value::from(format!("Error{n}")),
            )])));
            meter.finish(1);
        }
        let report = metrics.report();
        let methods = &report.services["sample"].methods;
        assert_eq!(methods.keys().collect::<Vec<_>>(), [OTHER_METHOD]);
        let other = &methods[OTHER_METHOD];
        assert_eq!(other.errors.len(), MAX_ERROR_CLASSES + 1);
        assert_eq!(other.errors[OTHER_ERROR], 100 - MAX_ERROR_CLASSES as u64);
        assert!(
            metrics
                .start("nothing", "echo", 1, Instant::now())
                .counted
                .is_none()
        );
    }

    #[test]
    fn a_meter_dropped_unfinished_counts_a_failed_call() {
        let metrics = metrics();
        drop(metrics.start("sample", "echo", 1, Instant::now()));
        let report = metrics.report();
        let echo = &report.services["sample"].methods["echo"];
        assert_eq!((echo.calls, echo.in_flight), (1, 0));
        assert_eq!(echo.errors["RuntimeError"], 1);
    }

    #[test]
    fn quantiles_interpolate_within_their_bucket() {
        let bounds = [0.001, 0.01, 0.1];
        assert_eq!(quantile(&[0, 0, 0, 0], &bounds, 0.5), None);
        // 10 calls in (1 ms, 10 ms]: the median half way through it.
        let median = quantile(&[0, 10, 0, 0], &bounds, 0.5).unwrap();
        assert!((median - 0.0055).abs() < 1e-9, "{median}");
        // 99 fast calls, one beyond the last bound.
        assert_eq!(quantile(&[99, 0, 0, 1], &bounds, 0.999), Some(0.1));
        assert!(quantile(&[99, 0, 0, 1], &bounds, 0.5).unwrap() <= 0.001);
    }

    #[test]
    fn disabled_metrics_count_nothing() {
        let metrics = DaemonMetrics::new("lab", false, [("sample".to_owned(), vec![])]);
        metrics.start("sample", "echo", 1, Instant::now()).finish(1);
        metrics.connection_accepted();
        let report = metrics.report();
        assert!(!report.enabled);
        assert!(report.services["sample"].methods.is_empty());
        assert_eq!(report.connections.accepted, 0);
    }
}
