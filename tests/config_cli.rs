//! `pyrolab-host config ...` and `info`, run as a user runs them: the real
//! binary, real files, a private data directory per test.

use std::fs;
use std::path::PathBuf;

use pyrolab_test_support::{Sandbox, repo_root, run_host};

fn seed_example() -> PathBuf {
    repo_root().join("config/library-catalog.yaml")
}

/// `config update` with PyroLab's library-catalog example.
fn store_seed_example(sandbox: &Sandbox) {
    run_host(
        sandbox
            .host()
            .arg("config")
            .arg("update")
            .arg(seed_example()),
    )
    .success();
}

fn write_config(sandbox: &Sandbox, name: &str, text: &str) -> PathBuf {
    let path = sandbox.path().join(name);
    fs::write(&path, text).unwrap();
    path
}

const MISTAKES: &str = "\
nameservers:
  production:
    ns_prot: 9090
daemons:
  lockable:
    port: 70000
    nameservers: [production]
services:
  library:
    module: libservice
    classname: LibraryCatalog
    instancemode: singel
    daemon: lockabel
";

#[test]
fn validate_accepts_the_seed_example_and_every_bundled_config() {
    let sandbox = Sandbox::new();
    for name in ["library-catalog.yaml", "nameservers.yaml", "example.yaml"] {
        let file = repo_root().join("config").join(name);
        let output = run_host(sandbox.host().arg("config").arg("validate").arg(&file)).success();
        assert!(output.stdout.contains("valid"), "{output}");
    }
}

#[test]
fn validate_reports_every_mistake_with_its_place_in_one_run() {
    let sandbox = Sandbox::new();
    let file = write_config(&sandbox, "lab.yaml", MISTAKES);
    let output = run_host(sandbox.host().arg("config").arg("validate").arg(&file)).failure(1);
    let shown = file.display().to_string();
    for expected in [
        format!(
            "{shown}:3:5: warning: nameservers.production.ns_prot: unknown key `ns_prot`; did you mean `ns_port`?"
        ),
        format!(
            "{shown}:6:11: error: daemons.lockable.port: expected a port number from 0 to 65535, found 70000"
        ),
        format!(
            "{shown}:12:19: error: services.library.instancemode: expected one of single, session, percall, found \"singel\" (did you mean \"single\"?)"
        ),
        format!(
            "{shown}:13:13: error: services.library.daemon: no daemon named \"lockabel\"; did you mean \"lockable\"?"
        ),
        format!("{shown}: 3 errors"),
    ] {
        assert!(
            output.stderr.lines().any(|l| l == expected),
            "missing {expected:?}\n{output}"
        );
    }
}

#[test]
fn strict_turns_unknown_keys_into_errors() {
    let sandbox = Sandbox::new();
    let text = fs::read_to_string(seed_example()).unwrap().replace(
        "    ns_port: 9090\n",
        "    ns_port: 9090\n    colour: blue\n",
    );
    let file = write_config(&sandbox, "lab.yaml", &text);
    let lenient = run_host(sandbox.host().arg("config").arg("validate").arg(&file)).success();
    assert!(
        lenient
            .stderr
            .contains("warning: nameservers.production.colour: unknown key"),
        "{lenient}"
    );
    let strict = run_host(
        sandbox
            .host()
            .args(["config", "validate", "--strict"])
            .arg(&file),
    )
    .failure(1);
    assert!(
        strict
            .stderr
            .contains("error: nameservers.production.colour: unknown key"),
        "{strict}"
    );
}

#[test]
fn update_stores_and_show_export_and_info_give_it_back() {
    let sandbox = Sandbox::new();
    store_seed_example(&sandbox);
    let stored = sandbox.data_dir().join("config.yaml");
    assert!(stored.is_file());
    #[cfg(unix)]
    {
        // The lab's data is its own, not every local user's (the sandbox
        // made the data directory with the usual 0755).
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |path: &std::path::Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sandbox.data_dir()), 0o700);
        assert_eq!(mode(&stored), 0o600);
    }

    let show = run_host(sandbox.host().args(["config", "show"])).success();
    assert!(show.stdout.contains("classname: LockableDaemon"), "{show}");
    assert!(
        show.stdout.contains("threadpool_size: 80"),
        "defaults filled in\n{show}"
    );

    let exported = sandbox.path().join("exported.yaml");
    run_host(sandbox.host().args(["config", "export"]).arg(&exported)).success();
    assert_eq!(fs::read_to_string(&exported).unwrap(), show.stdout);
    run_host(sandbox.host().arg("config").arg("validate").arg(&exported)).success();

    let info = run_host(sandbox.host().args(["info", "--json"])).success();
    let json = info.json();
    assert_eq!(json["services"]["library"]["module"], "libservice");
    assert_eq!(json["services"]["library"]["instancemode"], "single");
    assert_eq!(json["daemons"]["lockable"]["classname"], "LockableDaemon");
    assert_eq!(json["nameservers"]["production"]["ns_port"], 9090);
    let table = run_host(sandbox.host().arg("info")).success();
    assert!(
        table.stdout.contains("libservice:LibraryCatalog"),
        "{table}"
    );
    assert!(table.stdout.contains("localhost:9090"), "{table}");
}

