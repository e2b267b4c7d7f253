//! `/metrics`: the last look at the lab in Prometheus' text exposition
//! format (version 0.0.4): each pyrolab-host daemon's call and connection
//! metrics, and whether each service, name server and host answers.
//! Every name is listed, with its labels, in `docs/metrics.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::collect::{ServiceState, Snapshot};
use crate::daemon::metrics::{MethodReport, MetricsReport};

/// A family of one sample per method: name, help, value.
type MethodFamily = (&'static str, &'static str, fn(&MethodReport) -> f64);
/// A family of one sample per daemon: name, type, help, value.
type DaemonFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&MetricsReport) -> f64,
);
/// A family of one sample per daemon and reason: name, help, counts.
type ReasonFamily = (
    &'static str,
    &'static str,
    fn(&MetricsReport) -> &BTreeMap<String, u64>,
);

/// The exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The text of every metric of `snapshot`.
pub fn render(snapshot: &Snapshot) -> String {
    let mut out = Exposition::default();
    calls(&mut out, snapshot);
    connections(&mut out, snapshot);
    lab(&mut out, snapshot);
    out.text
}

/// Writes families: a `# HELP` and `# TYPE` before each family's first
/// sample, every sample of a family together.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (key, value)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{key}=\"{}\"", escape(value));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }
}

/// A label value as the format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: integers without a fraction, `+Inf` as Prometheus
/// spells it.
fn number(value: f64) -> String {
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if value.fract() == 0.0 && value.abs() < 1e15 {
        return format!("{}", value as i64);
    }
    format!("{value}")
}

