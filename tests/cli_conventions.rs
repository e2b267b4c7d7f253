//! The command line's conventions (issue 22): shell completions and man
//! pages generated from the clap definitions, `--version` naming the
//! plugin ABI, `up`'s progress and `up` of a running lab, and one style
//! for local errors and remote exceptions. The real binary, a private
//! data directory per test.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use pyrolab_test_support::managed_lab::Lab;
use pyrolab_test_support::{Sandbox, lab_config, run, run_host, start_lab_daemon};

/// Whether `program` is on the PATH.
fn installed(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|out| out.status.success())
}

/// `completions SHELL`, checked to be a script that names the commands,
/// and written to a file in the sandbox.
fn completion_script(sandbox: &Sandbox, shell: &str) -> PathBuf {
    let output = run_host(sandbox.host().args(["completions", shell])).success();
    assert!(!output.stdout.trim().is_empty(), "{output}");
    for subcommand in ["up", "nslist", "plugins", "completions", "man"] {
        assert!(
            output.stdout.contains(subcommand),
            "{shell}: {subcommand}\n{output}"
        );
    }
    let path = sandbox.path().join(format!("pyrolab-host.{shell}"));
    fs::write(&path, &output.stdout).unwrap();
    path
}

/// Runs `shell args... script` and asserts it succeeds, printing what it
/// said otherwise.
fn loads(shell: &str, args: &[&str], script: &str) {
    let output = run(
        Command::new(shell).args(args).arg(script),
        Duration::from_secs(30),
    );
    assert_eq!(
        output.code,
        Some(0),
        "{shell} did not load the completions\n{output}"
    );
}

