//! The Thorlabs KDC101 driver, loaded from its library by a daemon by
//! PyroLab's module and class names, driving the simulated controller
//! (APT binary messages on a pseudo-terminal, as on the controller's USB
//! serial port): from the Rust client and from stock Python Pyro5, and
//! when the controller is mute, garbled, refuses a command, or is
//! unplugged in the middle of a move.
#![cfg(target_os = "linux")]

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crate::driver_calls::{call, remote};
use pyrolab_host::client::Proxy;
use pyrolab_plugin_api::{CallArgs, Value};
use pyrolab_test_support::{Background, Output, Sandbox, python_with_pyro5, run, start_lab_daemon};
use simulators::kdc101::Simulator;

/// A daemon `lab` serving the controller as `stage`, configured as PyroLab
/// configurations write it (the serial number as a number), with the
/// simulator's port and a short reply timeout.
fn lab(sandbox: &Sandbox, controller: &Simulator) -> PathBuf {
    sandbox.install_plugin("kdc101");
    let text = format!(
        "version: '1.0'
plugin_dirs: [{plugins}]
daemons:
  lab: {{host: 127.0.0.1, port: 0}}
services:
  stage:
    module: pyrolab.drivers.motion.kinesis.kdc101
    classname: KDC101
    parameters: {{serialno: {serial}, port: '{port}', stage: Z825B, timeout: 0.5}}
    instancemode: single
    daemon: lab
",
        plugins = sandbox.plugin_dir().display(),
        serial = controller.serial_number(),
        port = controller.path().display(),
    );
    let path = sandbox.path().join("lab.yaml");
    fs::write(&path, text).expect("write the lab config");
    path
}

fn proxy(location: &str) -> Proxy {
    let mut proxy = Proxy::connect(&format!("PYRO:stage@{location}")).expect("connect");
    proxy.set_timeout(Some(Duration::from_secs(30)));
    proxy
}

fn float(value: Value) -> f64 {
    match value {
        Value::Float(f) => f,
        Value::Int(i) => i as f64,
        other => panic!("a number: {other:?}"),
    }
}

fn near(value: Value, expected: f64) -> bool {
    (float(value) - expected).abs() < 1e-4
}

