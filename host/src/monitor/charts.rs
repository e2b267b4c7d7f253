//! `/api/metrics`: what the page's charts and call tables show, for each
//! service of each pyrolab-host daemon: its totals since the daemon
//! started, each method's, and its points of the last hour.

use serde::Serialize;

use super::collect::Snapshot;
use super::history::{History, Point, STEP, WINDOW};
use crate::daemon::metrics::{ConnectionReport, MethodReport, quantile};

/// The metrics of every daemon the last look saw.
#[derive(Debug, Serialize)]
pub struct MetricsView {
    /// When the look was made.
    pub taken: String,
    /// How far back the points go, in seconds.
    pub window_s: u64,
    /// The shortest time between two points, in seconds.
    pub step_s: u64,
    /// The daemons, by location.
    pub daemons: Vec<DaemonView>,
}

/// One daemon's metrics.
#[derive(Debug, Serialize)]
pub struct DaemonView {
    /// `host:port` (or `./u:PATH`), as in its services' URIs.
    pub location: String,
    /// Its name in its configuration.
    pub daemon: String,
    /// Whether it counts (`metrics: false`: not).
    pub enabled: bool,
    /// When it started (seconds since the Unix epoch).
    pub started: f64,
    /// Its connections.
    pub connections: ConnectionReport,
    /// Its services, by name.
    pub services: Vec<ServiceMetricsView>,
}

/// One service's metrics.
#[derive(Debug, Serialize)]
pub struct ServiceMetricsView {
    /// Its name (the object id in its URI).
    pub service: String,
    /// Its methods' counts added up.
    #[serde(flatten)]
    pub total: Summary,
    /// Locks taken.
    pub locks_taken: u64,
    /// Each method that was called.
    pub methods: Vec<MethodView>,
    /// The last hour, a point a step.
    pub points: Vec<Point>,
}

/// A method's (or a service's) counts, summed up for people.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Calls done.
    pub calls: u64,
    /// Of which failed.
    pub errors: u64,
    /// Failed calls by exception class.
    pub errors_by_class: std::collections::BTreeMap<String, u64>,
    /// Running now.
    pub in_flight: u64,
    /// Request bytes.
    pub bytes_in: u64,
    /// Reply bytes.
    pub bytes_out: u64,
    /// Mean latency, in seconds.
    pub mean_s: Option<f64>,
    /// Median latency since the daemon started, in seconds.
    pub p50_s: Option<f64>,
    /// 99th percentile latency since the daemon started, in seconds.
    pub p99_s: Option<f64>,
}

/// One method's metrics.
#[derive(Debug, Serialize)]
pub struct MethodView {
    /// Its name.
    pub method: String,
    /// Its counts.
    #[serde(flatten)]
    pub summary: Summary,
}

impl Summary {
    fn of(report: &MethodReport, bounds: &[f64]) -> Summary {
        Summary {
            calls: report.calls,
            errors: report.error_count(),
            errors_by_class: report.errors.clone(),
            in_flight: report.in_flight,
            bytes_in: report.bytes_in,
            bytes_out: report.bytes_out,
            mean_s: (report.calls > 0).then(|| report.seconds / report.calls as f64),
            p50_s: quantile(&report.buckets, bounds, 0.5),
            p99_s: quantile(&report.buckets, bounds, 0.99),
        }
    }
}

/// The view of `snapshot`'s metrics, with `history`'s points; only
/// `service`'s, if given.
pub fn view(snapshot: &Snapshot, history: &History, service: Option<&str>) -> MetricsView {
    let daemons = snapshot
        .metrics
        .iter()
        .map(|(location, report)| {
            let bounds = &report.latency_buckets;
            let services = report
                .services
                .iter()
                .filter(|(name, _)| service.is_none_or(|wanted| wanted == name.as_str()))
                .map(|(name, counted)| ServiceMetricsView {
                    service: name.clone(),
                    total: Summary::of(&counted.total(), bounds),
                    locks_taken: counted.locks_taken,
                    methods: counted
                        .methods
                        .iter()
                        .map(|(method, report)| MethodView {
                            method: method.clone(),
                            summary: Summary::of(report, bounds),
                        })
                        .collect(),
                    points: history.points(location, name),
                })
                .collect();
            DaemonView {
                location: location.clone(),
                daemon: report.daemon.clone(),
                enabled: report.enabled,
                started: report.started,
                connections: report.connections.clone(),
                services,
            }
        })
        .collect();
    MetricsView {
        taken: snapshot.taken.clone(),
        window_s: WINDOW.as_secs(),
        step_s: STEP.as_secs(),
        daemons,
    }
}