#[test]
fn completions_for_bash_zsh_and_fish_name_the_commands_and_load() {
    let sandbox = Sandbox::new();
    let bash = completion_script(&sandbox, "bash");
    let registered = run(
        Command::new("bash").args([
            "--norc",
            "--noprofile",
            "-c",
            &format!("source '{}' && complete -p pyrolab-host", bash.display()),
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(registered.code, Some(0), "{registered}");
    assert!(registered.stdout.contains("pyrolab-host"), "{registered}");

    let zsh = completion_script(&sandbox, "zsh");
    if installed("zsh") {
        let script = format!(
            "autoload -Uz compinit && compinit -u -D && source '{}' && (( $+functions[_pyrolab-host] ))",
            zsh.display()
        );
        loads("zsh", &["-f", "-c"], &script);
    } else {
        eprintln!("note: zsh is not installed; its completions were generated, not loaded");
    }

    let fish = completion_script(&sandbox, "fish");
    if installed("fish") {
        let script = format!(
            "source '{}'; and complete -c pyrolab-host | string match -q '*nslist*'",
            fish.display()
        );
        loads("fish", &["--no-config", "-c"], &script);
    } else {
        eprintln!("note: fish is not installed; its completions were generated, not loaded");
    }

    for shell in ["elvish", "powershell"] {
        let output = run_host(sandbox.host().args(["completions", shell])).success();
        assert!(output.stdout.contains("nslist"), "{shell}\n{output}");
    }
    run_host(sandbox.host().args(["completions", "tcsh"])).failure(2);
}

/// The pages a page's SUBCOMMANDS section refers to: `pyrolab-host-up(1)`.
fn referenced_pages(page: &str) -> Vec<String> {
    page.lines()
        .filter_map(|line| line.strip_suffix("(1)"))
        .filter(|name| name.starts_with("pyrolab\\-host") || name.starts_with("pyrolab-host"))
        .map(|name| format!("{}.1", name.replace("\\-", "-")))
        .collect()
}

#[test]
fn man_pages_are_written_for_every_subcommand_and_render() {
    let sandbox = Sandbox::new();
    let dir = sandbox.path().join("man").join("man1");
    let output = run_host(sandbox.host().args(["man", "--out-dir"]).arg(&dir)).success();
    let written: Vec<PathBuf> = output.stdout.lines().map(PathBuf::from).collect();
    let names: Vec<String> = written
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names[0], "pyrolab-host.1", "{output}");
    for expected in [
        "pyrolab-host-up.1",
        "pyrolab-host-ps.1",
        "pyrolab-host-plugins-list.1",
        "pyrolab-host-plugins-inspect.1",
        "pyrolab-host-config-validate.1",
        "pyrolab-host-run-daemon.1",
        "pyrolab-host-tls-show.1",
        "pyrolab-host-new-driver.1",
        "pyrolab-host-completions.1",
        "pyrolab-host-man.1",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "no {expected}\n{output}"
        );
    }
    assert!(!names.iter().any(|name| name.contains("help")), "{output}");
    let mut on_disk: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut listed = names.clone();
    listed.sort();
    assert_eq!(on_disk, listed, "stdout lists every file written");
    for path in &written {
        let page = fs::read_to_string(path).unwrap();
        assert!(page.starts_with(".TH"), "{}:\n{page}", path.display());
        // Every subcommand a page lists has a page of its own.
        for referenced in referenced_pages(&page) {
            assert!(
                names.contains(&referenced),
                "{} lists {referenced}, which was not written",
                path.display()
            );
        }
    }
    assert!(
        !referenced_pages(&fs::read_to_string(&written[0]).unwrap()).is_empty(),
        "the main page lists the subcommands"
    );
    if installed("man") {
        let rendered = run(
            Command::new("man")
                .env("MANPAGER", "cat")
                .env("MANWIDTH", "80")
                .arg("-l")
                .arg(dir.join("pyrolab-host-up.1")),
            Duration::from_secs(30),
        );
        assert_eq!(rendered.code, Some(0), "{rendered}");
        assert!(rendered.stdout.contains("--config"), "{rendered}");
        assert!(!rendered.stderr.contains("warning"), "{rendered}");
    } else {
        eprintln!("note: man is not installed; the pages were checked, not rendered");
    }
}

#[test]
fn version_names_the_plugin_api_and_the_abi_drivers_must_match() {
    let sandbox = Sandbox::new();
    let plugin_api = format!("plugin-api {}", pyrolab_plugin_api::PLUGIN_API_VERSION);
    let short = run_host(sandbox.host().arg("-V")).success();
    let first_line = short.stdout.lines().next().unwrap_or_default();
    assert!(first_line.starts_with("pyrolab-host "), "{short}");
    assert!(first_line.contains(&plugin_api), "{short}");
    assert!(first_line.contains("ABI "), "{short}");
    let long = run_host(sandbox.host().arg("--version")).success();
    assert!(long.stdout.starts_with(first_line), "{long}");
    assert!(
        long.stdout
            .contains("loads drivers built against pyrolab-plugin-api"),
        "{long}"
    );
    // `plugins list` says the same of this host.
    let list = run_host(sandbox.host().args(["plugins", "list"])).success();
    assert!(list.stdout.contains(&plugin_api), "{list}");
    let json = run_host(sandbox.host().args(["plugins", "list", "--json"])).success();
    assert_eq!(
        json.json()["host"]["plugin_api_version"],
        pyrolab_plugin_api::PLUGIN_API_VERSION
    );
}

/// The demo lab's configuration with one service's description changed:
/// a file that differs from the stored configuration.
fn changed_copy(config: &Path) -> PathBuf {
    let text = fs::read_to_string(config).unwrap();
    let changed = text.replace("Library catalog system", "Library catalog, changed");
    assert_ne!(changed, text);
    let path = config.with_file_name("changed.yaml");
    fs::write(&path, changed).unwrap();
    path
}

#[test]
fn up_reports_progress_on_stderr_and_up_of_a_running_lab_is_not_an_error() {
    let lab = Lab::demo();
    let up = lab.up().success();
    let ns_ready = format!("ready: production (nameserver, 127.0.0.1:{})", lab.ns_port);
    assert!(
        up.stderr.lines().any(|line| line.starts_with(&ns_ready)),
        "{up}"
    );
    for daemon in ["lockable", "instruments"] {
        let ready = format!("ready: {daemon} (daemon, ");
        assert!(up.stderr.lines().any(|l| l.starts_with(&ready)), "{up}");
    }
    assert!(
        up.stderr.lines().any(|l| l.starts_with("waiting for: ")),
        "{up}"
    );
    // stdout is the status only.
    assert!(!up.stdout.contains("ready:"), "{up}");
    assert!(up.stdout.contains("Components"), "{up}");
    let manager = lab.manager_pid();

    let again = run_host(lab.host().arg("up")).success();
    assert!(again.stderr.contains("already running"), "{again}");
    assert!(
        again.stderr.contains(&format!("manager pid {manager}")),
        "{again}"
    );
    assert!(again.stdout.contains("Components"), "{again}");
    assert!(
        !again.stderr.contains("ready:"),
        "nothing was started\n{again}"
    );

    let same = lab.up().success();
    assert!(same.stderr.contains("already running"), "{same}");
    assert!(
        same.stderr.contains("is the stored configuration"),
        "{same}"
    );

    let changed = changed_copy(&lab.config);
    let differs = run_host(lab.host().args(["up", "--config"]).arg(&changed)).success();
    assert!(
        differs
            .stderr
            .contains("differs from the stored configuration and was not applied"),
        "{differs}"
    );
    assert!(differs.stderr.contains("pyrolab-host reload"), "{differs}");

    let json = run_host(lab.host().args(["up", "--json"])).success();
    assert_eq!(json.json()["manager"]["pid"], manager, "{json}");
    assert_eq!(lab.manager_pid(), manager, "the same manager throughout");

    // A remote exception, by name through the lab's name server.
    let raised = lab.call("sample", "divide", &["1", "0"]).failure(1);
    assert!(
        raised.stderr.starts_with(
            "error: builtins.ZeroDivisionError: division by zero (raised by sample.divide on PYRO:sample@"
        ),
        "{raised}"
    );
}

#[test]
fn local_errors_and_remote_exceptions_are_printed_in_one_style() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path().join("no-such-lab.yaml");
    let local = run_host(sandbox.host().arg("up").arg("--config").arg(&missing)).failure(1);
    assert!(local.stderr.starts_with("error: "), "{local}");
    assert!(local.stderr.contains("no-such-lab.yaml"), "{local}");

    let unreachable =
        run_host(
            sandbox
                .host()
                .args(["nslist", "--host", "127.0.0.1", "--port", "1"]),
        )
        .failure(1);
    assert!(unreachable.stderr.starts_with("error: "), "{unreachable}");
    assert!(
        unreachable
            .stderr
            .lines()
            .any(|l| l.starts_with("  caused by: ")),
        "{unreachable}"
    );

    let config = lab_config(&sandbox, "thread", "");
    let (_daemon, location) = start_lab_daemon(&sandbox, &config);
    let uri = format!("PYRO:sample@{location}");
    let raised = run_host(sandbox.host().args(["call", &uri, "divide", "1", "0"])).failure(1);
    assert_eq!(
        raised.stderr.lines().next().unwrap_or_default(),
        format!(
            "error: builtins.ZeroDivisionError: division by zero (raised by sample.divide on {uri})"
        ),
        "{raised}"
    );
    let verbose = run_host(
        sandbox
            .host()
            .args(["-v", "call", &uri, "divide", "1", "0"]),
    )
    .failure(1);
    let quiet_has_traceback = raised.stderr.contains("remote traceback:");
    assert!(!quiet_has_traceback, "{raised}");
    if raised.stderr.contains("-v shows the remote traceback") {
        assert!(verbose.stderr.contains("remote traceback:"), "{verbose}");
    }
    assert!(
        verbose
            .stderr
            .lines()
            .any(|l| l.starts_with("error: builtins.ZeroDivisionError")),
        "{verbose}"
    );
}
