//! The last hour of each service's calls, in memory, for the page's
//! charts: a point every [`STEP`] (or every look, if looks are further
//! apart), each the call rate, error rate and p50/p99 latency over the
//! time since the point before, from the difference of the daemon's
//! counters. At most `WINDOW / STEP` points a service: 720, some 30 KB.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use crate::daemon::metrics::{MetricsReport, quantile};

/// How much is kept.
pub const WINDOW: Duration = Duration::from_secs(3600);
/// The shortest time between two points.
pub const STEP: Duration = Duration::from_secs(5);

/// One point of a service's chart.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Point {
    /// Its end, in seconds since the Unix epoch.
    pub t: f64,
    /// Calls a second.
    pub rate: f64,
    /// Failed calls a second.
    pub errors: f64,
    /// Median latency, in seconds (`null`: no call).
    pub p50_s: Option<f64>,
    /// 99th percentile latency, in seconds (`null`: no call).
    pub p99_s: Option<f64>,
}

/// A service's counters at one look.
#[derive(Clone, Debug)]
struct Totals {
    at: f64,
    started: f64,
    calls: u64,
    errors: u64,
    buckets: Vec<u64>,
}

struct Series {
    last: Totals,
    points: VecDeque<Point>,
}

/// The charts of every service of every daemon, by daemon location and
/// service name.
#[derive(Default)]
pub struct History {
    series: HashMap<(String, String), Series>,
}

impl History {
    /// Takes in a look's metrics, made at `now` (seconds since the Unix
    /// epoch): a point for each service whose last is [`STEP`] old.
    pub fn record(&mut self, metrics: &BTreeMap<String, MetricsReport>, now: f64) {
        for (location, report) in metrics {
            for (service, counted) in &report.services {
                let total = counted.total();
                let totals = Totals {
                    at: now,
                    started: report.started,
                    calls: total.calls,
                    errors: total.error_count(),
                    buckets: total.buckets,
                };
                let key = (location.clone(), service.clone());
                match self.series.get_mut(&key) {
                    Some(series) => series.take(totals, &report.latency_buckets),
                    None => {
                        self.series.insert(
                            key,
                            Series {
                                last: totals,
                                points: VecDeque::new(),
                            },
                        );
                    }
                }
            }
        }
        let oldest = now - WINDOW.as_secs_f64();
        self.series.retain(|_, series| {
            while series.points.front().is_some_and(|p| p.t < oldest) {
                series.points.pop_front();
            }
            // A service not seen for the whole window is gone.
            series.last.at >= oldest
        });
    }

    /// The points of `service` on the daemon at `location`, oldest first.
    pub fn points(&self, location: &str, service: &str) -> Vec<Point> {
        self.series
            .get(&(location.to_owned(), service.to_owned()))
            .map(|series| series.points.iter().copied().collect())
            .unwrap_or_default()
    }
}

impl Series {
    fn take(&mut self, now: Totals, bounds: &[f64]) {
        let restarted = now.started != self.last.started
            || now.calls < self.last.calls
            || now.errors < self.last.errors;
        if restarted {
            // Counting began again: the next point starts here.
            self.last = now;
            return;
        }
        let seconds = now.at - self.last.at;
        if seconds < STEP.as_secs_f64() {
            return;
        }
        let buckets: Vec<u64> = now
            .buckets
            .iter()
            .enumerate()
            .map(|(i, count)| count.saturating_sub(self.last.buckets.get(i).copied().unwrap_or(0)))
            .collect();
        self.points.push_back(Point {
            t: now.at,
            rate: (now.calls - self.last.calls) as f64 / seconds,
            errors: (now.errors - self.last.errors) as f64 / seconds,
            p50_s: quantile(&buckets, bounds, 0.5),
            p99_s: quantile(&buckets, bounds, 0.99),
        });
        self.last = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemon::metrics::{LATENCY_BUCKETS, MethodReport, ServiceReport};

    fn look(calls: u64, errors: u64, started: f64) -> BTreeMap<String, MetricsReport> {
        let mut buckets = vec![0; LATENCY_BUCKETS.len() + 1];
        buckets[5] = calls;
        let method = MethodReport {
            calls,
            buckets,
            errors: BTreeMap::from([("ValueError".to_owned(), errors)]),
            ..MethodReport::default()
        };
        let service = ServiceReport {
            locks_taken: 0,
            methods: BTreeMap::from([("echo".to_owned(), method)]),
        };
        let report = MetricsReport {
            started,
            latency_buckets: LATENCY_BUCKETS.to_vec(),
            services: BTreeMap::from([("sample".to_owned(), service)]),
            ..MetricsReport::default()
        };
        BTreeMap::from([("localhost:9100".to_owned(), report)])
    }

    #[test]
    fn a_point_is_the_rates_between_two_looks_a_step_apart() {
        let mut history = History::default();
        history.record(&look(0, 0, 1.0), 100.0);
        // Too soon for a point.
        history.record(&look(5, 0, 1.0), 102.0);
        assert!(history.points("localhost:9100", "sample").is_empty());
        history.record(&look(100, 10, 1.0), 110.0);
        let points = history.points("localhost:9100", "sample");
        assert_eq!(points.len(), 1);
        assert_eq!((points[0].rate, points[0].errors), (10.0, 1.0));
        let p50 = points[0].p50_s.unwrap();
        assert!(p50 > 0.000_5 && p50 <= 0.001, "{p50}");
    }

    #[test]
    fn a_restarted_daemon_starts_a_new_point_and_old_points_go() {
        let mut history = History::default();
        history.record(&look(0, 0, 1.0), 0.0);
        history.record(&look(50, 0, 1.0), 10.0);
        // Restarted: its counters are back at zero.
        history.record(&look(3, 0, 2.0), 20.0);
        history.record(&look(13, 0, 2.0), 30.0);
        let rates: Vec<f64> = history
            .points("localhost:9100", "sample")
            .iter()
            .map(|p| p.rate)
            .collect();
        assert_eq!(rates, [5.0, 1.0]);
        history.record(&look(13, 0, 2.0), 30.0 + WINDOW.as_secs_f64() + 1.0);
        assert_eq!(history.points("localhost:9100", "sample").len(), 1);
        history.record(&BTreeMap::new(), 40.0 + 3.0 * WINDOW.as_secs_f64());
        assert!(history.series.is_empty());
    }
}
