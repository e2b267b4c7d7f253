//! The web monitor, end to end: the manager serving it for the demo lab,
//! a real browser (headless Chromium) reading the page as a person would,
//! and the JSON API with good and bad requests.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use pyrolab_test_support::browser::{Browser, http_get};
use pyrolab_test_support::managed_lab::Lab;
use pyrolab_test_support::{
    Background, Sandbox, process_running, python_with_pyro5, repo_root, run, run_host, target_dir,
    wait_until,
};
use serde_json::Value;

/// The demo lab, its monitor on a free port, looking often.
/// The demo lab's services, by name.
const DEMO_SERVICES: [&str; 5] = [
    "autoconnect",
    "library",
    "sample",
    "test.SampleAutoconnectInstrument",
    "test.SampleService",
];

fn lab_with_monitor() -> (Lab, String) {
    Lab::demo_with_monitor()
}

fn get_json(url: &str) -> (u16, Value) {
    let (status, body) = http_get(url);
    let value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"));
    (status, value)
}

/// What a person reads in the row of `service`.
fn row(browser: &mut Browser, service: &str) -> String {
    browser
        .eval(&format!(
            "Array.from(document.querySelectorAll('#services tbody tr'))\
               .filter(r => r.querySelector('strong') && r.querySelector('strong').innerText === {service:?})\
               .map(r => r.innerText.replace(/\\s+/g, ' ')).join(' | ')"
        ))
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[track_caller]
fn wait_row(browser: &mut Browser, service: &str, shows: &str, timeout: Duration) {
    let shown = wait_until(timeout, || row(browser, service).contains(shows));
    assert!(
        shown,
        "the row of {service} never showed {shows:?}; it shows {:?}\npage:\n{}",
        row(browser, service),
        browser.text()
    );
}

#[test]
fn the_page_shows_each_service_its_lock_holder_and_a_daemon_that_dies_and_comes_back() {
    let (lab, url) = lab_with_monitor();
    let mut browser = Browser::start(1280, 1000);
    browser.open(&url);
    for service in ["library", "sample", "autoconnect"] {
        wait_row(&mut browser, service, "available", Duration::from_secs(30));
    }
    assert!(row(&mut browser, "library").contains("Library catalog system"));
    let driver = format!(
        "libservice.LibraryCatalog (plugin-api {})",
        pyrolab_plugin_api::PLUGIN_API_VERSION
    );
    assert!(row(&mut browser, "library").contains(&driver));
    let text = browser.text();
    assert!(text.contains("This host's components"), "{text}");
    assert!(text.contains("lockable"), "{text}");
    // A mark in the page: still there at the end, so it never reloaded.
    browser.eval("window.unreloaded = 'yes'");

    // A client locks the library for itself.
    let port = lab.ns_port;
    let mut client = Background::start(Command::new(python_with_pyro5()).args([
        "-c",
        &format!(
            "import time, Pyro5.api as p\n\
             library = p.Proxy('PYRONAME:library@127.0.0.1:{port}')\n\
             library.lock('alice')\n\
             print('locked', flush=True)\n\
             time.sleep(120)"
        ),
    ]));
    client.wait_for_line("locked", Duration::from_secs(60));
    wait_row(
        &mut browser,
        "library",
        "locked by alice",
        Duration::from_secs(20),
    );
    let artifacts = target_dir().join("test-artifacts");
    browser.screenshot(&artifacts.join("monitor-locked.png"));
    client.stop();
    wait_row(
        &mut browser,
        "library",
        "available",
        Duration::from_secs(20),
    );

    // The daemon dies, and again as soon as it is back: the third time the
    // manager waits 2 s before restarting it, long enough to see.
    for restarts in 1..=2 {
        kill_9(lab.pid("lockable"));
        let back = wait_until(Duration::from_secs(20), || {
            let daemon = lab.component("lockable");
            daemon["status"] == "running" && daemon["restarts"] == restarts
        });
        assert!(back, "{:#}", lab.ps());
    }
    // The page first catches up with the daemon that is back...
    wait_row(
        &mut browser,
        "library",
        "available",
        Duration::from_secs(10),
    );
    kill_9(lab.pid("lockable"));
    // ...then sees it go, and come back when the manager restarts it.
    wait_row(
        &mut browser,
        "library",
        "unreachable",
        Duration::from_secs(10),
    );
    browser.screenshot(&artifacts.join("monitor-unreachable.png"));
    let restarted = wait_until(Duration::from_secs(20), || {
        let daemon = lab.component("lockable");
        daemon["status"] == "running" && daemon["restarts"] == 3
    });
    assert!(restarted, "{:#}", lab.ps());
    wait_row(
        &mut browser,
        "library",
        "available",
        Duration::from_secs(30),
    );
    let text = browser.text();
    assert!(text.contains("library: available → unreachable"), "{text}");
    assert!(text.contains("library: unreachable → available"), "{text}");
    assert_eq!(browser.eval("window.unreloaded"), Value::from("yes"));

    // A component's log, followed as it grows.
    browser.eval("document.querySelector('tr[data-component=\"lockable\"] button').click()");
    browser.wait_for_text(
        "the lockable daemon's log",
        Duration::from_secs(10),
        |text| text.contains("Log: daemon lockable") && text.contains("[manager] ready at"),
    );
    let before = browser.eval("document.getElementById('log').innerText.length");

    run_host(lab.host().args(["restart", "daemon", "lockable"])).success();
    let followed = wait_until(Duration::from_secs(20), || {
        browser.text().contains("[manager] stopping (SIGTERM")
    });
    assert!(
        followed,
        "the followed log never showed the restart: {}\n{}",
        browser.eval("JSON.stringify({last: state.logLast, seen: state.logSeen.size, follow: document.getElementById('follow').checked})"),
        browser.eval("document.getElementById('log').innerText")
    );
    let after = browser.eval("document.getElementById('log').innerText.length");
    assert!(after.as_u64() > before.as_u64(), "{before} -> {after}");

    // On a phone's screen every service is still there.
    browser.command(
        "Emulation.setDeviceMetricsOverride",
        serde_json::json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
    );
    for service in ["library", "sample", "autoconnect"] {
        wait_row(&mut browser, service, "available", Duration::from_secs(10));
    }
    browser.screenshot(&artifacts.join("monitor-phone.png"));
    eprintln!("screenshots in {}", artifacts.display());
}

/// A service of this lab that could not register is on the page and in
/// the API, with the reason, until it registers.
#[test]
fn services_that_could_not_register_show_with_the_reason_until_they_do() {
    let lab = Lab::demo();
    // Its name server is not started: nothing listens on its port.
    let text = std::fs::read_to_string(&lab.config).expect("read").replace(
        "  nameservers: [production]\n  daemons:",
        "  nameservers: []\n  daemons:",
    );
    std::fs::write(&lab.config, text).expect("write");
    let up = lab.up().failure(1);
    assert!(up.stderr.contains("could not register any"), "{up}");
    let url = lab.ps()["manager"]["monitor"]
        .as_str()
        .expect("the monitor's URL in ps --json")
        .to_owned();
    let reason = format!("name server unreachable at 127.0.0.1:{}", lab.ns_port);
    let listed = wait_until(Duration::from_secs(20), || {
        get_json(&format!("{url}api/services?status=unregistered"))
            .1
            .as_array()
            .map(Vec::len)
            == Some(DEMO_SERVICES.len())
    });
    let (_, services) = get_json(&format!("{url}api/services"));
    assert!(listed, "{services}");
    for service in services.as_array().expect("a list") {
        assert_eq!(service["status"], "unregistered", "{service}");
        assert_eq!(service["nameserver"], "production", "{service}");
        assert!(
            service["reason"]
                .as_str()
                .is_some_and(|r| r.starts_with(&reason)),
            "{service}"
        );
        assert!(
            service["uri"]
                .as_str()
                .is_some_and(|u| u.starts_with("PYRO:")),
            "{service}"
        );
    }
    let (_, status) = get_json(&format!("{url}api/status"));
    assert_eq!(status["services"], services, "{status}");

    let mut browser = Browser::start(1280, 1000);
    browser.open(&url);
    for service in ["library", "sample", "autoconnect"] {
        wait_row(
            &mut browser,
            service,
            "not registered",
            Duration::from_secs(30),
        );
        let shown = row(&mut browser, service);
        assert!(shown.contains(&reason), "{shown}");
        assert!(
            shown.contains("this lab could not register it with production"),
            "{shown}"
        );
    }
    browser.screenshot(&target_dir().join("test-artifacts/monitor-unregistered.png"));

    // The name server starts: the daemons register, and the page follows.
    run_host(lab.host().args(["start", "nameserver", "production"])).success();
    for service in ["library", "sample", "autoconnect"] {
        wait_row(&mut browser, service, "available", Duration::from_secs(30));
    }
    let (_, services) = get_json(&format!("{url}api/services"));
    assert!(
        services
            .as_array()
            .is_some_and(|all| all.len() == DEMO_SERVICES.len()
                && all.iter().all(|s| s["status"] == "available")),
        "{services}"
    );
    let text = browser.text();
    assert!(text.contains("library: unregistered → available"), "{text}");
}

fn kill_9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn the_api_answers_each_endpoint_and_refuses_bad_parameters() {
    let (lab, url) = lab_with_monitor();
    let ready = wait_until(Duration::from_secs(20), || {
        let (status, body) = http_get(&format!("{url}api/services"));
        status == 200
            && serde_json::from_str::<Value>(&body)
                .is_ok_and(|v| v.as_array().map(Vec::len) == Some(DEMO_SERVICES.len()))
    });
    assert!(ready, "the services never appeared");

    let (status, index) = get_json(&format!("{url}api"));
    assert_eq!(status, 200);
    assert!(index["endpoints"]["/api/logs"].is_string(), "{index}");

    let (status, all) = get_json(&format!("{url}api/status"));
    assert_eq!(status, 200);
    for key in [
        "taken",
        "polling_s",
        "nameservers",
        "services",
        "components",
        "manager",
        "events",
    ] {
        assert!(all.get(key).is_some(), "{key} missing: {all}");
    }
    let (_, nameservers) = get_json(&format!("{url}api/nameservers"));
    assert_eq!(nameservers[0]["name"], "production", "{nameservers}");
    assert_eq!(nameservers[0]["reachable"], true, "{nameservers}");
    assert_eq!(
        nameservers[0]["services"],
        DEMO_SERVICES.len(),
        "{nameservers}"
    );

    let (_, services) = get_json(&format!("{url}api/services"));
    let names: Vec<&str> = services
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(names, DEMO_SERVICES);
    let (_, available) = get_json(&format!("{url}api/services?status=available"));
    assert_eq!(
        available.as_array().map(Vec::len),
        Some(DEMO_SERVICES.len())
    );
    let (_, locked) = get_json(&format!("{url}api/services?status=locked"));
    assert_eq!(locked, Value::Array(Vec::new()));

    let (_, components) = get_json(&format!("{url}api/components"));
    assert_eq!(components.as_array().map(Vec::len), Some(3), "{components}");
    let (status, events) = get_json(&format!("{url}api/events?since=1h"));
    assert_eq!(status, 200);
    assert!(events.is_array());

    let (status, logs) = get_json(&format!("{url}api/logs?component=lockable&lines=3"));
    assert_eq!(status, 200, "{logs}");
    assert_eq!(logs["lines"].as_array().map(Vec::len), Some(3), "{logs}");
    assert!(
        logs["last"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{logs}"
    );
    let (status, since) = get_json(&format!(
        "{url}api/logs?component=production&kind=nameserver&since=2999-01-01T00:00:00Z"
    ));
    assert_eq!(
        (status, since["lines"].clone()),
        (200, Value::Array(Vec::new()))
    );
    let (status, manager) = get_json(&format!("{url}api/logs?component=manager"));
    assert_eq!(status, 200, "{manager}");

    for (query, code, says) in [
        (
            "api/services?status=bogus",
            400,
            "status must be available, locked, unreachable or unregistered",
        ),
        (
            "api/services?state=locked",
            400,
            "unknown parameter \"state\"",
        ),
        ("api/status?x=1", 400, "unknown parameter"),
        ("api/events?since=whenever", 400, "since:"),
        ("api/logs", 400, "component is required"),
        (
            "api/logs?component=lockable&lines=0",
            400,
            "lines must be a number",
        ),
        (
            "api/logs?component=lockable&lines=many",
            400,
            "lines must be a number",
        ),
        (
            "api/logs?component=lockable&kind=robot",
            400,
            "kind must be daemon, nameserver or command",
        ),
        ("api/logs?component=nonesuch", 404, "no component named"),
        ("api/nothing", 404, "no such page"),
    ] {
        let (status, body) = get_json(&format!("{url}{query}"));
        assert_eq!(status, code, "{query}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| e.contains(says)),
            "{query}: {body}"
        );
    }
    // Read-only: nothing but GET.
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = TcpStream::connect(address).expect("connect");
    write!(stream, "POST /api/status HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    assert!(response.starts_with("HTTP/1.1 405"), "{response}");

    // A name server that stops answering does not make its services
    // vanish: they stay, as last listed, and their daemons still answer.
    let ns = lab.pid("production");
    let signal = |sig: &str| {
        assert!(
            Command::new("kill")
                .args([sig, &ns.to_string()])
                .status()
                .expect("kill")
                .success()
        );
    };
    signal("-STOP");
    let silent = wait_until(Duration::from_secs(20), || {
        get_json(&format!("{url}api/nameservers")).1[0]["reachable"] == false
    });
    let (_, during) = get_json(&format!("{url}api/services"));
    signal("-CONT");
    assert!(silent, "the name server never looked silent");
    let during = during.as_array().expect("a list");
    assert_eq!(during.len(), DEMO_SERVICES.len(), "{during:?}");
    assert!(
        during
            .iter()
            .all(|s| s["stale"] == true && s["status"] == "available"),
        "{during:?}"
    );
    let (_, events) = get_json(&format!("{url}api/events"));
    assert!(!events.to_string().contains("gone"), "{events}");
    let fresh = wait_until(Duration::from_secs(20), || {
        get_json(&format!("{url}api/services")).1[0]["stale"] == false
    });
    assert!(fresh);

    // Idle clients take at most 64 of the manager's descriptors, and are
    // let go after 15 s, so the page answers again.
    let manager = lab.manager_pid();
    let descriptors = || {
        std::fs::read_dir(format!("/proc/{manager}/fd"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = descriptors();
    let idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(address).expect("an idle connection"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let during = descriptors();
    assert!(during <= before + 70, "{before} -> {during} descriptors");
    let answered = wait_until(Duration::from_secs(40), || {
        http_get(&format!("{url}api/nameservers")).0 == 200
    });
    assert!(answered, "the monitor never answered again");
    drop(idle);

    // The page's assets come from the binary.
    for (asset, kind) in [
        ("", "text/html"),
        ("monitor.js", "javascript"),
        ("monitor.css", "text/css"),
    ] {
        let (status, body) = http_get(&format!("{url}{asset}"));
        assert_eq!(status, 200, "{asset}");
        assert!(!body.is_empty(), "{asset} ({kind})");
        assert!(
            !body.contains("https://"),
            "{asset} loads nothing from elsewhere"
        );
    }
    drop(lab);
}

#[test]
fn the_monitor_runs_on_its_own_against_any_name_server() {
    let (lab, _) = lab_with_monitor();
    // Another machine's view: no manager, just the name server's address.
    let elsewhere = Sandbox::new();
    let mut monitor = Background::start(elsewhere.host().args([
        "monitor",
        "--port",
        "0",
        "--ns-host",
        "127.0.0.1",
        "--ns-port",
        &lab.ns_port.to_string(),
        "--polling",
        "0.2",
    ]));
    let line = monitor.wait_for_line("monitor listening on ", Duration::from_secs(30));
    let url = line.rsplit(' ').next().expect("a URL").to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "bound to localhost: {url}"
    );
    let listed = wait_until(Duration::from_secs(20), || {
        get_json(&format!("{url}api/services"))
            .1
            .as_array()
            .map(Vec::len)
            == Some(DEMO_SERVICES.len())
    });
    assert!(listed, "{}", http_get(&format!("{url}api/services")).1);
    let (status, components) = get_json(&format!("{url}api/components"));
    assert_eq!(status, 404, "{components}");
    assert!(
        components["error"]
            .as_str()
            .is_some_and(|e| e.contains("no manager"))
    );
    // A client stuck in the middle of a request holds nothing up.
    let address = url.trim_start_matches("http://").trim_end_matches('/');
    let mut stuck = TcpStream::connect(address).expect("connect");
    write!(stuck, "GET /api/status HTTP/1.1\r\nHost: x\r\n").expect("half a request");
    let pid = monitor.pid();
    let stopping = std::time::Instant::now();
    let output = monitor.interrupt(Duration::from_secs(10));
    assert_eq!(output.code, Some(0), "{output}");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "{:?}",
        stopping.elapsed()
    );
    assert!(!process_running(pid));
    drop(stuck);

    let bad = run_host(elsewhere.host().args(["monitor", "--polling", "0"])).failure(2);
    assert!(bad.stderr.contains("--polling"), "{bad}");
}

/// Against a stock Python Pyro5 name server and daemon, with a name that
/// points at nothing: the monitor needs nothing of pyrolab-host's.
#[test]
fn the_monitor_watches_a_stock_pyro5_lab() {
    let mut stock = Background::start(Command::new(python_with_pyro5()).args([
        "-u",
        "-c",
        r#"
import threading, Pyro5.api as p
from Pyro5 import nameserver
uri, daemon, _ = nameserver.start_ns('127.0.0.1', 0, enableBroadcast=False)
threading.Thread(target=daemon.requestLoop, daemon=True).start()
@p.expose
class Thing:
    def hello(self):
        return "hi"
lab = p.Daemon(host='127.0.0.1')
thing = lab.register(Thing, 'thing')
ns = p.Proxy(uri)
ns.register('stock.thing', thing, metadata={'description:a stock Pyro5 object'})
ns.register('stock.gone', 'PYRO:gone@127.0.0.1:9')
print('NS', uri.port, flush=True)
lab.requestLoop()
"#,
    ]));
    let line = stock.wait_for_line("NS ", Duration::from_secs(60));
    let ns_port = line.rsplit(' ').next().expect("a port").to_owned();
    let sandbox = Sandbox::new();
    let mut monitor = Background::start(sandbox.host().args([
        "monitor",
        "--port",
        "0",
        "--ns-host",
        "127.0.0.1",
        "--ns-port",
        &ns_port,
        "--polling",
        "0.2",
    ]));
    let line = monitor.wait_for_line("monitor listening on ", Duration::from_secs(30));
    let url = line.rsplit(' ').next().expect("a URL").to_owned();
    let seen = wait_until(Duration::from_secs(20), || {
        get_json(&format!("{url}api/services"))
            .1
            .as_array()
            .map(Vec::len)
            == Some(2)
    });
    let (_, services) = get_json(&format!("{url}api/services"));
    assert!(seen, "{services}");
    let by_name = |name: &str| {
        services
            .as_array()
            .and_then(|all| all.iter().find(|s| s["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("{name} missing: {services}"))
    };
    let thing = by_name("stock.thing");
    assert_eq!(thing["status"], "available", "{thing}");
    assert_eq!(thing["description"], "a stock Pyro5 object", "{thing}");
    assert_eq!(thing["plugin_api"], Value::Null, "{thing}");
    let gone = by_name("stock.gone");
    assert_eq!(gone["status"], "unreachable", "{gone}");
    assert!(
        gone["reason"]
            .as_str()
            .is_some_and(|r| r.contains("does not answer")),
        "{gone}"
    );
    drop(monitor.interrupt(Duration::from_secs(10)));
    drop(stock.stop());
}

#[test]
fn reload_applies_a_changed_monitor_section() {
    let (lab, url) = lab_with_monitor();
    let text = std::fs::read_to_string(&lab.config).expect("read");
    std::fs::write(&lab.config, text.replace("polling: 0.2", "polling: 0.3")).expect("write");
    run_host(lab.host().args(["config", "update"]).arg(&lab.config)).success();
    let reload = run_host(lab.host().arg("reload")).success();
    assert!(
        reload
            .stdout
            .contains("monitor restarted with its new settings: http://127.0.0.1:"),
        "{reload}"
    );
    let new_url = lab.ps()["manager"]["monitor"]
        .as_str()
        .expect("a URL")
        .to_owned();
    let answered = wait_until(Duration::from_secs(20), || {
        http_get(&format!("{new_url}api/status")).0 == 200
    });
    assert!(answered);
    let (_, status) = get_json(&format!("{new_url}api/status"));
    assert_eq!(status["polling_s"], 0.3, "{status}");
    let _ = url;
}

/// The demo lab with TLS everywhere (client certificates required by the
/// name server and daemons), its monitor serving HTTPS to browsers that
/// present none: the page, its API, and the monitor's own calls to the
/// lab, with its certificate.
#[test]
fn the_page_works_over_https_in_a_lab_with_tls() {
    let lab = Lab::demo_with("tls:\n  require_client_cert: true\n");
    let text = std::fs::read_to_string(&lab.config).expect("read the config");
    let text = text.replace(
        "  polling: 0.2\n",
        "  polling: 0.2\n  tls: {require_client_cert: false}\n  access: {logs: [admin]}\n",
    );
    std::fs::write(&lab.config, text).expect("write the config");
    run_host(lab.host().args(["tls", "init"])).success();
    for name in ["production", "lockable", "instruments", "monitor"] {
        run_host(
            lab.host()
                .args(["tls", "issue", name, "--host", "127.0.0.1"]),
        )
        .success();
    }
    for person in ["admin", "alice"] {
        run_host(lab.host().args(["tls", "issue", person, "--client"])).success();
    }
    lab.up().success();
    let url = lab.ps()["manager"]["monitor"]
        .as_str()
        .expect("the monitor's URL in ps --json")
        .to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    // A client that checks the certificate against the lab CA, as a
    // person's browser trusting it would.
    let tls_dir = lab.sandbox.data_dir().join("tls");
    let fetch_as = |identity: Option<&str>, path: &str| {
        let mut command = Command::new(python_with_pyro5());
        command
            .arg(repo_root().join("tests/python/https_get.py"))
            .arg(&tls_dir)
            .arg(format!("{url}{path}"))
            .args(identity);
        run(&mut command, Duration::from_secs(30))
    };
    let fetch = |path: &str| fetch_as(None, path);
    // Listed and probed over TLS with the monitor's own certificate.
    let available = wait_until(Duration::from_secs(30), || {
        let output = fetch("api/services");
        output.code == Some(0)
            && serde_json::from_str::<Value>(&output.stdout).is_ok_and(|services| {
                services.as_array().is_some_and(|all| {
                    all.len() == DEMO_SERVICES.len()
                        && all.iter().all(|s| s["status"] == "available")
                })
            })
    });
    assert!(available, "{}", fetch("api/services"));
    let mut browser = Browser::start(1280, 1000);
    // The browser does not know the lab CA: told to accept its certificate.
    browser.command(
        "Security.setIgnoreCertificateErrors",
        serde_json::json!({ "ignore": true }),
    );
    browser.open(&url);
    for service in ["library", "sample", "autoconnect"] {
        wait_row(&mut browser, service, "available", Duration::from_secs(30));
    }
    let text = browser.text();
    assert!(text.contains("This host's components"), "{text}");
    let artifacts = target_dir().join("test-artifacts");
    browser.screenshot(&artifacts.join("monitor-https.png"));
    // Logs: only admin may read them; refusals are logged.
    let logs = "api/logs?component=production";
    for who in [None, Some("alice")] {
        let refused = fetch_as(who, logs);
        assert!(
            refused.stdout.starts_with("HTTP 403")
                && refused.stdout.contains("may not read the lab's logs"),
            "{who:?}: {refused}"
        );
    }
    let read = fetch_as(Some("admin"), logs);
    assert!(read.stdout.contains("listening on"), "{read}");
    let manager_log = std::fs::read_to_string(lab.sandbox.data_dir().join("logs/manager.log"))
        .unwrap_or_default();
    assert!(
        manager_log.contains("access denied: \"alice\" may not read the lab's logs"),
        "the refusal is logged:\n{manager_log}"
    );
    // Plain HTTP on the HTTPS port gets no page.
    let address = url.trim_start_matches("https://").trim_end_matches('/');
    let mut plain = TcpStream::connect(address).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    write!(plain, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}