#[test]
fn the_rust_client_homes_moves_and_jogs_the_stage_and_meets_each_fault() {
    let controller = Simulator::start().expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &controller));
    let stage = proxy(&location);

    assert_eq!(
        call(&stage, "autoconnect", vec![]).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(stage.get::<String>("serialno").unwrap(), "27000101");
    let info = call(&stage, "info", vec![]).unwrap();
    assert_eq!(info.get("model").and_then(Value::as_str), Some("KDC101"));
    assert_eq!(info.get("unit").and_then(Value::as_str), Some("mm"));
    call(&stage, "identify", vec![]).unwrap();

    stage.set("move_velocity", 2.5).unwrap();
    stage.set("move_acceleration", 4.0).unwrap();
    stage.set("homing_velocity", 2.0).unwrap();
    assert!((stage.get::<f64>("move_velocity").unwrap() - 2.5).abs() < 1e-6);
    call(&stage, "home", vec![]).unwrap();
    assert!(stage.get::<bool>("homed").unwrap());
    call(&stage, "move_to", vec![1.5.into()]).unwrap();
    assert!(near(call(&stage, "get_position", vec![]).unwrap(), 1.5));
    assert!((controller.position_mm() - 1.5).abs() < 1e-4);
    call(&stage, "move_by", vec![(-0.5).into()]).unwrap();
    stage.set("jog_step_size", 0.25).unwrap();
    call(&stage, "jog", vec!["forward".into()]).unwrap();
    assert!(near(stage.get::<Value>("position").unwrap(), 1.25));
    let status = call(&stage, "status", vec![]).unwrap();
    assert_eq!(status.get("homed"), Some(&Value::Bool(true)));
    assert_eq!(status.get("moving_forward"), Some(&Value::Bool(false)));

    // Checked before sending: the soft limits.
    let (kind, message) = remote(call(&stage, "move_to", vec![30.0.into()]));
    assert_eq!(kind, "ValueError");
    assert!(
        message.contains("position 30 mm is outside the soft limits, 0 to 25 mm"),
        "{message}"
    );
    // The controller's own refusal, with its code and text.
    let (kind, message) = remote(stage.set("move_velocity", 5.0).map(|()| Value::Null));
    assert_eq!(kind, "RuntimeError");
    assert!(
        message.contains("the KDC101 refused MOT_SET_VELPARAMS (0x0413): error 39: move velocity 5.000 mm/s not in 0-2.6 mm/s"),
        "{message}"
    );

    // Mute: a TimeoutError within the timeout (0.5 s).
    controller.faults.mute.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (kind, message) = remote(call(&stage, "get_position", vec![]));
    assert_eq!(kind, "TimeoutError", "{message}");
    assert!(
        message.contains("did not answer MOT_REQ_DCSTATUSUPDATE"),
        "{message}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    controller.faults.mute.store(false, Ordering::SeqCst);
    // Garbled: a ConnectionError naming what came.
    controller.faults.garble.store(true, Ordering::SeqCst);
    let (kind, message) = remote(call(&stage, "is_moving", vec![]));
    assert_eq!(kind, "ConnectionError", "{message}");
    assert!(
        message.contains("garbled reply from the KDC101"),
        "{message}"
    );
    controller.faults.garble.store(false, Ordering::SeqCst);
    assert!(near(call(&stage, "get_position", vec![]).unwrap(), 1.25));

    // Unplugged while a move runs: the waiting call gets a ConnectionError.
    stage.set("move_velocity", 0.5).unwrap();
    let mover = {
        let location = location.clone();
        thread::spawn(move || call(&proxy(&location), "move_to", vec![10.0.into()]))
    };
    let mut controller = controller;
    assert!(pyrolab_test_support::wait_until(
        Duration::from_secs(5),
        || { controller.position_mm() > 1.3 }
    ));
    controller.unplug();
    let (kind, message) = remote(mover.join().expect("the mover"));
    assert_eq!(kind, "ConnectionError", "{message}");
    assert!(
        message.contains("lost the KDC101 on /dev/pts/"),
        "{message}"
    );

    // A new port: connect() there, and it works again.
    let replugged = Simulator::start().expect("simulator");
    let connected = stage.call_with(
        "connect",
        CallArgs::positional(vec![]).kwarg("port", replugged.resource()),
    );
    assert_eq!(connected.unwrap(), Value::Bool(true));
    assert!(near(call(&stage, "get_position", vec![]).unwrap(), 0.0));
    assert!(!stage.get::<bool>("homed").unwrap());
}

fn python(script: &str) -> Output {
    run(
        Command::new(python_with_pyro5()).args(["-c", script]),
        Duration::from_secs(60),
    )
}

#[test]
fn stock_python_drives_the_stage_with_pyrolab_s_methods() {
    let controller = Simulator::start().expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &controller));
    let output = python(&format!(
        r#"
import time, Pyro5.api as p
stage = p.Proxy("PYRO:stage@{location}")
print("connected", stage.autoconnect(), stage.serialno)
stage.move_velocity = 2.5
stage.move_acceleration = 4.0
stage.homing_velocity = 2.0
stage.home()
print("homed", stage.homed)
stage.move_to(2.0)
print("position", round(stage.get_position(), 4))
stage.jog_step_size = 0.5
stage.jog("backward")
print("jogged", round(stage.get_position(), 4), stage.jog_mode)
stage.move_by(0.25, block=False)
print("moving", stage.is_moving())
stage.wait_for_completion("moved", MAX_WAIT_TIME=5)
print("moved", round(stage.get_position(), 4), stage.is_moving())
stage.move_continuous("forward")
time.sleep(0.3)
stage.stop()
print("stopped", stage.is_moving(), stage.get_position() > 1.8)
try:
    stage.move_to(-1)
except ValueError as e:
    print("ValueError", e)
try:
    stage.move_velocity = 9
except RuntimeError as e:
    print("RuntimeError", e)
s = stage.status()
print("status", s["homed"], s["channel_enabled"], s["moving_forward"], hex(stage.get_status_bits()))
print("limits", stage.min_pos, stage.max_pos, stage.soft_limits_mode)
stage.close()
try:
    stage.get_position()
except ConnectionError as e:
    print("ConnectionError", e)
"#
    ));
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(output.code, Some(0), "{output}");
    assert_eq!(lines[0], "connected True 27000101", "{output}");
    assert_eq!(lines[1], "homed True", "{output}");
    assert_eq!(lines[2], "position 2.0", "{output}");
    assert_eq!(lines[3], "jogged 1.5 stepped", "{output}");
    assert_eq!(lines[4], "moving True", "{output}");
    assert_eq!(lines[5], "moved 1.75 False", "{output}");
    assert_eq!(lines[6], "stopped False True", "{output}");
    assert!(
        lines[7].starts_with("ValueError position -1 mm is outside the soft limits"),
        "{output}"
    );
    assert!(
        lines[8]
            .starts_with("RuntimeError the KDC101 refused MOT_SET_VELPARAMS (0x0413): error 39:"),
        "{output}"
    );
    assert_eq!(lines[9], "status True True False 0x80000500", "{output}");
    assert_eq!(lines[10], "limits 0.0 25.0 disallow", "{output}");
    assert!(
        lines[11].starts_with("ConnectionError not connected to a KDC101"),
        "{output}"
    );
}

