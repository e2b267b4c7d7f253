//! The README's quick start, as a user types it: `up --config` on the demo
//! lab, whose `data_dir:` keeps its data in the clone's `.pyrolab-host/`,
//! then `ps`, `call` and `down` with no data directory given, found from
//! the working directory. Here the clone is a folder of the sandbox, and
//! the user's home one too, so that nothing of the real user's is touched
//! or found.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use pyrolab_test_support::{Output, Sandbox, free_port, host_binary, run_host};

/// A sandboxed clone holding the demo lab's configuration, pointed at the
/// sandbox's drivers and a free port, its `data_dir:` as shipped.
struct Clone {
    sandbox: Sandbox,
    root: PathBuf,
}

impl Clone {
    fn new() -> Clone {
        let sandbox = Sandbox::new();
        for lib in ["sample", "libservice"] {
            sandbox.install_plugin(lib);
        }
        let root = sandbox.path().join("clone");
        fs::create_dir_all(root.join("config")).unwrap();
        fs::create_dir_all(sandbox.path().join("home")).unwrap();
        let ns_port = free_port();
        let demo =
            fs::read_to_string(pyrolab_test_support::repo_root().join("config/demo-lab.yaml"))
                .unwrap();
        assert!(demo.contains("\ndata_dir: ../.pyrolab-host\n"), "{demo}");
        let text = demo
            .replace(
                "- ../target/release",
                &format!("- {}", sandbox.plugin_dir().display()),
            )
            .replace("ns_port: 9090", &format!("ns_port: {ns_port}"))
            .replace("host: localhost", "host: 127.0.0.1")
            .replace("  port: 8080\n", "  port: 0\n");
        fs::write(root.join("config/demo-lab.yaml"), text).unwrap();
        Clone { sandbox, root }
    }

    /// The demo's data directory, as its `data_dir:` names it.
    fn data_dir(&self) -> PathBuf {
        self.root.join(".pyrolab-host")
    }

    /// `pyrolab-host ARGS` run in `dir` as a user with no data directory
    /// set: no `--data-dir`, no `PYROLAB_*` variables, a home of the
    /// sandbox's.
    fn host_in(&self, dir: &Path) -> Command {
        let mut command = Command::new(host_binary());
        command
            .current_dir(dir)
            .env("HOME", self.sandbox.path().join("home"))
            .env(
                "PYROLAB_SYSTEM_PLUGIN_DIR",
                self.sandbox.system_plugin_dir(),
            );
        for var in [
            "PYROLAB_HOME",
            "PYROLAB_DATA_DIR",
            "PYROLAB_PLUGIN_PATH",
            "XDG_DATA_HOME",
            "PYRO_NS_HOST",
            "PYRO_NS_PORT",
        ] {
            command.env_remove(var);
        }
        command
    }

    fn host(&self) -> Command {
        self.host_in(&self.root)
    }
}

/// Whatever a test leaves running is stopped.
impl Drop for Clone {
    fn drop(&mut self) {
        let _ = self
            .host()
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("down")
            .output();
    }
}

fn up(clone: &Clone, dir: &Path, config: &Path) -> Output {
    run_host(clone.host_in(dir).arg("up").arg("--config").arg(config)).success()
}

#[test]
fn the_demo_keeps_its_data_in_the_clone_and_the_commands_that_follow_find_it() {
    let clone = Clone::new();
    let started = up(&clone, &clone.root, Path::new("config/demo-lab.yaml"));
    assert!(clone.data_dir().join("config.yaml").is_file(), "{started}");
    assert!(
        !started.stderr.contains("note:"),
        "found from here: {started}"
    );
    let home = clone.sandbox.path().join("home");
    assert!(
        !home.join(".local/share/pyrolab-host").exists(),
        "the user's data directory is untouched"
    );

    // From the clone's top and from a folder inside it, as the README
    // goes on.
    let ps = run_host(clone.host().args(["ps", "--json"])).success();
    let data_dir = ps.json()["manager"]["data_dir"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        fs::canonicalize(&data_dir).unwrap(),
        fs::canonicalize(clone.data_dir()).unwrap(),
        "{ps}"
    );
    let inside = clone.root.join("config");
    let call = run_host(
        clone
            .host_in(&inside)
            .args(["call", "library", "get_catalog"]),
    )
    .success();
    assert!(call.stdout.contains("The Hobbit"), "{call}");
    let down = run_host(clone.host().arg("down")).success();
    assert!(down.stdout.contains("stopped"), "{down}");
    let again = run_host(clone.host().arg("ps")).failure(1);
    assert!(again.stderr.contains("no manager is running"), "{again}");
}

/// `up` from outside the clone still obeys the file's `data_dir:`, and
/// says how the commands that follow reach that lab; `PYROLAB_HOME` wins
/// over the file, which it says too.
#[test]
fn a_data_dir_the_next_commands_would_miss_is_pointed_out() {
    let clone = Clone::new();
    let elsewhere = clone.sandbox.path();
    let config = clone.root.join("config/demo-lab.yaml");
    let started = up(&clone, elsewhere, &config);
    assert!(clone.data_dir().join("config.yaml").is_file(), "{started}");
    assert!(
        started
            .stderr
            .contains("other commands act on it given `--data-dir "),
        "{started}"
    );
    run_host(
        clone
            .host_in(elsewhere)
            .arg("--data-dir")
            .arg(clone.data_dir())
            .arg("down"),
    )
    .success();

    let home = clone.sandbox.path().join("pyrolab-home");
    let stored = run_host(
        clone
            .host()
            .env("PYROLAB_HOME", &home)
            .args(["config", "update"])
            .arg(&config),
    )
    .success();
    assert!(home.join("config.yaml").is_file(), "{stored}");
    assert!(
        stored.stderr.contains("data_dir") && stored.stderr.contains("is not used"),
        "{stored}"
    );
}
