//! Pyro5's own tests, judging pyrolab-host: the conformance runner
//! (`tests/conformance/run.py`) fetches the pinned Pyro5 5.17 sdist,
//! points its network tests at the real binary serving Pyro5's test
//! objects from the `pyro5_test_objects` driver, and runs them with each
//! serializer. Every test must pass but those `tests/conformance/expected.txt`
//! lists, with their reasons, for that serializer (and those must fail, so
//! that the list stays exact). docs/conformance.md has the table, with
//! stock Pyro5 beside it.

use std::process::Command;
use std::time::Duration;

use pyrolab_test_support::{Sandbox, host_binary, python_with_pyro5, repo_root, run, target_dir};

/// pytest runs about 90 tests per serializer, each with a server of its own.
const RUNNER_TIMEOUT: Duration = Duration::from_secs(1200);

#[test]
fn pyro5s_own_network_tests_pass_against_pyrolab_host_with_every_serializer() {
    let sandbox = Sandbox::new();
    sandbox.install_plugin("pyro5_test_objects");
    let mut runner = Command::new(python_with_pyro5());
    runner
        .arg(repo_root().join("tests/conformance/run.py"))
        .args(["--target", "pyrolab-host", "--check"])
        .arg("--host-binary")
        .arg(host_binary())
        .arg("--plugin-dir")
        .arg(sandbox.plugin_dir())
        .arg("--cache")
        .arg(target_dir().join("conformance"));
    let output = run(&mut runner, RUNNER_TIMEOUT);
    assert_eq!(
        output.code,
        Some(0),
        "Pyro5's tests differ from tests/conformance/expected.txt\n{output}"
    );
    for serializer in ["serpent", "json", "msgpack"] {
        assert!(
            output
                .stdout
                .contains(&format!("pyrolab-host, {serializer}: ")),
            "no run with {serializer}\n{output}"
        );
    }
}
