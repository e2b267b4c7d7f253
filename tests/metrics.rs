//! Call metrics, end to end: a known load from stock Pyro5 on the demo
//! lab's real daemons; the counts each daemon reports
//! (`Pyro.Daemon.metrics()`); the monitor's `/metrics` read by
//! prometheus_client's own text parser; the page's charts in headless
//! Chromium.
#![cfg(target_os = "linux")]

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use pyrolab_test_support::browser::{Browser, http_get};
use pyrolab_test_support::managed_lab::Lab;
use pyrolab_test_support::{python_with_pyro5, repo_root, run, wait_until};
use serde_json::Value;

/// The demo lab with its monitor, and the monitor's URL.
fn lab_with_monitor() -> (Lab, String) {
    Lab::demo_with_monitor()
}

/// Makes `echoes` calls of `sample.echo`, `failures` of `sample.divide(1,
/// 0)` (a ZeroDivisionError each) and `locks` lock/unlock pairs on
/// `library`, from stock Pyro5, then prints what both daemons report.
fn load(lab: &Lab, echoes: usize, failures: usize, locks: usize) -> (Value, Value) {
    let port = lab.ns_port;
    let script = format!(
        "import json, Pyro5.api as p\n\
         name = lambda n: 'PYRONAME:%s@127.0.0.1:{port}' % n\n\
         sample = p.Proxy(name('sample'))\n\
         for i in range({echoes}): assert sample.echo('x' * i).endswith('x' * i)\n\
         for i in range({failures}):\n\
         \x20   try: sample.divide(1, 0)\n\
         \x20   except ZeroDivisionError: pass\n\
         \x20   else: raise SystemExit('divide(1, 0) did not raise')\n\
         library = p.Proxy(name('library'))\n\
         for i in range({locks}):\n\
         \x20   library.lock('alice'); library.unlock()\n\
         ns = p.locate_ns('127.0.0.1', {port})\n\
         def metrics(service):\n\
         \x20   location = ns.lookup(service).location\n\
         \x20   return p.Proxy('PYRO:Pyro.Daemon@' + location).metrics()\n\
         print(json.dumps([metrics('sample'), metrics('library')]))\n"
    );
    let out = run(
        Command::new(python_with_pyro5()).args(["-c", &script]),
        Duration::from_secs(120),
    )
    .success();
    let reports: Vec<Value> =
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    (reports[0].clone(), reports[1].clone())
}

/// A method's counts in a daemon's report.
fn method<'a>(report: &'a Value, service: &str, method: &str) -> &'a Value {
    &report["services"][service]["methods"][method]
}

/// The samples of `/metrics`, as prometheus_client parses them.
fn parsed_metrics(lab: &Lab, url: &str) -> Vec<Value> {
    let (status, text) = http_get(&format!("{url}metrics"));
    assert_eq!(status, 200, "{text}");
    let scraped = lab.sandbox.path().join("metrics.txt");
    std::fs::write(&scraped, &text).expect("write the scrape");
    let parser = repo_root().join("tests/python/parse_metrics.py");
    let out = run(
        Command::new(python_with_pyro5()).arg(&parser).arg(&scraped),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.code,
        Some(0),
        "prometheus_client cannot parse /metrics:\n{out}\n{text}"
    );
    out.stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("a parsed sample"))
        .collect()
}

/// The value of the one sample named `name` whose labels include `labels`.
fn sample(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Value> = samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?} matches {found:?}");
    found.first().map(|s| match &s["value"] {
        Value::String(inf) if inf == "+Inf" => f64::INFINITY,
        value => value.as_f64().expect("a number"),
    })
}

#[test]
fn a_known_load_moves_each_daemon_s_metrics_and_the_monitor_s_prometheus_text() {
    let (lab, url) = lab_with_monitor();
    let (sample_daemon, library_daemon) = load(&lab, 50, 7, 3);

    let echo = method(&sample_daemon, "sample", "echo");
    assert_eq!(echo["calls"], 50, "{sample_daemon:#}");
    assert_eq!(echo["in_flight"], 0);
    assert_eq!(echo["errors"], serde_json::json!({}));
    let buckets: u64 = echo["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(buckets, 50, "every call is in one latency bucket");
    assert!(echo["seconds"].as_f64().unwrap() > 0.0);
    // Each request holds its message; the replies echo it back.
    assert!(echo["bytes_in"].as_u64().unwrap() > 40 * 50 + (0..50).sum::<u64>());
    assert!(echo["bytes_out"].as_u64().unwrap() > 40 * 50 + (0..50).sum::<u64>());
    let divide = method(&sample_daemon, "sample", "divide");
    assert_eq!(divide["calls"], 7);
    assert_eq!(
        divide["errors"],
        serde_json::json!({"ZeroDivisionError": 7})
    );
    assert_eq!(sample_daemon["daemon"], "instruments");
    assert!(sample_daemon["connections"]["accepted"].as_u64().unwrap() >= 1);
    assert_eq!(library_daemon["services"]["library"]["locks_taken"], 3);
    assert_eq!(method(&library_daemon, "library", "lock")["calls"], 3);

    // The metrics move with more calls.
    let (again, _) = load(&lab, 10, 1, 0);
    assert_eq!(method(&again, "sample", "echo")["calls"], 60);
    assert_eq!(
        method(&again, "sample", "divide")["errors"]["ZeroDivisionError"],
        8
    );

    // The monitor's next look serves them to Prometheus.
    let echo_labels = [
        ("service", "sample"),
        ("method", "echo"),
        ("daemon", "instruments"),
        ("host", "127.0.0.1"),
    ];
    let mut samples = Vec::new();
    let caught_up = wait_until(Duration::from_secs(20), || {
        samples = parsed_metrics(&lab, &url);
        sample(&samples, "pyrolab_calls_total", &echo_labels) == Some(60.0)
    });
    assert!(
        caught_up,
        "/metrics never showed the 60 calls: {samples:#?}"
    );
    let divide_labels = [("service", "sample"), ("method", "divide")];
    let errors = [
        ("service", "sample"),
        ("method", "divide"),
        ("exception", "ZeroDivisionError"),
    ];
    assert_eq!(
        sample(&samples, "pyrolab_call_errors_total", &errors),
        Some(8.0)
    );
    assert_eq!(
        sample(&samples, "pyrolab_calls_total", &divide_labels),
        Some(8.0)
    );
    // The histogram: cumulative buckets ending in +Inf, equal to the count.
    let mut buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s["name"] == "pyrolab_call_duration_seconds_bucket")
        .filter(|s| echo_labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| {
            let le = s["labels"]["le"].as_str().unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, s["value"].as_f64().unwrap())
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    assert!(buckets.len() > 10, "{buckets:?}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "{buckets:?}");
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, 60.0)));
    assert_eq!(
        sample(
            &samples,
            "pyrolab_call_duration_seconds_count",
            &echo_labels
        ),
        Some(60.0)
    );
    assert!(sample(&samples, "pyrolab_call_duration_seconds_sum", &echo_labels).unwrap() > 0.0);
    assert_eq!(
        sample(
            &samples,
            "pyrolab_service_locks_total",
            &[("service", "library")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &samples,
            "pyrolab_service_up",
            &[("service", "sample"), ("nameserver", "production")]
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &samples,
            "pyrolab_daemon_connections_total",
            &[("daemon", "instruments")]
        )
        .unwrap()
            >= 2.0
    );
    let types: BTreeMap<&str, &str> = samples
        .iter()
        .map(|s| (s["family"].as_str().unwrap(), s["type"].as_str().unwrap()))
        .collect();
    assert_eq!(types["pyrolab_calls"], "counter");
    assert_eq!(types["pyrolab_call_duration_seconds"], "histogram");
    assert_eq!(types["pyrolab_calls_in_flight"], "gauge");
}

