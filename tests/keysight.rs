//! The Keysight B2900 driver, loaded from its library by a daemon, driving
//! the simulated SMU over a real TCP socket: from the Rust client and from
//! the stock Python Pyro5 client, and when the instrument misbehaves (mute,
//! garbled, refusing a command, dropping the connection mid-transfer).

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::driver_calls::{call, remote};
use pyrolab_host::client::Proxy;
use pyrolab_plugin_api::{CallArgs, Value};
use pyrolab_test_support::{Output, Sandbox, python_with_pyro5, run, start_lab_daemon};
use simulators::b2900::Simulator;

/// A daemon `lab` serving the SMU as PyroLab's configuration names it.
fn lab(sandbox: &Sandbox, smu: &Simulator) -> PathBuf {
    sandbox.install_plugin("keysight");
    let text = format!(
        "version: '1.0'
plugin_dirs: [{plugins}]
daemons:
  lab: {{classname: LockableDaemon, host: 127.0.0.1, port: 0}}
services:
  smu:
    module: pyrolab.drivers.smu.keysight
    classname: B2900
    parameters: {{address: '{resource}', timeout: 500}}
    instancemode: single
    daemon: lab
",
        plugins = sandbox.plugin_dir().display(),
        resource = smu.resource(),
    );
    let path = sandbox.path().join("lab.yaml");
    fs::write(&path, text).expect("write the lab config");
    path
}

fn proxy(location: &str) -> Proxy {
    let mut proxy = Proxy::connect(&format!("PYRO:smu@{location}")).expect("connect");
    proxy.set_timeout(Some(Duration::from_secs(30)));
    proxy
}

#[test]
fn the_rust_client_measures_sweeps_and_screenshots_the_smu() {
    let smu = Simulator::start("127.0.0.1").expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &smu));
    let b2900 = proxy(&location);
    assert_eq!(
        call(&b2900, "autoconnect", vec![]).unwrap(),
        Value::Bool(true)
    );

    // 1 V across the simulator's 1 kΩ: 1 mA; limited at 0.5 mA.
    let current = call(&b2900, "measure_current", vec![1.0.into(), 0.1.into()]).unwrap();
    assert!(
        matches!(current, Value::Float(a) if (a - 1e-3).abs() < 1e-9),
        "{current:?}"
    );
    let limited = call(&b2900, "measure_current", vec![1.0.into(), 0.0005.into()]).unwrap();
    assert!(
        matches!(limited, Value::Float(a) if (a - 5e-4).abs() < 1e-9),
        "{limited:?}"
    );
    let volts = b2900
        .call_with(
            "measure_voltage",
            CallArgs::positional(vec![0.002.into(), 10.0.into()]).kwarg("channel", 2),
        )
        .unwrap();
    assert!(
        matches!(volts, Value::Float(v) if (v - 2.0).abs() < 1e-9),
        "{volts:?}"
    );

    // A sweep, streamed.
    let swept: Vec<f64> = b2900
        .stream(
            "sweep_voltage",
            CallArgs::positional(vec![
                0.0.into(),
                1.0.into(),
                Value::Int(11),
                0.1.into(),
                0.001.into(),
            ]),
        )
        .unwrap()
        .map(|v| match v.unwrap() {
            Value::Float(f) => f,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(swept.len(), 11);
    assert!(
        (swept[10] - 1e-3).abs() < 1e-9 && swept[0].abs() < 1e-12,
        "{swept:?}"
    );

    let image = call(&b2900, "screenshot", vec![]).unwrap();
    let Value::Bytes(image) = image else {
        panic!("{image:?}")
    };
    assert!(image.starts_with(b"\x89PNG"), "a PNG");
    assert!(image.len() > 300_000);

    assert_eq!(
        call(&b2900, "timeout", vec![]).ok(),
        None,
        "a property, not a method"
    );
    call(&b2900, "toggle_colors", vec![]).unwrap();
    assert_eq!(
        call(&b2900, "query", vec![":DISP:CSET?".into()]).unwrap(),
        Value::from("2")
    );

    // Out of range: refused before anything is sent.
    let (kind, message) = remote(call(
        &b2900,
        "measure_current",
        vec![500.0.into(), 0.1.into()],
    ));
    assert_eq!(kind, "ValueError");
    assert!(
        message.contains("voltage must be between -210 and 210 V"),
        "{message}"
    );
}

#[test]
fn each_instrument_fault_reaches_the_client_as_its_own_exception_and_the_driver_goes_on() {
    let smu = Simulator::start("127.0.0.1").expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &smu));
    let b2900 = proxy(&location);
    call(&b2900, "autoconnect", vec![]).unwrap();

    // The instrument's own error.
    let (kind, message) = remote(call(&b2900, "write_block", vec![":SOUR:BOGUS 1".into()]));
    assert_eq!(kind, "RuntimeError");
    assert!(message.contains("-113,\"Undefined header\""), "{message}");

    // Mute: a TimeoutError within the timeout (500 ms).
    smu.faults.mute.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (kind, message) = remote(call(&b2900, "query", vec!["*IDN?".into()]));
    assert_eq!(kind, "TimeoutError", "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
    smu.faults.mute.store(false, Ordering::SeqCst);

    // Garbled.
    smu.faults.garble.store(true, Ordering::SeqCst);
    let (kind, message) = remote(call(
        &b2900,
        "measure_current",
        vec![1.0.into(), 0.1.into()],
    ));
    assert_eq!(kind, "ConnectionError", "{message}");
    smu.faults.garble.store(false, Ordering::SeqCst);

    // The connection dropped in the middle of the screenshot's transfer.
    smu.faults.drop_mid_transfer.store(true, Ordering::SeqCst);
    let (kind, message) = remote(call(&b2900, "screenshot", vec![]));
    assert_eq!(kind, "ConnectionError", "{message}");
    assert!(message.contains("closed the connection"), "{message}");

    // And on it goes: the next call connects again.
    let current = call(&b2900, "measure_current", vec![1.0.into(), 0.1.into()]).unwrap();
    assert!(
        matches!(current, Value::Float(a) if (a - 1e-3).abs() < 1e-9),
        "{current:?}"
    );
}

