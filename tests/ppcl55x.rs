//! The Pure Photonics PPCL550/PPCL551 driver, loaded from its library by a
//! daemon by PyroLab's module and class names, driving simulated lasers
//! (the OIF-ITLA-MSA register protocol on pseudo-terminals, as on the
//! lasers' USB serial ports): from the Rust client and from stock Python
//! Pyro5, and when the laser is mute, garbled, refuses a value, or is
//! unplugged in the middle of a string transfer or a pending tune.
#![cfg(target_os = "linux")]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use crate::driver_calls::{call, remote};
use pyrolab_host::client::Proxy;
use pyrolab_plugin_api::Value;
use pyrolab_test_support::{Background, Sandbox, python_with_pyro5, start_lab_daemon};
use simulators::ppcl55x::{Model, Simulator, Timing};

/// A daemon `lab` serving a PPCL550 as `laser` (its port as a VISA
/// resource) and a PPCL551 as `laser_l` (its port as a path).
fn lab(sandbox: &Sandbox, c_band: &Simulator, l_band: &Simulator) -> PathBuf {
    sandbox.install_plugin("ppcl55x");
    let text = format!(
        "version: '1.0'
plugin_dirs: [{plugins}]
daemons:
  lab: {{host: 127.0.0.1, port: 0}}
services:
  laser:
    module: pyrolab.drivers.lasers.ppcl55x
    classname: PPCL550
    parameters: {{port: '{c_band}', baudrate: 9600, timeout: 1.0, settle_timeout: 5}}
    instancemode: single
    daemon: lab
  laser_l:
    module: pyrolab.drivers.lasers.ppcl55x
    classname: PPCL551
    parameters: {{port: '{l_band}'}}
    instancemode: single
    daemon: lab
",
        plugins = sandbox.plugin_dir().display(),
        c_band = c_band.resource(),
        l_band = l_band.path().display(),
    );
    let path = sandbox.path().join("lab.yaml");
    fs::write(&path, text).expect("write the lab config");
    path
}

/// Pending operations shorter than the simulator's default, still long
/// enough to be polled for (and unplugged during).
fn quick() -> Timing {
    Timing {
        enable: Duration::from_millis(300),
        tune: Duration::from_millis(150),
        mode: Duration::from_millis(80),
    }
}

fn c_band() -> Simulator {
    Simulator::start_with(Model::Ppcl550, quick()).expect("simulator")
}

fn l_band() -> Simulator {
    Simulator::start_with(Model::Ppcl551, quick()).expect("simulator")
}

fn proxy(location: &str, service: &str) -> Proxy {
    let mut proxy = Proxy::connect(&format!("PYRO:{service}@{location}")).expect("connect");
    proxy.set_timeout(Some(Duration::from_secs(30)));
    proxy
}

#[track_caller]
fn float(value: Value) -> f64 {
    match value {
        Value::Float(f) => f,
        other => panic!("a float: {other:?}"),
    }
}

/// Calls `method` on its own connection while `pull` waits for the moment
/// to unplug `laser`; returns the call's error.
fn unplugged_during(
    location: &str,
    method: &'static str,
    laser: &mut Simulator,
    moment: impl Fn(&Simulator) -> bool,
) -> (String, String) {
    let location = location.to_owned();
    let caller = thread::spawn(move || remote(call(&proxy(&location, "laser"), method, vec![])));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !moment(laser) {
        assert!(Instant::now() < deadline, "{method} never got there");
        thread::sleep(Duration::from_millis(2));
    }
    laser.unplug();
    caller.join().expect("the caller")
}

