//! The R&S RTO oscilloscope driver, loaded from its library by a daemon,
//! driving the simulated scope over its SCPI socket: from the Rust client
//! and from stock Python Pyro5 (a 10 MB waveform among others), and when
//! the scope is mute, garbled, refuses a setting, never triggers, or drops
//! the connection in the middle of a waveform.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::driver_calls::{call, remote};
use pyrolab_host::client::Proxy;
use pyrolab_plugin_api::Value;
use pyrolab_test_support::{Output, Sandbox, python_with_pyro5, run, start_lab_daemon};
use simulators::rto::Simulator;

fn lab(sandbox: &Sandbox, scope: &Simulator) -> PathBuf {
    sandbox.install_plugin("rohdeschwarz");
    let text = format!(
        "version: '1.0'
plugin_dirs: [{plugins}]
daemons:
  lab: {{host: 127.0.0.1, port: 0}}
services:
  scope:
    module: pyrolab.drivers.scopes.rohdeschwarz
    classname: RTO
    parameters: {{address: '{resource}', timeout: 1000}}
    instancemode: single
    daemon: lab
",
        plugins = sandbox.plugin_dir().display(),
        resource = scope.resource(),
    );
    let path = sandbox.path().join("lab.yaml");
    fs::write(&path, text).expect("write the lab config");
    path
}

fn list_len(value: &Value) -> usize {
    match value {
        Value::List(items) => items.len(),
        other => panic!("expected a list, got {other:?}"),
    }
}

fn bytes(value: Value) -> Vec<u8> {
    match value {
        Value::Bytes(data) => data,
        other => panic!("expected bytes, got {other:?}"),
    }
}

#[test]
fn the_rust_client_sets_up_acquires_and_reads_waveforms_and_meets_each_fault() {
    let simulator = Simulator::start("127.0.0.1").expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &simulator));
    let mut scope = Proxy::connect(&format!("PYRO:scope@{location}")).expect("connect");
    scope.set_timeout(Some(Duration::from_secs(30)));
    assert_eq!(
        call(&scope, "autoconnect", vec![]).unwrap(),
        Value::Bool(true)
    );

    // Channels, timebase, trigger, one acquisition of 10,000 samples.
    call(&scope, "set_channel", vec![1.into()]).unwrap();
    call(
        &scope,
        "set_channel",
        vec![2.into(), "ON".into(), "DC".into(), 1.0.into()],
    )
    .unwrap();
    call(
        &scope,
        "acquisition_settings",
        vec![1e9.into(), 1e-5.into()],
    )
    .unwrap();
    assert_eq!(
        call(&scope, "record_length", vec![]).unwrap(),
        Value::Int(10_000)
    );
    call(&scope, "edge_trigger", vec![1.into(), 0.05.into()]).unwrap();
    call(&scope, "acquire", vec![]).unwrap();
    call(&scope, "wait_for_device", vec![]).unwrap();
    assert_eq!(
        list_len(&call(&scope, "get_data", vec![1.into()]).unwrap()),
        10_000
    );
    let real = call(&scope, "get_data", vec![1.into(), "real".into()]).unwrap();
    let Value::List(volts) = &real else {
        panic!("{real:?}")
    };
    let peak = volts
        .iter()
        .map(|v| match v {
            Value::Float(v) => *v,
            other => panic!("{other:?}"),
        })
        .fold(f64::MIN, f64::max);
    // PyroLab's default range (0.5 V over 10 divisions) holds the 0.2 V sine.
    assert!((peak - 0.2).abs() < 0.01, "{peak}");
    let codes = bytes(call(&scope, "get_waveform", vec![2.into(), "int16".into()]).unwrap());
    assert_eq!(codes.len(), 20_000);
    call(
        &scope,
        "set_auto_measurement",
        vec![1.into(), "C1W1".into(), "MAX".into()],
    )
    .unwrap();
    let Value::Float(measured) = call(&scope, "measure", vec![]).unwrap() else {
        panic!("a float")
    };
    assert!((measured - peak).abs() < 1e-6, "{measured} {peak}");
    let header = call(&scope, "waveform_header", vec![1.into()]).unwrap();
    assert!(format!("{header:?}").contains("Int(10000)"), "{header:?}");
    let image = bytes(call(&scope, "screenshot", vec![]).unwrap());
    assert_eq!(&image[..8], b"\x89PNG\r\n\x1a\n");
    call(&scope, "act_filter", vec![3.into()]).unwrap();
    call(&scope, "set_cutoff_freq", vec![3.into(), 3e6.into()]).unwrap();
    assert_eq!(
        call(&scope, "query", vec!["CHAN4:DIGF:CUT?".into()]).unwrap(),
        Value::from("2E6")
    );

    // Checked before sending.
    let (kind, message) = remote(call(&scope, "get_data", vec![5.into()]));
    assert_eq!(kind, "ValueError");
    assert!(message.contains("channel must be 1 to 4"), "{message}");
    // The scope's own refusal: a record over its memory.
    let (kind, message) = remote(call(
        &scope,
        "acquisition_settings",
        vec![10e9.into(), 1.0.into()],
    ));
    assert_eq!(kind, "RuntimeError");
    assert!(
        message.contains("-222,\"Data out of range;ACQ:SRAT 10000000000"),
        "{message}"
    );
    // A channel that is off has no waveform: the scope says why.
    let (kind, message) = remote(call(&scope, "get_waveform", vec![4.into()]));
    assert_eq!(kind, "RuntimeError");
    assert!(message.contains("Settings conflict"), "{message}");

    // A trigger level the signal never reaches: the acquisition waits for
    // it, until stopped.
    call(&scope, "edge_trigger", vec![1.into(), 0.9.into()]).unwrap();
    call(&scope, "acquire", vec![]).unwrap();
    let (kind, message) = remote(call(&scope, "wait_for_device", vec![300.0.into()]));
    assert_eq!(kind, "TimeoutError", "{message}");
    call(&scope, "acquire", vec![Value::Int(-1), "stop".into()]).unwrap();
    call(&scope, "wait_for_device", vec![]).unwrap();

    // Mute: a TimeoutError within the timeout (1 s).
    simulator.faults.mute.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (kind, message) = remote(call(&scope, "measure", vec![]));
    assert_eq!(kind, "TimeoutError", "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
    simulator.faults.mute.store(false, Ordering::SeqCst);
    // Garbled.
    simulator.faults.garble.store(true, Ordering::SeqCst);
    let (kind, message) = remote(call(&scope, "get_waveform", vec![1.into()]));
    assert_eq!(kind, "ConnectionError", "{message}");
    simulator.faults.garble.store(false, Ordering::SeqCst);
    // The connection dropped halfway through a waveform; the next call
    // connects again.
    simulator
        .faults
        .drop_mid_transfer
        .store(true, Ordering::SeqCst);
    let (kind, message) = remote(call(&scope, "get_waveform", vec![1.into()]));
    assert_eq!(kind, "ConnectionError", "{message}");
    assert_eq!(
        bytes(call(&scope, "get_waveform", vec![1.into()]).unwrap()).len(),
        10_000
    );
}

