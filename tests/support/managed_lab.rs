//! A lab under a manager (`pyrolab-host up`), for end-to-end tests.

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::{Output, Sandbox, free_port, process_running, run, run_host};

/// A lab under a manager, in its own sandbox. Dropping it stops the lab
/// (and, should `down` fail, kills what is left), so a failing test
/// leaves no process behind.
pub struct Lab {
    /// Its sandbox.
    pub sandbox: Sandbox,
    /// Its name server's port.
    pub ns_port: u16,
    /// Its configuration file.
    pub config: PathBuf,
}

impl Lab {
    /// The README's demo lab (`config/demo-lab.yaml`), on loopback, its
    /// name server on a free port, its drivers from the sandbox.
    pub fn demo() -> Lab {
        Lab::demo_with("")
    }

    /// The demo lab with `extra` appended to its configuration (a
    /// `monitor:` section, say).
    pub fn demo_with(extra: &str) -> Lab {
        let sandbox = Sandbox::new();
        for lib in ["sample", "libservice"] {
            sandbox.install_plugin(lib);
        }
        let ns_port = free_port();
        let demo = fs::read_to_string(crate::repo_root().join("config/demo-lab.yaml"))
            .expect("read config/demo-lab.yaml");
        let text = demo
            .replace(
                "- ../target/release",
                &format!("- {}", sandbox.plugin_dir().display()),
            )
            .replace("ns_port: 9090", &format!("ns_port: {ns_port}"))
            .replace("host: localhost", "host: 127.0.0.1")
            .replace("  port: 8080\n", "  port: 0\n  polling: 0.2\n");
        assert_ne!(text, demo, "the demo configuration changed shape");
        Lab::with_config(sandbox, ns_port, "demo-lab.yaml", &(text + extra))
    }

    /// The demo lab, up, and its monitor's URL (from `ps --json`).
    pub fn demo_with_monitor() -> (Lab, String) {
        let lab = Lab::demo();
        lab.up().success();
        let url = lab.ps()["manager"]["monitor"]
            .as_str()
            .expect("the monitor's URL in ps --json")
            .to_owned();
        (lab, url)
    }

    /// A lab of configuration `text` (written to `name` in the sandbox),
    /// its name server on `ns_port`.
    pub fn with_config(sandbox: Sandbox, ns_port: u16, name: &str, text: &str) -> Lab {
        let config = sandbox.path().join(name);
        fs::write(&config, text).expect("write the lab config");
        Lab {
            sandbox,
            ns_port,
            config,
        }
    }

    pub fn host(&self) -> Command {
        self.sandbox.host()
    }

    /// `pyrolab-host up --config CONFIG`.
    pub fn up(&self) -> Output {
        run_host(self.host().arg("up").arg("--config").arg(&self.config))
    }

    /// `ps --json`.
    pub fn ps(&self) -> serde_json::Value {
        run_host(self.host().args(["ps", "--json"]))
            .success()
            .json()
    }

    /// A component as `ps --json` lists it.
    pub fn component(&self, name: &str) -> serde_json::Value {
        let status = self.ps();
        status["components"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == name).cloned())
            .unwrap_or_else(|| panic!("no component {name} in {status:#}"))
    }

    pub fn pid(&self, name: &str) -> u32 {
        let component = self.component(name);
        component["pid"]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} has no pid: {component:#}")) as u32
    }

    pub fn manager_pid(&self) -> u32 {
        self.ps()["manager"]["pid"].as_u64().expect("manager pid") as u32
    }

    /// Every process of the lab: the manager and its components.
    pub fn pids(&self) -> Vec<u32> {
        let status = self.ps();
        let mut pids: Vec<u32> = status["components"]
            .as_array()
            .expect("components")
            .iter()
            .filter_map(|c| c["pid"].as_u64())
            .map(|pid| pid as u32)
            .collect();
        pids.push(status["manager"]["pid"].as_u64().expect("manager pid") as u32);
        pids
    }

    /// `call SERVICE METHOD ARGS...` by name, through the name server.
    pub fn call(&self, service: &str, method: &str, args: &[&str]) -> Output {
        run_host(self.host().args(["call", service, method]).args(args))
    }

    pub fn run_dir(&self) -> PathBuf {
        self.sandbox.data_dir().join("run")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = run(
            self.host().args(["down", "--timeout", "2"]),
            Duration::from_secs(30),
        );
        // Should `down` have failed: kill whatever is recorded.
        let run_dir = self.run_dir();
        let mut pids: Vec<u32> = fs::read_to_string(run_dir.join("manager.pid"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .into_iter()
            .collect();
        if let Ok(text) = fs::read_to_string(run_dir.join("children.json")) {
            let children: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            pids.extend(
                children
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["pid"].as_u64())
                    .map(|pid| pid as u32),
            );
        }
        for pid in pids.into_iter().filter(|pid| process_running(*pid)) {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
    }
}
