//! The TSL-550 driver, loaded from its library by a daemon, driving the
//! simulated laser on a pseudo-terminal: from the Rust client and from the
//! stock Python Pyro5 client, and when the laser misbehaves.
#![cfg(target_os = "linux")]

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use pyrolab_host::client::{ClientError, Proxy};
use pyrolab_plugin_api::{CallArgs, Value};
use pyrolab_test_support::pty_laser::{Mode, PtyLaser};
use pyrolab_test_support::{Background, Output, Sandbox, python_with_pyro5, run};

/// A lockable daemon `lab` serving the laser (as PyroLab's configuration
/// names it) and the sample service, on loopback.
fn lab(sandbox: &Sandbox, laser: &PtyLaser) -> PathBuf {
    for lib in ["tsl550", "sample"] {
        sandbox.install_plugin(lib);
    }
    let text = format!(
        "version: '1.0'
plugin_dirs: [{plugins}]
daemons:
  lab: {{classname: LockableDaemon, host: 127.0.0.1, port: 0}}
services:
  laser:
    module: pyrolab.drivers.lasers.tsl550
    classname: TSL550
    parameters: {{port: {port}, timeout: 0.5}}
    instancemode: single
    daemon: lab
  sample: {{module: sample, classname: SampleService, daemon: lab}}
",
        plugins = sandbox.plugin_dir().display(),
        port = laser.port().display()
    );
    let path = sandbox.path().join("lab.yaml");
    fs::write(&path, text).expect("write the lab config");
    path
}

/// Starts the daemon; returns it and its `host:port`.
fn start(sandbox: &Sandbox, config: &PathBuf) -> (Background, String) {
    let mut daemon = Background::start(
        sandbox
            .host()
            .args(["run", "daemon", "lab", "--config"])
            .arg(config),
    );
    let line = daemon.wait_for_line("daemon lab listening on ", Duration::from_secs(30));
    (
        daemon,
        line.rsplit(' ').next().expect("a location").to_owned(),
    )
}

fn proxy(location: &str, service: &str) -> Proxy {
    let mut proxy = Proxy::connect(&format!("PYRO:{service}@{location}")).expect("connect");
    proxy.set_timeout(Some(Duration::from_secs(30)));
    proxy
}

fn call(proxy: &Proxy, method: &str, args: Vec<Value>) -> Result<Value, ClientError> {
    proxy.call_with(method, CallArgs::positional(args))
}

fn remote_kind(result: Result<Value, ClientError>) -> (String, String) {
    match result {
        Err(ClientError::Remote(error)) => (error.kind().to_owned(), error.message.clone()),
        other => panic!("expected a remote exception, got {other:?}"),
    }
}