fn python(script: &str) -> Output {
    run(
        Command::new(python_with_pyro5()).args(["-c", script]),
        Duration::from_secs(120),
    )
}

/// Reads channel 1 in `INT,8` straight from the simulator, as the scope
/// sends it, and compares it with `data`.
const RAW_COMPARE: &str = r##"
import socket
def raw_waveform(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"FORM INT,8;:CHAN1:DATA?\n")
    f = s.makefile("rb")
    assert f.read(1) == b"#"
    digits = int(f.read(1))
    length = int(f.read(digits))
    data = f.read(length)
    s.close()
    return data
"##;

#[test]
fn stock_python_gets_a_10_mb_waveform_intact_and_meets_each_fault() {
    let simulator = Simulator::start("127.0.0.1").expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &simulator));
    let port = simulator.port();
    let output = python(&format!(
        r#"
import Pyro5.api as p, serpent, hashlib
{RAW_COMPARE}
scope = p.Proxy("PYRO:scope@{location}")
print("connected", scope.connect())
scope.set_channel(1, coupling="DC", range=1.0)
scope.acquisition_settings(10e9, 1e-3)
print("length", scope.record_length())
scope.acquire()
scope.wait_for_device()
data = serpent.tobytes(scope.get_waveform(1, "int8"))
print("waveform", len(data), data == raw_waveform({port}))
scope.set_auto_measurement(2, "C1W1", "MIN")
print("minimum", round(scope.measure(2), 2))
image = serpent.tobytes(scope.screenshot("ignored.png"))
print("png", image[:4] == b"\x89PNG")
try:
    scope.acquisition_settings(20e9, 1.0)
except RuntimeError as e:
    print("RuntimeError", e)
try:
    scope.acquire(run="sometimes")
except ValueError as e:
    print("ValueError", e)
"#
    ));
    assert_eq!(output.code, Some(0), "{output}");
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines[0], "connected True", "{output}");
    assert_eq!(lines[1], "length 10000000", "{output}");
    assert_eq!(lines[2], "waveform 10000000 True", "{output}");
    assert_eq!(lines[3], "minimum -0.2", "{output}");
    assert_eq!(lines[4], "png True", "{output}");
    assert!(
        lines[5].starts_with("RuntimeError") && lines[5].contains("-222,\"Data out of range"),
        "{output}"
    );
    assert!(
        lines[6].starts_with("ValueError sometimes is not a valid argument"),
        "{output}"
    );

    // Each fault, met by a script of its own; then the scope is well again.
    let fault_script = |call: &str| {
        format!(
            r#"
import Pyro5.api as p
scope = p.Proxy("PYRO:scope@{location}")
try:
    {call}
    print("no error")
except Exception as e:
    print(type(e).__name__, e)
"#
        )
    };
    let faults = [
        (&simulator.faults.mute, "scope.measure(2)", "TimeoutError"),
        (
            &simulator.faults.garble,
            "scope.get_data(1, 'real')",
            "ConnectionError",
        ),
        (
            &simulator.faults.drop_mid_transfer,
            "scope.get_waveform(1)",
            "ConnectionError",
        ),
    ];
    for (fault, call, expected) in faults {
        fault.store(true, Ordering::SeqCst);
        let output = python(&fault_script(call));
        fault.store(false, Ordering::SeqCst);
        assert_eq!(output.code, Some(0), "{output}");
        assert!(output.stdout.starts_with(expected), "{call}: {output}");
    }
    let output = python(&fault_script(
        "print(len(scope.get_waveform(1, 'int8')['data']) > 0)",
    ));
    assert_eq!(output.stdout.lines().next(), Some("True"), "{output}");
}