/// A daemon's host, from its location (`host:port`, or `./u:PATH` for a
/// Unix socket, which is on this host).
fn host_of(location: &str) -> String {
    if location.starts_with("./u:") {
        return "localhost".to_owned();
    }
    location
        .rsplit_once(':')
        .map_or(location, |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

/// Each method of each daemon's services, with its labels.
fn methods(snapshot: &Snapshot) -> Vec<([(&'static str, String); 5], &MethodReport)> {
    let mut all = Vec::new();
    for (location, report) in &snapshot.metrics {
        for (service, counted) in &report.services {
            for (method, metrics) in &counted.methods {
                let labels = [
                    ("host", host_of(location)),
                    ("address", location.clone()),
                    ("daemon", report.daemon.clone()),
                    ("service", service.clone()),
                    ("method", method.clone()),
                ];
                all.push((labels, metrics));
            }
        }
    }
    all
}

fn borrowed<'a>(labels: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    labels.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn calls(out: &mut Exposition, snapshot: &Snapshot) {
    let methods = methods(snapshot);
    let counters: [MethodFamily; 4] = [
        (
            "pyrolab_calls_total",
            "Calls of a service's method done, failed ones included.",
            |m| m.calls as f64,
        ),
        (
            "pyrolab_calls_in_flight",
            "Calls of a service's method running now.",
            |m| m.in_flight as f64,
        ),
        (
            "pyrolab_call_request_bytes_total",
            "Bytes of the calls' requests on the wire, headers included.",
            |m| m.bytes_in as f64,
        ),
        (
            "pyrolab_call_response_bytes_total",
            "Bytes of the calls' replies on the wire, headers included.",
            |m| m.bytes_out as f64,
        ),
    ];
    for (name, help, value) in counters {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        out.family(name, kind, help);
        for (labels, metrics) in &methods {
            out.sample(name, &borrowed(labels), value(metrics));
        }
    }
    out.family(
        "pyrolab_call_errors_total",
        "counter",
        "Calls of a service's method that raised, by exception class.",
    );
    for (labels, metrics) in &methods {
        for (class, count) in &metrics.errors {
            let mut labels = borrowed(labels);
            labels.push(("exception", class));
            out.sample("pyrolab_call_errors_total", &labels, *count as f64);
        }
    }
    histogram(out, snapshot, &methods);
    out.family(
        "pyrolab_service_locks_total",
        "counter",
        "Locks taken on a service of a lockable daemon.",
    );
    for (location, report) in &snapshot.metrics {
        for (service, counted) in &report.services {
            let host = host_of(location);
            let labels = [
                ("host", host.as_str()),
                ("address", location.as_str()),
                ("daemon", report.daemon.as_str()),
                ("service", service.as_str()),
            ];
            out.sample(
                "pyrolab_service_locks_total",
                &labels,
                counted.locks_taken as f64,
            );
        }
    }
}

fn histogram(
    out: &mut Exposition,
    snapshot: &Snapshot,
    methods: &[([(&'static str, String); 5], &MethodReport)],
) {
    let name = "pyrolab_call_duration_seconds";
    out.family(
        name,
        "histogram",
        "How long calls of a service's method took in the daemon, from reading the request to having the reply.",
    );
    let bounds = snapshot
        .metrics
        .values()
        .next()
        .map(|report: &MetricsReport| report.latency_buckets.clone())
        .unwrap_or_default();
    for (labels, metrics) in methods {
        let mut cumulative = 0u64;
        for (i, count) in metrics.buckets.iter().enumerate() {
            cumulative += count;
            let le = match bounds.get(i) {
                Some(bound) => number(*bound),
                None => "+Inf".to_owned(),
            };
            let mut labels = borrowed(labels);
            labels.push(("le", &le));
            out.sample(&format!("{name}_bucket"), &labels, cumulative as f64);
        }
        out.sample(&format!("{name}_sum"), &borrowed(labels), metrics.seconds);
        out.sample(
            &format!("{name}_count"),
            &borrowed(labels),
            metrics.calls as f64,
        );
    }
}

fn connections(out: &mut Exposition, snapshot: &Snapshot) {
    let daemons: Vec<(String, &String, &MetricsReport)> = snapshot
        .metrics
        .iter()
        .map(|(location, report)| (host_of(location), location, report))
        .collect();
    let labels = |host: &'_ String, location: &'_ String, report: &'_ MetricsReport| {
        vec![
            ("host", host.clone()),
            ("address", location.clone()),
            ("daemon", report.daemon.clone()),
        ]
    };
    let plain: [DaemonFamily; 3] = [
        (
            "pyrolab_daemon_connections_total",
            "counter",
            "Client connections a daemon took on since it started.",
            |r| r.connections.accepted as f64,
        ),
        (
            "pyrolab_daemon_connections_open",
            "gauge",
            "Client connections a daemon serves now.",
            |r| r.connections.open as f64,
        ),
        (
            "pyrolab_daemon_start_time_seconds",
            "gauge",
            "When a daemon started, in seconds since the Unix epoch.",
            |r| r.started,
        ),
    ];
    for (name, kind, help, value) in plain {
        out.family(name, kind, help);
        for (host, location, report) in &daemons {
            let labels = labels(host, location, report);
            out.sample(name, &borrowed(&labels), value(report));
        }
    }
    let by_reason: [ReasonFamily; 2] = [
        (
            "pyrolab_daemon_connections_refused_total",
            "Connections a daemon turned away before serving them, by reason.",
            |r| &r.connections.refused,
        ),
        (
            "pyrolab_daemon_connections_cut_total",
            "Connections a daemon closed, by reason.",
            |r| &r.connections.cut,
        ),
    ];
    for (name, help, counts) in by_reason {
        out.family(name, "counter", help);
        for (host, location, report) in &daemons {
            for (reason, count) in counts(report) {
                let mut labels = labels(host, location, report);
                labels.push(("reason", reason.clone()));
                out.sample(name, &borrowed(&labels), *count as f64);
            }
        }
    }
}

/// What the monitor itself saw: services, name servers, hosts.
fn lab(out: &mut Exposition, snapshot: &Snapshot) {
    out.family(
        "pyrolab_service_up",
        "gauge",
        "Whether a registered service's daemon answers (1) or not (0).",
    );
    for service in &snapshot.services {
        if service.status == ServiceState::Unregistered {
            continue;
        }
        let up = matches!(
            service.status,
            ServiceState::Available | ServiceState::Locked
        );
        let labels = [
            ("service", service.name.as_str()),
            ("nameserver", service.nameserver.as_str()),
        ];
        out.sample("pyrolab_service_up", &labels, f64::from(u8::from(up)));
    }
    out.family(
        "pyrolab_service_locked",
        "gauge",
        "Whether a client holds a service's lock (1) or not (0).",
    );
    for service in &snapshot.services {
        if service.status == ServiceState::Unregistered {
            continue;
        }
        let labels = [
            ("service", service.name.as_str()),
            ("nameserver", service.nameserver.as_str()),
        ];
        let locked = service.status == ServiceState::Locked;
        out.sample(
            "pyrolab_service_locked",
            &labels,
            f64::from(u8::from(locked)),
        );
    }
    out.family(
        "pyrolab_service_unregistered",
        "gauge",
        "Services of this host's lab that could not register with a name server (1).",
    );
    for service in &snapshot.services {
        if service.status == ServiceState::Unregistered {
            let labels = [
                ("service", service.name.as_str()),
                ("nameserver", service.nameserver.as_str()),
            ];
            out.sample("pyrolab_service_unregistered", &labels, 1.0);
        }
    }
    out.family(
        "pyrolab_nameserver_up",
        "gauge",
        "Whether a name server answers (1) or not (0).",
    );
    for ns in &snapshot.nameservers {
        let labels = [
            ("nameserver", ns.name.as_str()),
            ("address", ns.address.as_str()),
        ];
        out.sample(
            "pyrolab_nameserver_up",
            &labels,
            f64::from(u8::from(ns.reachable)),
        );
    }
    out.family(
        "pyrolab_host_up",
        "gauge",
        "Whether a lab host's manager answers (1) or not (0).",
    );
    for host in &snapshot.hosts {
        let labels = [("host", host.host.as_str())];
        out.sample(
            "pyrolab_host_up",
            &labels,
            f64::from(u8::from(host.reachable)),
        );
    }
    out.family(
        "pyrolab_monitor_look_timestamp_seconds",
        "gauge",
        "When the monitor last looked at the lab, in seconds since the Unix epoch.",
    );
    let taken = humantime::parse_rfc3339(&snapshot.taken)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    out.sample("pyrolab_monitor_look_timestamp_seconds", &[], taken);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_numbers_written_as_prometheus_reads_them() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(0.000025), "0.000025");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(host_of("127.0.0.1:9100"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9100"), "::1");
        assert_eq!(host_of("./u:/tmp/lab.sock"), "localhost");
    }
}