#[test]
fn the_rust_client_powers_tunes_and_identifies_the_laser_and_meets_each_fault() {
    let mut laser = c_band();
    let other = l_band();
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &laser, &other));
    let ppcl = proxy(&location, "laser");

    assert_eq!(
        call(&ppcl, "autoconnect", vec![]).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        call(&ppcl, "power_dBm", vec![12.0.into()]).unwrap(),
        Value::Null
    );
    call(&ppcl, "on", vec![]).unwrap();
    assert!(ppcl.get::<bool>("is_on").unwrap());
    assert_eq!(float(call(&ppcl, "power_dBm", vec![]).unwrap()), 12.0);
    assert_eq!(float(call(&ppcl, "power_mW", vec![]).unwrap()), 15.85);
    // Tuned while on (off, FCF1..3, on), to the MHz.
    call(&ppcl, "frequency", vec![193_414.489.into()]).unwrap();
    assert_eq!(
        float(call(&ppcl, "frequency", vec![]).unwrap()),
        193_414.489
    );
    call(&ppcl, "wavelength", vec![1550.0.into()]).unwrap();
    assert_eq!(float(call(&ppcl, "wavelength", vec![]).unwrap()), 1550.0);
    assert_eq!(
        call(&ppcl, "set_mode", vec![2.into()]).unwrap(),
        Value::Int(2)
    );
    assert_eq!(
        call(&ppcl, "set_channel", vec![1.into()]).unwrap(),
        Value::Int(1)
    );
    let max: f64 = ppcl.get("MAXIMUM_FREQUENCY").unwrap();
    assert!((max - 197_882.8).abs() < 0.1, "{max}");

    // Checked before sending.
    let (kind, message) = remote(call(&ppcl, "wavelength", vec![1600.0.into()]));
    assert_eq!(kind, "ValueError");
    assert!(message.contains("between 1515 and 1570 nm"), "{message}");
    // The laser's own refusal: within PyroLab's range, beyond the laser's.
    let (kind, message) = remote(call(&ppcl, "wavelength", vec![1516.0.into()]));
    assert_eq!(kind, "RuntimeError");
    assert!(
        message.contains("FCF1 (0x35): RVE (register value range error)"),
        "{message}"
    );
    assert!(
        ppcl.get::<bool>("is_on").unwrap(),
        "back on after the refusal"
    );

    // Mute: a TimeoutError within the timeout (1 s).
    laser.faults.mute.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let (kind, message) = remote(call(&ppcl, "power_dBm", vec![]));
    assert_eq!(kind, "TimeoutError", "{message}");
    assert!(message.contains("did not answer reading OOP"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
    laser.faults.mute.store(false, Ordering::SeqCst);
    // Garbled.
    laser.faults.garble.store(true, Ordering::SeqCst);
    let (kind, message) = remote(call(&ppcl, "frequency", vec![]));
    assert_eq!(kind, "ConnectionError", "{message}");
    assert!(message.contains("fail their checksum"), "{message}");
    laser.faults.garble.store(false, Ordering::SeqCst);
    assert_eq!(float(call(&ppcl, "wavelength", vec![]).unwrap()), 1550.0);

    // Unplugged halfway through a string (AEA) transfer.
    let Value::Map(identity) = call(&ppcl, "identify", vec![]).unwrap() else {
        panic!("a dict")
    };
    assert!(identity.contains(&(Value::from("model"), Value::from("PPCL550"))));
    laser.faults.stall_aea.store(true, Ordering::SeqCst);
    let (kind, message) = unplugged_during(&location, "identify", &mut laser, Simulator::stalled);
    assert_eq!(kind, "ConnectionError", "{message}");
    assert!(message.contains("lost the laser"), "{message}");

    // Another port: the driver works there; unplugged during a pending
    // turn-on, it is a ConnectionError too.
    let mut second = c_band();
    let port = second.path().display().to_string();
    assert_eq!(
        call(&ppcl, "connect", vec![port.into()]).unwrap(),
        Value::Bool(true)
    );
    call(&ppcl, "off", vec![]).unwrap();
    let (kind, message) = unplugged_during(&location, "on", &mut second, Simulator::pending);
    assert_eq!(kind, "ConnectionError", "{message}");

    let third = c_band();
    let port = third.path().display().to_string();
    call(&ppcl, "connect", vec![port.into()]).unwrap();
    call(&ppcl, "on", vec![]).unwrap();
    assert_eq!(float(call(&ppcl, "power_dBm", vec![]).unwrap()), 10.0);
}

/// A stock Python client, told when to go on through files in `sync`.
fn python_script(location: &str, sync: &Path, spare: &Path) -> String {
    format!(
        r#"
import os, time, Pyro5.api as p

def step(name):
    print("step", name, flush=True)
    deadline = time.time() + 20
    while not os.path.exists(os.path.join({sync:?}, name)):
        if time.time() > deadline:
            raise SystemExit("no go for " + name)
        time.sleep(0.01)

laser = p.Proxy("PYRO:laser@{location}")
print("connected", laser.connect())
laser.power_dBm(10)
laser.on()
laser.wavelength(1550)
print("wavelength", laser.wavelength(), laser.power_dBm(), laser.power_mW(), laser.is_on)
print("identity", laser.identify()["manufacturer"], round(laser.MINIMUM_FREQUENCY, 1))
print("mode", laser.set_mode(2), laser.mode())
try:
    laser.power_dBm(20)
except ValueError as e:
    print("ValueError", e)
try:
    laser.wavelength(1516)
except RuntimeError as e:
    print("RuntimeError", e)
step("mute")
try:
    laser.frequency()
except TimeoutError as e:
    print("TimeoutError", e)
step("garble")
try:
    laser.frequency()
except ConnectionError as e:
    print("ConnectionError", e)
step("clean")
print("recovered", laser.wavelength())
laser.off()
step("unplug")
try:
    laser.on()
except ConnectionError as e:
    print("dropped", e)
print("reconnected", laser.connect({spare:?}), laser.power_dBm(13.5), laser.on(), laser.power_dBm())
band = p.Proxy("PYRO:laser_l@{location}")
band.autoconnect()
band.wavelength(1600)
print("L band", band.wavelength())
print("done", flush=True)
"#,
        spare = spare.display().to_string(),
    )
}

#[test]
fn stock_python_drives_both_models_with_pyrolab_s_methods_and_meets_each_fault() {
    let mut laser = c_band();
    let spare = c_band();
    let other = l_band();
    let sandbox = Sandbox::new();
    let (_daemon, location) = start_lab_daemon(&sandbox, &lab(&sandbox, &laser, &other));
    let sync = sandbox.path().join("sync");
    fs::create_dir(&sync).expect("sync directory");
    let go = |name: &str| fs::write(sync.join(name), "").expect("go");
    let mut client = Background::start(Command::new(python_with_pyro5()).args([
        "-u",
        "-c",
        &python_script(&location, &sync, spare.path()),
    ]));
    let wait = Duration::from_secs(30);

    client.wait_for_line("step mute", wait);
    laser.faults.mute.store(true, Ordering::SeqCst);
    go("mute");
    client.wait_for_line("step garble", wait);
    laser.faults.mute.store(false, Ordering::SeqCst);
    laser.faults.garble.store(true, Ordering::SeqCst);
    go("garble");
    client.wait_for_line("step clean", wait);
    laser.faults.garble.store(false, Ordering::SeqCst);
    go("clean");
    client.wait_for_line("step unplug", wait);
    go("unplug");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !laser.pending() {
        assert!(Instant::now() < deadline, "on() never started");
        thread::sleep(Duration::from_millis(2));
    }
    laser.unplug();
    client.wait_for_line("done", wait);

    let output = client.stop();
    let lines: Vec<&str> = output.stdout.lines().collect();
    let line = |prefix: &str| {
        *lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line\n{output}"))
    };
    assert_eq!(line("connected"), "connected True", "{output}");
    assert_eq!(
        line("wavelength"),
        "wavelength 1550.0 10.0 10.0 True",
        "{output}"
    );
    assert_eq!(
        line("identity"),
        "identity Pure Photonics 190950.6",
        "{output}"
    );
    assert_eq!(line("mode"), "mode 2 2", "{output}");
    assert!(
        line("ValueError").contains("power must be between 6 and 13.5 dBm"),
        "{output}"
    );
    assert!(
        line("RuntimeError").contains("RVE (register value range error)"),
        "{output}"
    );
    assert!(line("TimeoutError").contains("did not answer"), "{output}");
    assert!(
        line("ConnectionError").contains("garbled reply"),
        "{output}"
    );
    assert_eq!(line("recovered"), "recovered 1550.0", "{output}");
    assert!(line("dropped").contains("lost the laser"), "{output}");
    assert_eq!(
        line("reconnected"),
        "reconnected True None None 13.5",
        "{output}"
    );
    assert_eq!(line("L band"), "L band 1600.0", "{output}");
}
