//! `pyrolab-host plugins list | inspect | call`, run as a user runs them:
//! the real binary, with driver files dropped into a plugin directory.

use std::fs;
use std::path::Path;

use pyrolab_test_support::{Sandbox, library_file_name, run_host};

#[test]
fn list_reports_every_plugin_with_its_classes() {
    let sandbox = Sandbox::new();
    let sample = sandbox.install_plugin("sample");
    sandbox.install_plugin("libservice");
    let output = run_host(sandbox.host().args(["plugins", "list", "--json"])).success();
    let report = output.json();
    let plugins = report["plugins"].as_array().expect("plugins array");
    assert_eq!(plugins.len(), 2, "{output}");
    let sample_entry = plugins
        .iter()
        .find(|p| p["module"] == "sample")
        .unwrap_or_else(|| panic!("sample listed\n{output}"));
    assert_eq!(
        sample_entry["file"],
        sample.canonicalize().unwrap().display().to_string()
    );
    assert_eq!(
        sample_entry["plugin_api_version"],
        pyrolab_plugin_api::PLUGIN_API_VERSION
    );
    let classes: Vec<&str> = sample_entry["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(classes, ["SampleService", "SampleAutoconnectInstrument"]);
    let catalog = plugins.iter().find(|p| p["module"] == "libservice");
    assert!(catalog.is_some(), "libservice listed\n{output}");
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);
    let search_path = report["search_path"].as_array().unwrap();
    assert_eq!(
        search_path[0]["path"],
        sandbox.plugin_dir().display().to_string()
    );
    // <data-dir>/plugins is always searched, even when it does not exist
    // yet, and the system plugin directory after it.
    let last_two: Vec<&str> = search_path[search_path.len() - 2..]
        .iter()
        .map(|dir| dir["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        last_two,
        [
            sandbox.data_dir().join("plugins").display().to_string(),
            sandbox.system_plugin_dir().display().to_string()
        ],
        "{output}"
    );
}

/// The drivers a package installs (/usr/lib/pyrolab-host/plugins) are
/// found last: a user's own copy of the same module, in
/// `<data-dir>/plugins`, wins.
#[test]
fn the_system_plugin_directory_is_searched_after_the_data_directory() {
    let sandbox = Sandbox::new();
    let system = sandbox.system_plugin_dir();
    fs::create_dir_all(&system).unwrap();
    for module in ["sample", "libservice"] {
        fs::copy(
            pyrolab_test_support::built_library(module),
            system.join(library_file_name(module)),
        )
        .unwrap();
    }
    let data_plugins = sandbox.data_dir().join("plugins");
    fs::create_dir_all(&data_plugins).unwrap();
    fs::copy(
        pyrolab_test_support::built_library("sample"),
        data_plugins.join(library_file_name("sample")),
    )
    .unwrap();

    let listed = run_host(sandbox.host().args(["plugins", "list", "--json"])).success();
    let files: Vec<(String, String)> = listed.json()["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let file = p["file"].as_str().unwrap();
            (p["module"].as_str().unwrap().to_owned(), file.to_owned())
        })
        .collect();
    let libservice = files.iter().find(|(module, _)| module == "libservice");
    assert!(
        libservice.is_some_and(|(_, file)| file.starts_with(&system.display().to_string())),
        "{listed}"
    );
    let call = run_host(sandbox.host().args([
        "plugins",
        "call",
        "libservice:LibraryCatalog",
        "get_catalog",
        "--params",
        r#"{"catalog": {"Dune": 2}}"#,
    ]))
    .success();
    assert!(call.stdout.contains("Dune"), "{call}");
    let inspect = run_host(
        sandbox
            .host()
            .args(["plugins", "inspect", "sample", "--json"]),
    )
    .success();
    let file = inspect.json()["file"].as_str().unwrap().to_owned();
    assert!(
        Path::new(&file).starts_with(&data_plugins),
        "the data directory's copy wins\n{inspect}"
    );
}

