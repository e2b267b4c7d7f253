//! `config/simulated-lab.yaml`, the example lab of every instrument
//! driver on its simulator: `up` starts the simulators (`pyrolab-host
//! simulate`, as `command` components) with the name server and the
//! daemon, and stock Python Pyro5 finds every instrument by name and
//! drives it. Also: `plugins list` shows every driver.

use std::fs;
use std::process::Command;
use std::time::Duration;

use pyrolab_test_support::managed_lab::Lab;
use pyrolab_test_support::{Sandbox, free_port, python_with_pyro5, run, run_host};

/// The drivers' libraries, as `plugins list` names them, with their classes.
const DRIVERS: &[(&str, &[&str])] = &[
    ("keysight", &["B2900"]),
    ("rohdeschwarz", &["RTO"]),
    ("smcv100b", &["SMCV100B"]),
    ("kdc101", &["KDC101"]),
    ("ppcl55x", &["PPCL550", "PPCL551"]),
    ("tsl550", &["TSL550"]),
];

/// The example, on loopback, each fixed port of it replaced by a free one.
fn simulated_lab() -> Lab {
    let sandbox = Sandbox::new();
    for (library, _) in DRIVERS {
        sandbox.install_plugin(library);
    }
    let example =
        fs::read_to_string(pyrolab_test_support::repo_root().join("config/simulated-lab.yaml"))
            .expect("read config/simulated-lab.yaml");
    let ns_port = free_port();
    let mut text = example
        .replace(
            "- ../target/release",
            &format!("- {}", sandbox.plugin_dir().display()),
        )
        .replace("ns_port: 9090", &format!("ns_port: {ns_port}"))
        .replace("localhost", "127.0.0.1");
    for port in ["5025", "5026", "5111", "5027", "5028", "5029"] {
        assert!(text.contains(port), "the example changed shape: no {port}");
        text = text.replace(port, &free_port().to_string());
    }
    Lab::with_config(sandbox, ns_port, "simulated-lab.yaml", &text)
}

#[test]
fn the_example_lab_of_every_driver_on_simulators_starts_with_up_and_answers_python() {
    let lab = simulated_lab();
    lab.up().success();
    let status = lab.ps();
    let components = status["components"].as_array().expect("components");
    for name in [
        "sim.smu",
        "sim.scope",
        "sim.generator",
        "sim.stage",
        "sim.laser",
        "sim.laser_l",
    ] {
        let component = components
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {status:#}"));
        assert_eq!(component["status"], "running", "{component:#}");
    }

    let ns = format!("127.0.0.1:{}", lab.ns_port);
    let output = run(
        Command::new(python_with_pyro5()).args([
            "-c",
            &format!(
                r#"
import Pyro5.api as p, serpent
def by_name(name):
    proxy = p.Proxy("PYRONAME:" + name + "@{ns}")
    proxy._pyroTimeout = 60
    print(name, proxy.autoconnect())
    return proxy
smu = by_name("lab.smu")
print("current", round(smu.measure_current(1.0, 0.01), 6))
scope = by_name("lab.scope")
scope.acquire()
scope.wait_for_device()
print("waveform", len(serpent.tobytes(scope.get_waveform(1))))
generator = by_name("lab.generator")
generator.set_freq(1e9)
print("frequency", generator.frequency())
stage = by_name("lab.stage")
stage.home()
stage.move_to(2.5)
print("position", round(stage.get_position(), 3))
laser = by_name("lab.laser")
laser.on()
print("laser on", laser.is_on)
laser_l = by_name("lab.laser_l")
print("L band from", laser_l.MINIMUM_WAVELENGTH)
"#
            ),
        ]),
        Duration::from_secs(120),
    );
    assert_eq!(output.code, Some(0), "{output}");
    for expected in [
        "lab.smu True",
        "current 0.001",
        "lab.scope True",
        "waveform 1000",
        "lab.generator True",
        "frequency 1000000000.0",
        "lab.stage True",
        "position 2.5",
        "lab.laser True",
        "laser on True",
        "lab.laser_l True",
        "L band from 1569",
    ] {
        assert!(output.stdout.contains(expected), "{expected}: {output}");
    }
    run_host(lab.host().args(["down", "--timeout", "5"])).success();
}

#[test]
fn plugins_list_shows_every_instrument_driver_and_its_classes() {
    let sandbox = Sandbox::new();
    for (library, _) in DRIVERS {
        sandbox.install_plugin(library);
    }
    let listing = run_host(
        sandbox
            .host()
            .args(["plugins", "list", "--json", "--plugin-dir"])
            .arg(sandbox.plugin_dir()),
    )
    .success()
    .json();
    let plugins = listing["plugins"].as_array().expect("plugins");
    for (library, classes) in DRIVERS {
        let plugin = plugins
            .iter()
            .find(|p| p["module"] == *library)
            .unwrap_or_else(|| panic!("no {library} in {listing:#}"));
        let names: Vec<&str> = plugin["classes"]
            .as_array()
            .expect("classes")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(names, *classes, "{plugin:#}");
    }
}