fn python(script: &str) -> Output {
    run(
        Command::new(python_with_pyro5()).args(["-c", script]),
        Duration::from_secs(60),
    )
}

#[test]
fn stock_python_drives_the_smu_and_meets_its_errors() {
    let smu = Simulator::start("127.0.0.1").expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &smu));
    let output = python(&format!(
        r#"
import Pyro5.api as p, serpent
smu = p.Proxy("PYRO:smu@{location}")
print("connected", smu.connect("{resource}", 500))
print("timeout", smu.timeout)
smu.timeout = 800
print("timeout now", smu.timeout)
print("current", round(smu.measure_current(2.0, 0.1) * 1000, 6), "mA")
print("voltage", round(smu.measure_voltage(0.001, 10, channel=2), 6), "V")
sweep = smu.sweep_current(0.0, 0.002, 5, 10.0, 0.001)
print("sweep", [round(v, 6) for v in sweep])
print("log sweep", len(list(smu.sweep_voltage(0.01, 1.0, 3, 0.1, 0.001, log=True))))
image = serpent.tobytes(smu.screenshot("BMP"))  # serpent sends bytes as base64
print("screenshot", image[:2] == b"BM", len(image) > 300000)
try:
    smu.write_block(":BOGUS")
except RuntimeError as e:
    print("RuntimeError", e)
try:
    smu.sweep_voltage(0, 1, 0, 0.1, 0.001)
except ValueError as e:
    print("ValueError", e)
"#,
        resource = smu.resource(),
    ));
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(output.code, Some(0), "{output}");
    assert_eq!(lines[0], "connected True", "{output}");
    assert_eq!(lines[1], "timeout 500.0", "{output}");
    assert_eq!(lines[2], "timeout now 800.0", "{output}");
    assert_eq!(lines[3], "current 2.0 mA", "{output}");
    assert_eq!(lines[4], "voltage 1.0 V", "{output}");
    assert_eq!(lines[5], "sweep [0.0, 0.5, 1.0, 1.5, 2.0]", "{output}");
    assert_eq!(lines[6], "log sweep 3", "{output}");
    assert_eq!(lines[7], "screenshot True True", "{output}");
    assert!(
        lines[8].starts_with("RuntimeError") && lines[8].contains("-113,\"Undefined header\""),
        "{output}"
    );
    assert!(
        lines[9].starts_with("ValueError steps must be from 1 to 2500"),
        "{output}"
    );
}