#[test]
fn the_rust_client_tunes_powers_and_sweeps_the_laser() {
    let sandbox = Sandbox::new();
    let laser = PtyLaser::start();
    let (_daemon, location) = start(&sandbox, &lab(&sandbox, &laser));
    let tsl = proxy(&location, "laser");

    assert_eq!(
        call(&tsl, "autoconnect", vec![]).unwrap(),
        Value::Bool(true)
    );
    let ident = call(&tsl, "ident", vec![]).unwrap();
    assert_eq!(ident, Value::from("SANTEC,TSL-550,06020001,0001.0000"));
    call(&tsl, "on", vec![]).unwrap();
    assert_eq!(
        call(&tsl, "wavelength", vec![1560.5.into()]).unwrap(),
        Value::Float(1560.5)
    );
    assert_eq!(
        call(&tsl, "wavelength", vec![]).unwrap(),
        Value::Float(1560.5)
    );
    let thz = call(&tsl, "frequency", vec![]).unwrap();
    assert!(
        matches!(thz, Value::Float(f) if (f - 192.1131).abs() < 1e-3),
        "{thz:?}"
    );
    call(&tsl, "power_dBm", vec![(-2.0).into()]).unwrap();
    let mw = call(&tsl, "power_mW", vec![]).unwrap();
    assert!(
        matches!(mw, Value::Float(m) if (m - 0.631).abs() < 1e-3),
        "{mw:?}"
    );
    call(&tsl, "open_shutter", vec![]).unwrap();

    // A 1 nm sweep at 10 nm/s, logged every 0.1 nm.
    call(&tsl, "sweep_step_wavelength", vec![0.1.into()]).unwrap();
    call(
        &tsl,
        "sweep_wavelength",
        vec![1550.0.into(), 1551.0.into(), 0.1.into()],
    )
    .unwrap();
    let running = Instant::now();
    loop {
        match call(&tsl, "sweep_status", vec![]).unwrap() {
            Value::Int(0) => break,
            Value::Int(1) => {}
            other => panic!("sweep status {other:?}"),
        }
        assert!(
            running.elapsed() < Duration::from_secs(10),
            "the sweep never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = call(&tsl, "wavelength_logging", vec![]).unwrap();
    let Value::List(points) = log else {
        panic!("a list: {log:?}")
    };
    assert_eq!(points.len(), 11);
    assert_eq!(points[0], Value::Float(1550.0));
    assert_eq!(points[10], Value::Float(1551.0));
    // The same log as an item stream.
    let streamed: Vec<Value> = tsl
        .stream("stream_wavelength_logging", CallArgs::default())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(streamed, points);

    call(&tsl, "off", vec![]).unwrap();
    assert_eq!(call(&tsl, "status", vec![]).unwrap(), Value::from("000000"));
    call(&tsl, "close", vec![]).unwrap();
    assert_eq!(
        remote_kind(call(&tsl, "wavelength", vec![])).0,
        "ConnectionError"
    );
    let received = laser.received();
    assert!(received.contains(&"WA1560.5000".to_owned()), "{received:?}");
    assert!(received.contains(&"SS1550.0000".to_owned()), "{received:?}");
}

fn python(script: &str) -> Output {
    run(
        Command::new(python_with_pyro5()).args(["-c", script]),
        Duration::from_secs(60),
    )
}

#[test]
fn the_python_client_drives_the_laser_and_meets_locks_and_range_errors() {
    let sandbox = Sandbox::new();
    let laser = PtyLaser::start();
    let (_daemon, location) = start(&sandbox, &lab(&sandbox, &laser));
    let output = python(&format!(
        r#"
import time, Pyro5.api as p
uri = "PYRO:laser@{location}"
laser = p.Proxy(uri)
laser.autoconnect()
laser.on()
laser.wavelength(1555.0)
print("wavelength", laser.wavelength())
laser.power_dBm(1.5)
print("power", laser.power_dBm())
laser.sweep_set_mode(continuous=True, twoway=False, trigger=False, const_freq_step=False)
print("mode", sorted(laser.sweep_get_mode().items()))
print("connected", laser.connected, "on", laser.is_on)
try:
    laser.wavelength(1700)
except ValueError as e:
    print("ValueError", e)
laser.off()
try:
    laser.wavelength(1560)
except ValueError as e:
    print("refused", e)
laser.lock("alice")
other = p.Proxy(uri)
try:
    other.wavelength()
except ConnectionRefusedError as e:
    print("locked", e)
laser.unlock()
print("free", other.wavelength())
laser.on()
laser.sweep_step_wavelength(0.05)
laser.sweep_wavelength(1550.0, 1550.5, 0.05)
deadline = time.time() + 10
while laser.sweep_status() != 0 and time.time() < deadline:
    time.sleep(0.02)
print("swept", laser.sweep_status(), laser.wavelength_logging_number(), laser.wavelength_logging()[-1])
print("streamed", list(laser.stream_wavelength_logging()) == laser.wavelength_logging())
laser.off()
print("status", laser.status(), laser.is_on)
"#
    ))
    .success();
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines[0], "wavelength 1555.0", "{output}");
    assert_eq!(lines[1], "power 1.5", "{output}");
    assert_eq!(
        lines[2],
        "mode [('const_freq_step', False), ('continuous', True), ('trigger', False), ('twoway', False)]",
        "{output}"
    );
    assert_eq!(lines[3], "connected True on True", "{output}");
    assert!(
        lines[4].starts_with("ValueError wavelength must be between 1500 and 1630 nm"),
        "{output}"
    );
    assert!(
        lines[5].starts_with("refused the laser did not take wavelength 1560"),
        "{output}"
    );
    assert!(lines[6].contains("locked (by 'alice')"), "{output}");
    assert_eq!(lines[7], "free 1555.0", "{output}");
    assert_eq!(lines[8], "swept 0 11 1550.5", "{output}");
    assert_eq!(lines[9], "streamed True", "{output}");
    assert_eq!(lines[10], "status 000000 False", "{output}");
}

#[test]
fn a_silent_garbled_or_vanished_laser_is_a_clear_error_and_the_daemon_serves_on() {
    let sandbox = Sandbox::new();
    let mut laser = PtyLaser::start();
    let (daemon, location) = start(&sandbox, &lab(&sandbox, &laser));
    let tsl = proxy(&location, "laser");
    call(&tsl, "autoconnect", vec![]).unwrap();
    let ask = || {
        python(&format!(
            r#"
import time, Pyro5.api as p
laser = p.Proxy("PYRO:laser@{location}")
t = time.time()
try:
    print("value", laser.wavelength())
except Exception as e:
    print(type(e).__name__, round(time.time() - t, 1), e)
"#
        ))
        .success()
        .stdout
    };

    laser.set_mode(Mode::Mute);
    let mute = ask();
    assert!(mute.starts_with("TimeoutError 0."), "{mute}");
    assert!(mute.contains("the laser on /dev/pts/"), "{mute}");
    assert!(mute.contains("did not answer WA within 0.5 s"), "{mute}");

    laser.set_mode(Mode::Garbage);
    let garbled = ask();
    assert!(garbled.starts_with("ConnectionError"), "{garbled}");
    assert!(garbled.contains("garbled reply to WA"), "{garbled}");

    // Healthy again: the next command starts on a clean line.
    laser.set_mode(Mode::Normal);
    assert_eq!(ask().trim(), "value 1550.0");

    laser.unplug();
    let gone = ask();
    assert!(gone.starts_with("ConnectionError"), "{gone}");
    assert!(gone.contains("lost the laser on /dev/pts/"), "{gone}");
    let (kind, _) = remote_kind(call(&tsl, "ident", vec![]));
    assert_eq!(kind, "ConnectionError");

    // The daemon serves everyone else as before.
    let sample = proxy(&location, "sample");
    assert_eq!(
        call(&sample, "echo", vec!["still here".into()]).unwrap(),
        Value::from("SERVER RECEIVED: still here")
    );
    assert!(pyrolab_test_support::process_running(daemon.pid()));
}
