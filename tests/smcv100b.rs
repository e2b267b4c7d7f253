//! The R&S SMCV100B driver, loaded from its library by a daemon, driving
//! the simulated generator over real VXI-11 (`TCPIP0::HOST::inst0::INSTR`):
//! from the Rust client and from stock Python Pyro5, and when the
//! instrument is mute, garbled, refuses a command, or is gone.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::driver_calls::{call, remote};
use pyrolab_host::client::Proxy;
use pyrolab_plugin_api::Value;
use pyrolab_test_support::{Output, Sandbox, python_with_pyro5, run, start_lab_daemon, wait_until};
use simulators::smcv100b::Simulator;

fn lab(sandbox: &Sandbox, generator: &Simulator) -> PathBuf {
    sandbox.install_plugin("smcv100b");
    let text = format!(
        "version: '1.0'
plugin_dirs: [{plugins}]
daemons:
  lab: {{host: 127.0.0.1, port: 0}}
services:
  vsg:
    module: pyrolab.drivers.function_generators.smcv100b
    classname: SMCV100B
    parameters: {{address: '{resource}', timeout: 500, portmapper_port: {portmapper}}}
    instancemode: single
    daemon: lab
",
        plugins = sandbox.plugin_dir().display(),
        resource = generator.resource(),
        portmapper = generator.portmapper_port(),
    );
    let path = sandbox.path().join("lab.yaml");
    fs::write(&path, text).expect("write the lab config");
    path
}

#[test]
fn the_rust_client_tunes_sweeps_and_modulates_the_generator_over_vxi11_and_meets_each_fault() {
    let generator = Simulator::start("127.0.0.1").expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &generator));
    let mut vsg = Proxy::connect(&format!("PYRO:vsg@{location}")).expect("connect");
    vsg.set_timeout(Some(Duration::from_secs(30)));
    assert_eq!(
        call(&vsg, "autoconnect", vec![]).unwrap(),
        Value::Bool(true)
    );

    call(&vsg, "set_freq", vec![2.4e9.into()]).unwrap();
    call(&vsg, "freq_step_up", vec![5e6.into()]).unwrap();
    assert_eq!(
        call(&vsg, "frequency", vec![]).unwrap(),
        Value::Float(2.405e9)
    );
    call(&vsg, "set_amp", vec![(-10.0).into()]).unwrap();
    call(&vsg, "amp_step_down", vec![2.0.into()]).unwrap();
    assert_eq!(
        call(&vsg, "amplitude", vec![]).unwrap(),
        Value::Float(-12.0)
    );
    call(&vsg, "turn_on", vec![]).unwrap();
    assert_eq!(call(&vsg, "output_on", vec![]).unwrap(), Value::Bool(true));
    call(&vsg, "set_am", vec![40.0.into()]).unwrap();
    call(&vsg, "set_fm", vec![1e4.into(), false.into()]).unwrap();
    assert_eq!(
        call(&vsg, "query", vec!["SOUR:AM:STAT?".into()]).unwrap(),
        Value::from("1")
    );

    // A frequency sweep of 3 points, 0.2 s each: it runs, then it is done.
    call(
        &vsg,
        "sweep_freq_lin",
        vec![1e9.into(), 1.002e9.into(), 1e6.into(), 0.2.into()],
    )
    .unwrap();
    assert_eq!(
        call(&vsg, "freq_running", vec![]).unwrap(),
        Value::Bool(true)
    );
    assert!(wait_until(Duration::from_secs(5), || call(
        &vsg,
        "freq_running",
        vec![]
    )
    .unwrap()
        == Value::Bool(false)));

    // Checked before sending.
    let (kind, message) = remote(call(&vsg, "set_freq", vec![10e9.into()]));
    assert_eq!(kind, "ValueError");
    assert!(
        message.contains("frequency must be between 4000 and 7125000000 Hz"),
        "{message}"
    );
    // The instrument's own error.
    let (kind, message) = remote(call(&vsg, "write_block", vec!["SOUR:NOTHING 1".into()]));
    assert_eq!(kind, "RuntimeError");
    assert!(message.contains("-113,\"Undefined header\""), "{message}");
    // Mute: a TimeoutError within the timeout (500 ms).
    generator.faults.mute.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (kind, message) = remote(call(&vsg, "frequency", vec![]));
    assert_eq!(kind, "TimeoutError", "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
    generator.faults.mute.store(false, Ordering::SeqCst);
    // Garbled.
    generator.faults.garble.store(true, Ordering::SeqCst);
    let (kind, message) = remote(call(&vsg, "amplitude", vec![]));
    assert_eq!(kind, "ConnectionError", "{message}");
    generator.faults.garble.store(false, Ordering::SeqCst);
    assert_eq!(
        call(&vsg, "frequency", vec![]).unwrap(),
        Value::Float(2.405e9)
    );

    // The instrument gone: a ConnectionError naming it.
    let resource = generator.resource();
    drop(generator);
    call(&vsg, "close", vec![]).unwrap();
    let (kind, message) = remote(call(&vsg, "autoconnect", vec![]));
    assert_eq!(kind, "ConnectionError", "{message}");
    assert!(message.contains(&resource), "{message}");
}

fn python(script: &str) -> Output {
    run(
        Command::new(python_with_pyro5()).args(["-c", script]),
        Duration::from_secs(60),
    )
}

#[test]
fn stock_python_drives_the_generator_with_pyrolab_s_methods() {
    let generator = Simulator::start("127.0.0.1").expect("simulator");
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &generator));
    let output = python(&format!(
        r#"
import Pyro5.api as p
vsg = p.Proxy("PYRO:vsg@{location}")
print("connected", vsg.connect())
vsg.set_freq(1e9)
vsg.set_freq_offset(1e3)
print("frequency", vsg.frequency())
vsg.set_amp(-20)
vsg.set_phase(90)
vsg.turn_on()
vsg.sweep_amp(-20, -10, 5, dwell=0.01)
vsg.reset_sweeps()
print("running", vsg.amp_running())
vsg.turn_off()
print("on", vsg.output_on())
try:
    vsg.set_amp(50)
except ValueError as e:
    print("ValueError", e)
"#
    ));
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(output.code, Some(0), "{output}");
    assert_eq!(lines[0], "connected True", "{output}");
    assert_eq!(lines[1], "frequency 1000001000.0", "{output}");
    assert_eq!(lines[2], "running False", "{output}");
    assert_eq!(lines[3], "on False", "{output}");
    assert!(
        lines[4].starts_with("ValueError amplitude must be between -145 and 20 dBm"),
        "{output}"
    );
}