#[test]
fn update_refuses_a_bad_file_and_keeps_the_stored_one() {
    let sandbox = Sandbox::new();
    store_seed_example(&sandbox);
    let stored = sandbox.data_dir().join("config.yaml");
    let before = fs::read(&stored).unwrap();
    let bad = write_config(&sandbox, "bad.yaml", MISTAKES);
    let output = run_host(sandbox.host().arg("config").arg("update").arg(&bad)).failure(1);
    assert!(
        output
            .stderr
            .contains("the stored configuration was not changed"),
        "{output}"
    );
    assert_eq!(fs::read(&stored).unwrap(), before);
}

#[test]
fn reset_asks_first_and_yes_skips_the_question() {
    let sandbox = Sandbox::new();
    store_seed_example(&sandbox);
    let stored = sandbox.data_dir().join("config.yaml");
    // No terminal to ask on: refused, and the file stays.
    let output = run_host(sandbox.host().args(["config", "reset"])).failure(1);
    assert!(output.stderr.contains("pass --yes"), "{output}");
    assert!(stored.is_file());
    run_host(sandbox.host().args(["config", "reset", "--yes"])).success();
    assert!(!stored.exists());
    let info = run_host(sandbox.host().arg("info")).failure(1);
    assert!(info.stderr.contains("no configuration is stored"), "{info}");
    assert!(info.stderr.contains("config update"), "{info}");
}

#[test]
fn a_missing_file_is_one_clear_error() {
    let sandbox = Sandbox::new();
    let output = run_host(
        sandbox
            .host()
            .args(["config", "validate", "/nonexistent/lab.yaml"]),
    )
    .failure(1);
    assert!(
        output.stderr.contains("/nonexistent/lab.yaml: cannot read"),
        "{output}"
    );
}

#[test]
fn stored_plugin_dirs_join_the_plugin_search_path() {
    let sandbox = Sandbox::new();
    let drivers = sandbox.path().join("lab-drivers");
    fs::create_dir_all(&drivers).unwrap();
    fs::copy(
        pyrolab_test_support::built_library("sample"),
        drivers.join(pyrolab_test_support::library_file_name("sample")),
    )
    .unwrap();
    // Relative to the configuration file's folder (the sandbox root).
    let text = fs::read_to_string(seed_example()).unwrap().replace(
        "version: '1.0'\n",
        "version: '1.0'\nplugin_dirs: [lab-drivers]\n",
    );
    let file = write_config(&sandbox, "lab.yaml", &text);
    run_host(sandbox.host().arg("config").arg("update").arg(&file)).success();

    let list = run_host(sandbox.host().args(["plugins", "list", "--json"])).success();
    let report = list.json();
    let dirs: Vec<&str> = report["search_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        dirs[1],
        drivers.display().to_string(),
        "after --plugin-dir\n{list}"
    );
    assert_eq!(report["plugins"][0]["module"], "sample", "{list}");
}

#[test]
fn a_plugin_dir_that_does_not_exist_is_a_warning() {
    let sandbox = Sandbox::new();
    let text = fs::read_to_string(seed_example()).unwrap().replace(
        "version: '1.0'\n",
        "version: '1.0'\nplugin_dirs: [no-such-dir]\n",
    );
    let file = write_config(&sandbox, "lab.yaml", &text);
    let line = text
        .lines()
        .position(|l| l.starts_with("plugin_dirs"))
        .unwrap()
        + 1;
    let output = run_host(sandbox.host().arg("config").arg("validate").arg(&file)).success();
    let expected = format!(":{line}:15: warning: plugin_dirs[0]: ");
    assert!(output.stderr.contains(&expected), "{output}");
    assert!(output.stderr.contains("is not a directory"), "{output}");
}

/// PyroLab 0.5's `PYROLAB_DATA_DIR` names the data directory too;
/// `PYROLAB_HOME` wins when both are set, and `--data-dir` over both.
#[test]
fn pyrolab_data_dir_is_read_as_the_data_directory() {
    let sandbox = Sandbox::new();
    let pyrolab = sandbox.path().join("pyrolab-data");
    let home = sandbox.path().join("pyrolab-home");
    let host = || {
        let mut command = std::process::Command::new(pyrolab_test_support::host_binary());
        command
            .env_remove("PYROLAB_HOME")
            .env_remove("PYROLAB_DATA_DIR")
            .env_remove("PYROLAB_PLUGIN_PATH");
        command
    };
    run_host(
        host()
            .env("PYROLAB_DATA_DIR", &pyrolab)
            .args(["config", "update"])
            .arg(seed_example()),
    )
    .success();
    assert!(pyrolab.join("config.yaml").is_file());
    let info = run_host(host().env("PYROLAB_DATA_DIR", &pyrolab).arg("info")).success();
    assert!(info.stdout.contains("library"), "{info}");

    run_host(
        host()
            .env("PYROLAB_DATA_DIR", &pyrolab)
            .env("PYROLAB_HOME", &home)
            .args(["config", "update"])
            .arg(seed_example()),
    )
    .success();
    assert!(home.join("config.yaml").is_file(), "PYROLAB_HOME wins");
}