#[test]
fn stock_python_meets_a_mute_garbled_and_unplugged_controller() {
    let mut controller = Simulator::start().expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &controller));
    let ask = |expression: &str| {
        python(&format!(
            r#"
import time, Pyro5.api as p
stage = p.Proxy("PYRO:stage@{location}")
t = time.time()
try:
    print("value", {expression})
except Exception as e:
    print(type(e).__name__, round(time.time() - t, 1), e)
"#
        ))
        .success()
        .stdout
    };
    assert_eq!(ask("stage.autoconnect()").trim(), "value True");

    controller.faults.mute.store(true, Ordering::SeqCst);
    let mute = ask("stage.get_position()");
    assert!(mute.starts_with("TimeoutError 0."), "{mute}");
    assert!(mute.contains("the KDC101 on /dev/pts/"), "{mute}");
    controller.faults.mute.store(false, Ordering::SeqCst);

    controller.faults.garble.store(true, Ordering::SeqCst);
    let garbled = ask("stage.move_velocity");
    assert!(garbled.starts_with("ConnectionError"), "{garbled}");
    assert!(
        garbled.contains("is not a message a KDC101 sends"),
        "{garbled}"
    );
    controller.faults.garble.store(false, Ordering::SeqCst);
    assert_eq!(ask("stage.get_position()").trim(), "value 0.0");

    // A move started without waiting, then waited for: unplugged meanwhile.
    let mut mover = Background::start(Command::new(python_with_pyro5()).args([
        "-u",
        "-c",
        &format!(
            r#"
import Pyro5.api as p
stage = p.Proxy("PYRO:stage@{location}")
stage.move_velocity = 0.5
stage.move_to(10.0, block=False)
print("started", flush=True)
try:
    stage.wait_for_completion("moved", MAX_WAIT_TIME=60)
    print("completed")
except ConnectionError as e:
    print("ConnectionError", e)
"#
        ),
    ]));
    mover.wait_for_line("started", Duration::from_secs(30));
    thread::sleep(Duration::from_millis(300));
    controller.unplug();
    let line = mover.wait_for_line("ConnectionError", Duration::from_secs(10));
    assert!(line.contains("lost the KDC101 on /dev/pts/"), "{line}");
    let gone = ask("stage.get_position()");
    assert!(gone.starts_with("ConnectionError"), "{gone}");

    let replugged = Simulator::start().expect("simulator");
    let port = replugged.resource();
    assert_eq!(
        ask(&format!(
            "stage.connect(port={port:?}) and stage.get_position()"
        ))
        .trim(),
        "value 0.0"
    );
}