#[test]
fn the_page_charts_each_service_s_calls_with_the_numbers_of_a_known_load() {
    let (lab, url) = lab_with_monitor();
    let mut browser = Browser::start(1280, 1400);
    browser.open(&url);
    // The monitor's first look, before the load: a chart's point is the
    // difference between two looks, at least 5 s apart.
    browser.wait_for_text("the Calls section", Duration::from_secs(30), |text| {
        text.contains("sample on instruments")
    });
    load(&lab, 40, 4, 0);
    let summary = |browser: &mut Browser| {
        browser
            .eval(
                "(document.querySelector('#calls details[data-service=\"sample\"] summary') || {}).innerText || ''",
            )
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let counted = wait_until(Duration::from_secs(20), || {
        summary(&mut browser).contains("44 calls, 4 errors")
    });
    assert!(counted, "the page shows {:?}", summary(&mut browser));
    // The services table says so too.
    let row = browser.eval(
        "Array.from(document.querySelectorAll('#services tbody tr'))\
           .filter(r => r.dataset.service === 'sample').map(r => r.innerText).join(' ')",
    );
    assert!(
        row.as_str().unwrap().contains("44 calls, 4 errors"),
        "{row}"
    );

    browser.eval("document.querySelector('#calls details[data-service=\"sample\"]').open = true");
    let chart = |browser: &mut Browser, title: &str| {
        browser.eval(&format!(
            "(() => {{ const d = document.querySelector('#calls details[data-service=\"sample\"]');\
               const svg = d && d.querySelector('svg[aria-label=\"{title}\"]');\
               if (!svg) return null;\
               const line = svg.querySelector('polyline');\
               return {{ points: Number(svg.dataset.points), max: Number(svg.dataset.max),\
                         drawn: line ? line.getAttribute('points').trim().split(' ').filter(Boolean).length : 0,\
                         width: svg.getBoundingClientRect().width }}; }})()"
        ))
    };
    let drawn = wait_until(Duration::from_secs(30), || {
        let rate = chart(&mut browser, "Call rate");
        rate["points"].as_u64().unwrap_or(0) >= 1 && rate["max"].as_f64().unwrap_or(0.0) > 0.0
    });
    assert!(
        drawn,
        "the call-rate chart never drew the load: {}",
        chart(&mut browser, "Call rate")
    );
    let rate = chart(&mut browser, "Call rate");
    assert!(rate["drawn"].as_u64().unwrap() >= 1, "{rate}");
    assert!(rate["width"].as_f64().unwrap() > 100.0, "{rate}");
    let latency = chart(&mut browser, "Latency");
    assert!(latency["max"].as_f64().unwrap() > 0.0, "{latency}");
    let errors = chart(&mut browser, "Errors");
    assert!(errors["max"].as_f64().unwrap() > 0.0, "{errors}");
    // Its methods, with the load's numbers, and its metadata.
    let table = browser.eval(
        "Array.from(document.querySelectorAll('#calls details[data-service=\"sample\"] table.methods tbody tr'))\
           .map(r => r.innerText.replace(/\\s+/g, ' ')).join(' | ')",
    );
    let table = table.as_str().unwrap().to_owned();
    assert!(table.contains("echo 40 0"), "{table}");
    assert!(
        table.contains("divide 4 4 (ZeroDivisionError 4)"),
        "{table}"
    );
    browser.wait_for_text("the service's methods", Duration::from_secs(20), |text| {
        text.contains("Methods:") && text.contains("delayed_echo") && text.contains("Properties:")
    });
    browser
        .screenshot(&pyrolab_test_support::target_dir().join("test-artifacts/monitor-charts.png"));
}