#[test]
fn list_reports_a_bad_library_and_still_lists_the_good_ones() {
    let sandbox = Sandbox::new();
    sandbox.install_plugin("sample");
    sandbox.install_plugin("not_a_plugin");
    let garbage = sandbox.plugin_dir().join(library_file_name("garbage"));
    fs::write(&garbage, b"not a library").unwrap();
    let output = run_host(sandbox.host().args(["plugins", "list", "--json"])).failure(1);
    let report = output.json();
    assert_eq!(report["plugins"].as_array().unwrap().len(), 1, "{output}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{output}");
    assert!(errors.iter().any(|e| {
        e["error"]
            .as_str()
            .unwrap()
            .contains("not a pyrolab plugin")
    }));
    assert!(
        errors
            .iter()
            .any(|e| e["error"].as_str().unwrap().contains("cannot be loaded"))
    );

    let text = run_host(sandbox.host().args(["plugins", "list"])).failure(1);
    assert!(text.stdout.contains("SampleService"), "{text}");
    assert!(text.stdout.contains("error: "), "{text}");
}

#[test]
fn plugin_path_env_and_data_dir_plugins_are_searched() {
    let sandbox = Sandbox::new();
    let env_dir = sandbox.path().join("from-env");
    fs::create_dir_all(&env_dir).unwrap();
    fs::copy(
        pyrolab_test_support::built_library("sample"),
        env_dir.join(library_file_name("sample")),
    )
    .unwrap();
    let data_plugins = sandbox.data_dir().join("plugins");
    fs::create_dir_all(&data_plugins).unwrap();
    fs::copy(
        pyrolab_test_support::built_library("libservice"),
        data_plugins.join(library_file_name("libservice")),
    )
    .unwrap();
    let output = run_host(
        sandbox
            .host()
            .env("PYROLAB_PLUGIN_PATH", &env_dir)
            .args(["plugins", "list", "--json"]),
    )
    .success();
    let modules: Vec<String> = output.json()["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["module"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(modules, ["sample", "libservice"], "{output}");
}

#[test]
fn inspect_shows_signatures_defaults_oneway_and_properties() {
    let sandbox = Sandbox::new();
    sandbox.install_plugin("libservice");
    sandbox.install_plugin("sample");
    sandbox.install_plugin("faulty");
    let output = run_host(sandbox.host().args(["plugins", "inspect", "libservice"])).success();
    assert!(
        output
            .stdout
            .contains("checkout(title: str, quantity: int = 1) -> None  [exclusive]"),
        "{output}"
    );
    assert!(
        output.stdout.contains("Simulates a library catalog"),
        "{output}"
    );

    let output =
        run_host(
            sandbox
                .host()
                .args(["plugins", "inspect", "sample:SampleService", "--json"]),
        )
        .success();
    let report = output.json();
    let class = &report["classes"][0];
    assert_eq!(class["name"], "SampleService");
    let add = class["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "add")
        .expect("add described");
    assert_eq!(add["params"][0]["kind"], "variadic");
    assert_eq!(add["receiver"], "shared");
    let attribute = &class["properties"][0];
    assert_eq!(attribute["name"], "attribute");
    assert_eq!(attribute["writable"], true);

    let output = run_host(
        sandbox
            .host()
            .args(["plugins", "inspect", "faulty:Faulty", "--json"]),
    )
    .success();
    let methods = output.json()["classes"][0]["methods"].clone();
    let fire = methods
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "fire")
        .expect("fire described");
    assert_eq!(fire["oneway"], true);
}

#[test]
fn inspect_of_a_missing_module_or_class_is_one_clear_error() {
    let sandbox = Sandbox::new();
    sandbox.install_plugin("sample");
    let output = run_host(sandbox.host().args(["plugins", "inspect", "tsl550"])).failure(1);
    assert!(
        output
            .stderr
            .starts_with("error: plugin module 'tsl550' not found: looked for "),
        "{output}"
    );
    assert_eq!(output.stderr.lines().count(), 1, "{output}");
    let output = run_host(sandbox.host().args(["plugins", "inspect", "sample:Nope"])).failure(1);
    assert!(output.stderr.contains("no class 'Nope'"), "{output}");
}

#[test]
fn call_runs_a_driver_method_with_arguments_and_parameters() {
    let sandbox = Sandbox::new();
    sandbox.install_plugin("sample");
    sandbox.install_plugin("libservice");
    let output = run_host(sandbox.host().args([
        "plugins",
        "call",
        "sample:SampleService",
        "echo",
        "hello there",
    ]))
    .success();
    assert_eq!(output.stdout.trim(), "'SERVER RECEIVED: hello there'");

    let output = run_host(sandbox.host().args([
        "plugins",
        "call",
        "libservice:LibraryCatalog",
        "get_catalog",
        "--params",
        r#"{"catalog": {"Dune": 2}}"#,
        "--json",
    ]))
    .success();
    assert_eq!(output.json(), serde_json::json!({"Dune": 2}));

    let output = run_host(sandbox.host().args([
        "plugins",
        "call",
        "sample:SampleService",
        "divide",
        "1",
        "--kw",
        "den=0",
    ]))
    .failure(1);
    assert!(
        output
            .stderr
            .contains("SampleService.divide() raised ZeroDivisionError: division by zero"),
        "{output}"
    );
}

#[test]
fn a_panicking_driver_is_an_error_not_a_crash() {
    let sandbox = Sandbox::new();
    sandbox.install_plugin("faulty");
    let output = run_host(sandbox.host().args([
        "plugins",
        "call",
        "faulty:Faulty",
        "panic_now",
        "kaboom",
        "--params",
        r#"{"port": "COM1"}"#,
    ]))
    .failure(1);
    assert!(
        output
            .stderr
            .contains("Faulty.panic_now() raised RuntimeError: driver panicked: kaboom"),
        "{output}"
    );
    let output =
        run_host(
            sandbox
                .host()
                .args(["plugins", "call", "faulty:PanicsInConstructor", "x"]),
        )
        .failure(1);
    assert!(
        output.stderr.contains("constructing PanicsInConstructor failed: RuntimeError: driver panicked: constructor exploded"),
        "{output}"
    );
}

#[test]
fn plugin_log_events_reach_the_host_log() {
    let sandbox = Sandbox::new();
    sandbox.install_plugin("faulty");
    let output = run_host(sandbox.host().args([
        "-v",
        "plugins",
        "call",
        "faulty:Faulty",
        "log",
        "message from inside the driver",
        "--params",
        r#"{"port": "COM1"}"#,
    ]))
    .success();
    let line = output
        .stderr
        .lines()
        .find(|line| line.contains("message from inside the driver"))
        .unwrap_or_else(|| panic!("the driver's log line reached stderr\n{output}"));
    assert!(line.contains("INFO"), "{line}");
    assert!(line.contains("answer=42"), "{line}");
    assert!(line.contains("plugin=\"faulty\""), "{line}");

    // At the default level, info events from the driver are filtered out.
    let quiet = run_host(sandbox.host().args([
        "plugins",
        "call",
        "faulty:Faulty",
        "log",
        "hidden",
        "--params",
        r#"{"port": "COM1"}"#,
    ]))
    .success();
    assert!(!quiet.stderr.contains("hidden"), "{quiet}");
}

#[test]
fn help_describes_the_search_path() {
    let sandbox = Sandbox::new();
    let output = run_host(sandbox.host().args(["--help"])).success();
    assert!(output.stdout.contains("PYROLAB_PLUGIN_PATH"), "{output}");
    assert!(output.stdout.contains("--plugin-dir"), "{output}");
}

/// A reader that stops early (`| head -1`) ends a command's output: the
/// command exits 0 without a panic or a backtrace.
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    use std::process::Stdio;
    let sandbox = Sandbox::new();
    sandbox.install_plugin("sample");
    for args in [
        &["plugins", "list"][..],
        &["plugins", "list", "--json"],
        &["--help"],
    ] {
        let mut child = sandbox
            .host()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Closed before the command prints anything.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.code() == Some(0) && !stderr.contains("panicked"),
            "{args:?}: {:?}\n{stderr}",
            output.status
        );
    }
}

/// An error whose message already gives its cause is printed with the
/// cause once.
#[test]
fn an_error_names_its_cause_once() {
    let sandbox = Sandbox::new();
    let output = run_host(
        sandbox
            .host()
            .args(["nslist", "--host", "127.0.0.1", "--port", "1"]),
    )
    .failure(1);
    assert!(output.stderr.starts_with("error:"), "{output}");
    // The cause is on a `caused by:` line of its own, once.
    assert_eq!(output.stderr.matches("os error 111").count(), 1, "{output}");
}
