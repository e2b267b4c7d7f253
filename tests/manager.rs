//! `pyrolab-host up` and the manager, end to end: the real binary in the
//! background, its components as real processes, clients over real
//! sockets, plugin files loaded from disk.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pyrolab_test_support::managed_lab::Lab;
use pyrolab_test_support::{
    Background, Output, Sandbox, process_running, python_with_pyro5, run, run_host, wait_until,
};

fn kill_9(pid: u32) {
    let status = Command::new("kill")
        .arg("-9")
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {pid} failed");
}

fn python(script: &str) -> Output {
    run(
        Command::new(python_with_pyro5()).args(["-c", script]),
        Duration::from_secs(60),
    )
}

#[test]
fn up_serves_the_demo_lab_by_name_to_python_and_the_cli_and_down_leaves_nothing() {
    let lab = Lab::demo();
    let up = lab.up().success();
    for name in ["production", "lockable", "instruments"] {
        assert!(up.stdout.contains(name), "{up}");
    }
    let status = lab.ps();
    for component in status["components"].as_array().expect("components") {
        assert_eq!(component["status"], "running", "{status:#}");
        assert_eq!(component["restarts"], 0, "{status:#}");
    }
    for service in status["services"].as_array().expect("services") {
        assert_eq!(
            service["registered_with"],
            serde_json::json!(["production"]),
            "{status:#}"
        );
    }

    let catalog = lab.call("library", "get_catalog", &[]).success();
    assert_eq!(
        catalog.json(),
        serde_json::json!({"The Hobbit": 3, "C Programming": 2})
    );
    let port = lab.ns_port;
    let client = python(&format!(
        "import Pyro5.api as p\n\
         print(p.Proxy('PYRONAME:library@127.0.0.1:{port}').get_catalog())\n\
         print(p.Proxy('PYRONAME:sample@127.0.0.1:{port}').echo('hi'))"
    ))
    .success();
    assert!(client.stdout.contains("'The Hobbit': 3"), "{client}");
    assert!(client.stdout.contains("SERVER RECEIVED: hi"), "{client}");

    #[cfg(unix)]
    {
        // The lab's data and logs are its own, not every local user's.
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let data = lab.sandbox.data_dir();
        assert_eq!(mode(&data), 0o700);
        let logs: Vec<_> = std::fs::read_dir(data.join("logs"))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(logs.len() >= 4, "{logs:?}");
        for log in logs.iter().filter(|path| path.is_file()) {
            assert_eq!(mode(log), 0o600, "{}", log.display());
        }
    }
    let pids = lab.pids();
    assert_eq!(pids.len(), 4, "a name server, two daemons, the manager");
    let info = run_host(lab.host().arg("info")).success();
    assert!(info.stdout.contains("The lab is up: manager pid"), "{info}");
    run_host(lab.host().arg("down")).success();
    let info = run_host(lab.host().arg("info")).success();
    assert!(info.stdout.contains("The lab is down"), "{info}");
    for pid in &pids {
        assert!(!process_running(*pid), "pid {pid} outlived `down`");
    }
    assert!(!lab.run_dir().join("control.sock").exists());
    let after = run_host(lab.host().arg("ps"));
    assert_eq!(after.code, Some(1), "{after}");
    assert!(after.stderr.contains("no manager is running"), "{after}");
}

#[test]
fn a_killed_daemon_is_reachable_by_name_again_within_5_seconds() {
    let lab = Lab::demo();
    lab.up().success();
    let old = lab.pid("lockable");
    kill_9(old);
    let killed = Instant::now();
    let back = wait_until(Duration::from_secs(5), || {
        lab.call("library", "get_catalog", &[]).code == Some(0)
    });
    assert!(
        back,
        "library unreachable 5 s after kill -9: {:#}",
        lab.ps()
    );
    eprintln!("reachable by name again after {:?}", killed.elapsed());
    let daemon = lab.component("lockable");
    assert_eq!(daemon["status"], "running", "{daemon:#}");
    assert_eq!(daemon["restarts"], 1, "{daemon:#}");
    assert_ne!(daemon["pid"], old, "{daemon:#}");
    assert!(
        daemon["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("SIGKILL")),
        "{daemon:#}"
    );
    // The others were not touched.
    assert_eq!(lab.component("instruments")["restarts"], 0);
    let logs = run_host(lab.host().args(["logs", "lockable"])).success();
    assert!(
        logs.stdout
            .contains("[manager] crashed (killed by SIGKILL); restarting in 0.5 s"),
        "{logs}"
    );
}

#[test]
fn a_daemon_whose_plugin_is_missing_makes_up_fail_fast_with_the_reason() {
    let lab = Lab::demo();
    fs::remove_file(
        lab.sandbox
            .plugin_dir()
            .join(pyrolab_test_support::library_file_name("libservice")),
    )
    .expect("remove the library catalog driver");
    let started = Instant::now();
    let up = lab.up().failure(1);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(up.stderr.contains("daemon lockable failed"), "{up}");
    assert!(
        up.stderr.contains("plugin module 'libservice' not found"),
        "{up}"
    );
    // The rest of the lab runs; the failed daemon is listed as failed.
    assert_eq!(lab.component("instruments")["status"], "running");
    let failed = lab.component("lockable");
    assert_eq!(failed["status"], "failed", "{failed:#}");
    assert_eq!(
        failed["restarts"], 0,
        "failed fast, not retried: {failed:#}"
    );
}

/// Adds `setting` (a `key: value` line) to daemon `daemon` of the lab's
/// configuration, before `up`.
fn set_daemon_setting(lab: &Lab, daemon: &str, setting: &str) {
    let text = fs::read_to_string(&lab.config).expect("read the lab config");
    let entry = format!("\n  {daemon}:\n");
    assert!(
        text.contains(&entry),
        "no daemon {daemon} in the lab config"
    );
    let text = text.replacen(&entry, &format!("{entry}    {setting}\n"), 1);
    fs::write(&lab.config, text).expect("write the lab config");
}

/// With `restart: on-failure`, a daemon that crashes again and again is
/// given up on: failed, with its last error.
#[test]
fn a_crash_looping_daemon_with_restart_on_failure_ends_failed_with_its_last_error() {
    let lab = Lab::demo();
    set_daemon_setting(&lab, "lockable", "restart: on-failure");
    lab.up().success();
    // The driver file disappears; then the daemon dies. Every restart
    // fails to load it.
    fs::remove_file(
        lab.sandbox
            .plugin_dir()
            .join(pyrolab_test_support::library_file_name("libservice")),
    )
    .expect("remove the driver");
    kill_9(lab.pid("lockable"));
    let gave_up = wait_until(Duration::from_secs(40), || {
        lab.component("lockable")["status"] == "failed"
    });
    let daemon = lab.component("lockable");
    assert!(gave_up, "still not failed: {daemon:#}");
    assert_eq!(daemon["restarts"], 4, "{daemon:#}");
    assert_eq!(daemon["pid"], serde_json::Value::Null);
    let error = daemon["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("crashed 5 times in a row"), "{daemon:#}");
    assert!(
        error.contains("plugin module 'libservice' not found"),
        "{daemon:#}"
    );
    // It stays failed, and the rest of the lab is fine.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.component("lockable")["restarts"], 4);
    lab.call("sample", "echo", &["still here"]).success();
    let ps = run_host(lab.host().arg("ps")).success();
    assert!(ps.stdout.contains("failed"), "{ps}");
    assert!(ps.stdout.contains("crashed 5 times in a row"), "{ps}");
}

/// A crash loop ended the service for good: after 5 crashes within 60 s
/// the component was failed until someone typed `start`. By default
/// (`restart: always`) it is now retried every 30 s, `ps` says it is
/// crash-looping, and it comes back by itself once the fault is gone.
#[test]
fn a_crash_looping_daemon_is_retried_until_it_comes_back() {
    let lab = Lab::demo();
    lab.up().success();
    let driver = lab
        .sandbox
        .plugin_dir()
        .join(pyrolab_test_support::library_file_name("libservice"));
    let kept = lab.sandbox.path().join("libservice.kept");
    fs::rename(&driver, &kept).expect("move the driver away");
    kill_9(lab.pid("lockable"));
    let looping = wait_until(Duration::from_secs(40), || {
        lab.component("lockable")["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("crash-looping"))
    });
    let daemon = lab.component("lockable");
    assert!(looping, "not crash-looping: {daemon:#}");
    assert_eq!(daemon["status"], "restarting", "{daemon:#}");
    assert_eq!(daemon["restarts"], 5, "{daemon:#}");
    let error = daemon["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("retrying every 30 s"), "{daemon:#}");
    assert!(
        error.contains("plugin module 'libservice' not found"),
        "{daemon:#}"
    );
    let ps = run_host(lab.host().arg("ps")).success();
    assert!(ps.stdout.contains("crash-looping"), "{ps}");
    // The fault goes away: the next attempt brings it back.
    fs::rename(&kept, &driver).expect("put the driver back");
    let back = wait_until(Duration::from_secs(45), || {
        lab.component("lockable")["status"] == "running"
    });
    assert!(back, "did not come back: {:#}", lab.component("lockable"));
    lab.call("library", "get_catalog", &[]).success();
}

/// With `restart: never`, a daemon that dies stays down, failed, with the
/// reason; the rest of the lab goes on.
#[test]
fn a_daemon_with_restart_never_stays_down_after_a_crash() {
    let lab = Lab::demo();
    set_daemon_setting(&lab, "instruments", "restart: never");
    lab.up().success();
    kill_9(lab.pid("instruments"));
    let down = wait_until(Duration::from_secs(10), || {
        lab.component("instruments")["status"] == "failed"
    });
    let daemon = lab.component("instruments");
    assert!(down, "not failed: {daemon:#}");
    assert_eq!(daemon["restarts"], 0, "{daemon:#}");
    let error = daemon["last_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("not restarted (restart: never)"),
        "{daemon:#}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.component("instruments")["status"], "failed");
    lab.call("library", "get_catalog", &[]).success();
}

/// A hung component looked healthy: a stopped daemon stayed "running" in
/// `ps` for ever while its clients hung. The manager now pings each ready
/// component on its stdin; one that does not answer three times in a row
/// is killed and started again, with the reason.
#[test]
fn a_stopped_daemon_is_killed_and_started_again() {
    let lab = Lab::demo();
    lab.up().success();
    let stopped = lab.pid("instruments");
    let status = Command::new("kill")
        .args(["-STOP", &stopped.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let restarted = wait_until(Duration::from_secs(60), || {
        let daemon = lab.component("instruments");
        daemon["status"] == "running"
            && daemon["pid"]
                .as_u64()
                .is_some_and(|pid| pid != u64::from(stopped))
    });
    let daemon = lab.component("instruments");
    assert!(restarted, "not restarted: {daemon:#}");
    assert_eq!(daemon["restarts"], 1, "{daemon:#}");
    let error = daemon["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("stopped answering"), "{daemon:#}");
    assert!(
        !pyrolab_test_support::process_running(stopped),
        "the stopped process was not killed"
    );
    lab.call("test.SampleService", "echo", &["back"]).success();
}

/// A daemon that does not answer because it is busy is left alone: a
/// multiplex daemon running a 22 s call cannot answer the manager's Pyro
/// ping meanwhile, but its stdin says it runs a call, so it is logged as
/// busy, not killed, and the call returns.
#[test]
fn a_busy_daemon_is_not_killed_for_not_answering() {
    let lab = Lab::demo();
    let text = fs::read_to_string(&lab.config).expect("read the lab config");
    let (before, instruments) = text.split_once("\n  instruments:\n").expect("instruments");
    let instruments = instruments.replacen("servertype: thread", "servertype: multiplex", 1);
    fs::write(
        &lab.config,
        format!("{before}\n  instruments:\n{instruments}"),
    )
    .expect("write");
    lab.up().success();
    let pid = lab.pid("instruments");
    let mut sample =
        pyrolab_host::client::Proxy::connect(&format!("PYRONAME:sample@127.0.0.1:{}", lab.ns_port))
            .expect("look up sample");
    sample.set_timeout(Some(Duration::from_secs(60)));
    let answer: String = sample
        .call("delayed_echo", ("long", 22.0))
        .expect("the long call returns");
    assert!(answer.ends_with("long"), "{answer}");
    let daemon = lab.component("instruments");
    assert_eq!(daemon["pid"], u64::from(pid), "{daemon:#}");
    assert_eq!(daemon["restarts"], 0, "{daemon:#}");
    let log = fs::read_to_string(daemon["log"].as_str().expect("a log")).expect("read the log");
    assert!(log.contains("busy: does not answer calls"), "{log}");
}

#[test]
fn reload_after_changing_one_daemon_restarts_only_that_one() {
    let lab = Lab::demo();
    lab.up().success();
    let before: Vec<u32> = ["production", "lockable", "instruments"]
        .iter()
        .map(|name| lab.pid(name))
        .collect();
    let text = fs::read_to_string(&lab.config).expect("read config");
    let changed = text.replace("The Hobbit: 3", "The Hobbit: 7");
    assert_ne!(text, changed);
    fs::write(&lab.config, changed).expect("write config");
    run_host(lab.host().args(["config", "update"]).arg(&lab.config)).success();

    let reload = run_host(lab.host().arg("reload")).success();
    assert!(
        reload.stdout.contains("restarted: daemon lockable"),
        "{reload}"
    );
    assert!(!reload.stdout.contains("instruments"), "{reload}");
    assert_eq!(
        lab.pid("production"),
        before[0],
        "the name server restarted"
    );
    assert_ne!(lab.pid("lockable"), before[1], "lockable did not restart");
    assert_eq!(lab.pid("instruments"), before[2], "instruments restarted");
    let catalog = lab.call("library", "get_catalog", &[]).success();
    assert_eq!(catalog.json()["The Hobbit"], 7, "{catalog}");

    let again = run_host(lab.host().arg("reload")).success();
    assert!(again.stdout.contains("nothing changed"), "{again}");
}

#[test]
fn up_again_after_kill_9_of_the_manager_needs_no_cleanup() {
    let lab = Lab::demo();
    lab.up().success();
    // Not an error: it says so and shows the status.
    let again = run_host(lab.host().arg("up")).success();
    assert!(again.stderr.contains("already running"), "{again}");

    let old = lab.pids();
    kill_9(lab.manager_pid());
    // Orphaned components notice and stop by themselves.
    let gone = wait_until(Duration::from_secs(10), || {
        old.iter().all(|pid| !process_running(*pid))
    });
    assert!(gone, "components outlived their manager");
    assert!(
        lab.run_dir().join("control.sock").exists(),
        "a stale socket"
    );

    let up = run_host(lab.host().arg("up")).success();
    assert!(up.stdout.contains("running"), "{up}");
    for name in ["production", "lockable", "instruments"] {
        assert_eq!(lab.component(name)["status"], "running");
    }
    lab.call("library", "get_catalog", &[]).success();
}

#[test]
fn the_control_socket_refuses_garbage_and_keeps_serving() {
    let lab = Lab::demo();
    lab.up().success();
    let socket = lab.run_dir().join("control.sock");
    let ask = |bytes: &[u8]| -> serde_json::Value {
        let mut stream = UnixStream::connect(&socket).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(bytes).expect("write");
        let mut line = String::new();
        BufReader::new(&stream)
            .read_line(&mut line)
            .expect("an answer");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
    };
    for garbage in [
        &b"hello\n"[..],
        b"{\"command\": \"format_disk\"}\n",
        b"{\"command\": \"down\"}\n",
        b"{\"command\": \"status\", \"extra\": 1}\n",
        &[0xff, 0xfe, b'\n'][..],
    ] {
        let answer = ask(garbage);
        assert_eq!(answer["ok"], false, "{answer}");
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("bad request")),
            "{answer}"
        );
    }
    let huge = vec![b'x'; 200_000];
    let answer = ask(&huge);
    assert_eq!(answer["ok"], false, "{answer}");
    // A client that connects and says nothing holds nothing up.
    let _silent = UnixStream::connect(&socket).expect("connect");
    let status = ask(b"{\"command\": \"status\"}\n");
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(lab.component("lockable")["status"], "running");
}

/// Permissions of `path` (the mode's permission bits).
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

#[test]
fn the_control_socket_refuses_another_user() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;

    let lab = Lab::demo();
    lab.up().success();
    let run_dir = lab.run_dir();
    assert_eq!(mode(&run_dir), 0o700, "the run directory is the owner's");
    assert_eq!(mode(&run_dir.join("control.sock")), 0o600);

    if !rustix_is_root() {
        eprintln!("not root: cannot run a client as another user; checked the permissions only");
        return;
    }
    const NOBODY: u32 = 65534;
    let as_nobody = || {
        let mut command = lab.host();
        command.args(["ps"]).uid(NOBODY).gid(NOBODY);
        run_host(&mut command)
    };
    // The directory keeps other users out...
    let refused = as_nobody();
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(!refused.stdout.contains("running"), "{refused}");

    // ...and were it opened up by mistake, the manager itself refuses them.
    let open = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    };
    for dir in [
        lab.sandbox.path(),
        &lab.sandbox.data_dir(),
        &lab.sandbox.plugin_dir(),
        &run_dir,
    ] {
        open(dir, 0o755);
    }
    open(&run_dir.join("control.sock"), 0o666);
    let refused = as_nobody();
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stderr.contains("permission denied: user 65534"),
        "{refused}"
    );
    open(&run_dir, 0o700);
    assert_eq!(lab.component("lockable")["status"], "running");
}

fn rustix_is_root() -> bool {
    // `id -u` rather than a libc dependency for the tests.
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn ps_shows_who_holds_a_lock() {
    let lab = Lab::demo();
    lab.up().success();
    let port = lab.ns_port;
    let mut client = Background::start(Command::new(python_with_pyro5()).args([
        "-c",
        &format!(
            "import time, Pyro5.api as p\n\
             library = p.Proxy('PYRONAME:library@127.0.0.1:{port}')\n\
             library.lock('alice')\n\
             print('locked', flush=True)\n\
             time.sleep(60)"
        ),
    ]));
    client.wait_for_line("locked", Duration::from_secs(60));
    let locked = wait_until(Duration::from_secs(5), || {
        lab.ps()["services"].as_array().is_some_and(|all| {
            all.iter()
                .any(|s| s["name"] == "library" && s["lock_holder"] == "alice")
        })
    });
    assert!(locked, "{:#}", lab.ps());
    let ps = run_host(lab.host().arg("ps")).success();
    assert!(ps.stdout.contains("alice"), "{ps}");
    // The lock ends with the client's connection.
    client.stop();
    let released = wait_until(Duration::from_secs(5), || {
        lab.ps()["services"].as_array().is_some_and(|all| {
            all.iter()
                .any(|s| s["name"] == "library" && s["lock_holder"].is_null())
        })
    });
    assert!(released, "{:#}", lab.ps());
}

#[test]
fn logs_show_select_and_follow_a_components_output() {
    let lab = Lab::demo();
    lab.up().success();
    let all = run_host(lab.host().args(["logs", "lockable"])).success();
    assert!(all.stdout.contains("[manager] started (pid"), "{all}");
    assert!(all.stdout.contains("daemon lockable listening on"), "{all}");
    assert!(all.stdout.contains("[manager] ready at"), "{all}");
    for line in all.stdout.lines() {
        assert!(
            line.starts_with("20") && line.contains('Z'),
            "unstamped: {line:?}"
        );
    }
    let last = run_host(lab.host().args(["logs", "lockable", "-n", "2"])).success();
    assert_eq!(last.stdout.lines().count(), 2, "{last}");
    let recent = run_host(lab.host().args(["logs", "production", "--since", "1h"])).success();
    assert!(
        recent.stdout.contains("name server production listening"),
        "{recent}"
    );
    let future =
        run_host(
            lab.host()
                .args(["logs", "production", "--since", "2999-01-01T00:00:00Z"]),
        )
        .success();
    assert_eq!(future.stdout, "", "{future}");
    let manager = run_host(lab.host().args(["logs", "manager"])).success();
    assert!(manager.stdout.contains("lab started"), "{manager}");
    let unknown = run_host(lab.host().args(["logs", "nonesuch"])).failure(1);
    assert!(
        unknown.stderr.contains("no component named \"nonesuch\""),
        "{unknown}"
    );
    let bad = run_host(
        lab.host()
            .args(["logs", "lockable", "--since", "yesterday-ish"]),
    )
    .failure(2);
    assert!(bad.stderr.contains("neither a time"), "{bad}");

    let mut follow = Background::start(lab.host().args(["logs", "lockable", "-f", "-n", "1"]));
    // The history (the last line) is out: from here on, it follows.
    follow.wait_for_text("", Duration::from_secs(30));
    run_host(lab.host().args(["restart", "daemon", "lockable"])).success();
    follow.wait_for_text("[manager] stopping (SIGTERM", Duration::from_secs(30));
    follow.wait_for_text("[manager] ready at", Duration::from_secs(30));
}

#[test]
fn stop_and_start_one_component() {
    let lab = Lab::demo();
    lab.up().success();
    let pid = lab.pid("instruments");
    let stop = run_host(lab.host().args(["stop", "daemon", "instruments"])).success();
    assert!(
        stop.stdout.contains("daemon instruments: stopped"),
        "{stop}"
    );
    assert!(!process_running(pid));
    assert_eq!(lab.component("instruments")["status"], "stopped");
    // Stopped on request: not restarted.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.component("instruments")["status"], "stopped");
    assert_ne!(lab.call("sample", "echo", &["x"]).code, Some(0));

    let start = run_host(lab.host().args(["start", "daemon", "instruments"])).success();
    assert!(
        start.stdout.contains("daemon instruments: running"),
        "{start}"
    );
    lab.call("sample", "echo", &["x"]).success();
    let again = run_host(lab.host().args(["start", "daemon", "instruments"])).failure(1);
    assert!(again.stderr.contains("already running"), "{again}");
    let unknown = run_host(lab.host().args(["start", "daemon", "nonesuch"])).failure(1);
    assert!(
        unknown
            .stderr
            .contains("no daemon nonesuch in the configuration"),
        "{unknown}"
    );
}

#[test]
fn foreground_up_tells_systemd_it_is_ready_and_stops_on_sigterm() {
    use std::os::unix::net::UnixDatagram;

    let lab = Lab::demo();
    run_host(lab.host().args(["config", "update"]).arg(&lab.config)).success();
    let notify_path = lab.sandbox.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).expect("bind the notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    let mut manager = Background::start(
        lab.host()
            .args(["up", "--foreground"])
            .env("NOTIFY_SOCKET", &notify_path),
    );
    let mut buffer = [0u8; 512];
    let size = notify.recv(&mut buffer).expect("a readiness notification");
    let message = String::from_utf8_lossy(&buffer[..size]).into_owned();
    assert!(
        message.starts_with("READY=1\nSTATUS=3 components running"),
        "{message:?}"
    );
    manager.wait_for_text("Components", Duration::from_secs(10));
    let pids = lab.pids();
    lab.call("library", "get_catalog", &[]).success();

    let output = manager.terminate(Duration::from_secs(30));
    assert_eq!(output.code, Some(0), "{output}");
    for pid in pids {
        assert!(!process_running(pid), "pid {pid} outlived the manager");
    }
    let size = notify.recv(&mut buffer).expect("a stopping notification");
    assert_eq!(&buffer[..size], b"STOPPING=1");
}

#[test]
fn systemd_unit_runs_up_in_the_foreground() {
    let sandbox = Sandbox::new();
    let unit = run_host(sandbox.host().arg("systemd-unit")).success();
    assert!(unit.stdout.contains("Type=notify"), "{unit}");
    let exec = unit
        .stdout
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart\n{unit}"));
    assert!(exec.ends_with(" up --foreground"), "{exec}");
    assert!(
        exec.contains(&sandbox.data_dir().display().to_string()),
        "{exec}"
    );
}

#[test]
fn up_names_the_component_and_the_reason_for_a_port_in_use_and_bad_parameters() {
    let lab = Lab::demo();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("address").port();
    let text = fs::read_to_string(&lab.config)
        .expect("read")
        .replacen(
            "    classname: LockableDaemon\n",
            &format!("    classname: LockableDaemon\n    port: {port}\n"),
            1,
        )
        .replace(
            "      address: 0.0.0.0\n      port: 9100",
            "      address: 0.0.0.0\n      port: not-a-port",
        );
    fs::write(&lab.config, text).expect("write");
    let up = lab.up().failure(1);
    assert!(up.stderr.contains("daemon lockable failed"), "{up}");
    assert!(
        up.stderr
            .contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{up}"
    );
    assert!(up.stderr.contains("daemon instruments failed"), "{up}");
    assert!(up.stderr.contains("invalid parameters"), "{up}");
    assert_eq!(lab.component("production")["status"], "running");
}

#[test]
fn up_with_an_invalid_configuration_starts_nothing_and_names_the_line() {
    let lab = Lab::demo();
    let text = fs::read_to_string(&lab.config)
        .expect("read")
        .replace("servertype: thread", "servertype: threaded");
    fs::write(&lab.config, text).expect("write");
    let up = lab.up().failure(1);
    assert!(up.stderr.contains("demo-lab.yaml:"), "{up}");
    assert!(up.stderr.contains("servertype"), "{up}");
    assert!(up.stderr.contains("nothing was started"), "{up}");
    assert!(!lab.run_dir().join("control.sock").exists());
    let none = Sandbox::new();
    let up = run_host(none.host().arg("up")).failure(1);
    assert!(up.stderr.contains("no configuration is stored"), "{up}");
}

#[test]
fn a_killed_name_server_comes_back_and_the_daemons_register_again() {
    let lab = Lab::demo();
    lab.up().success();
    kill_9(lab.pid("production"));
    let killed = Instant::now();
    // Memory storage: the restarted name server knows nothing until the
    // daemons notice and register again (they check every 2 s).
    let back = wait_until(Duration::from_secs(10), || {
        lab.call("library", "get_catalog", &[]).code == Some(0)
    });
    assert!(back, "library not reachable by name: {:#}", lab.ps());
    eprintln!("reachable by name again after {:?}", killed.elapsed());
    let status = lab.ps();
    let production = &status["components"][0];
    assert_eq!(production["name"], "production");
    assert_eq!(production["restarts"], 1, "{status:#}");
    let registered = wait_until(Duration::from_secs(10), || {
        lab.ps()["services"].as_array().is_some_and(|all| {
            all.iter()
                .all(|s| s["registered_with"] == serde_json::json!(["production"]))
        })
    });
    assert!(registered, "{:#}", lab.ps());
    let logs = run_host(lab.host().args(["logs", "lockable"])).success();
    assert!(
        logs.stdout
            .contains("name server production: registered again library"),
        "{logs}"
    );
}

/// The row of `name` in a table `ps` printed, its cells separated by
/// single spaces.
fn table_row(text: &str, name: &str) -> String {
    text.lines()
        .find(|line| line.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{text}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn registrations_with_a_name_server_that_is_down_show_in_ps_until_it_comes_up() {
    let lab = Lab::demo();
    let text = fs::read_to_string(&lab.config).expect("read").replace(
        "  nameservers: [production]\n  daemons:",
        "  nameservers: []\n  daemons:",
    );
    fs::write(&lab.config, text).expect("write");
    // The daemons serve even while their name server is down, but no
    // client can find them by name: `up` says so, one line per daemon,
    // and fails.
    let up = lab.up().failure(1);
    let port = lab.ns_port;
    let unreachable = format!(
        "production: name server unreachable at 127.0.0.1:{port}: cannot connect to 127.0.0.1:{port}: "
    );
    let lines: Vec<&str> = up
        .stderr
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    assert_eq!(lines.len(), 2, "{up}");
    for (daemon, services) in [
        (
            "instruments",
            "sample, autoconnect, test.SampleAutoconnectInstrument",
        ),
        ("lockable", "library, test.SampleService"),
    ] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("error: daemon {daemon} ")))
            .unwrap_or_else(|| panic!("no line for {daemon}: {up}"));
        assert!(
            line.starts_with(&format!(
                "error: daemon {daemon} could not register any of its services ({services}) with {unreachable}"
            )),
            "{line}"
        );
        assert!(line.contains("; the lab cannot be used by name"), "{line}");
    }
    // The lab stays up, each service marked in the table, the reason
    // under Last errors.
    assert!(up.stdout.contains("not registered with production"), "{up}");
    for service in ["library", "sample", "autoconnect"] {
        let row = table_row(&up.stdout, service);
        assert!(row.contains(" production (FAILED) "), "{row}");
        assert!(
            up.stdout.contains(&format!(
                "service {service} not registered with {unreachable}"
            )),
            "{up}"
        );
    }
    let ps = run_host(lab.host().arg("ps")).success();
    assert!(
        table_row(&ps.stdout, "sample").contains(" production (FAILED) "),
        "{ps}"
    );
    assert!(
        ps.stdout
            .contains(&format!("service sample not registered with {unreachable}")),
        "{ps}"
    );
    let status = lab.ps();
    for component in status["components"].as_array().expect("components") {
        assert_eq!(component["status"], "running", "{status:#}");
    }
    let library = status["services"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["name"] == "library"))
        .expect("library")
        .clone();
    assert_eq!(
        library["registered_with"],
        serde_json::json!([]),
        "{status:#}"
    );
    assert!(
        library["registration_errors"][0]
            .as_str()
            .is_some_and(|e| e.starts_with("production: name server unreachable")),
        "{status:#}"
    );
    assert_eq!(
        library["registration_failures"][0]["nameserver"], "production",
        "{status:#}"
    );
    assert!(
        library["registration_failures"][0]["error"]
            .as_str()
            .is_some_and(
                |e| e.starts_with(&format!("name server unreachable at 127.0.0.1:{port}: "))
            ),
        "{status:#}"
    );

    run_host(lab.host().args(["start", "nameserver", "production"])).success();
    let registered = wait_until(Duration::from_secs(10), || {
        lab.ps()["services"].as_array().is_some_and(|all| {
            all.iter().all(|s| {
                s["registered_with"] == serde_json::json!(["production"])
                    && s["registration_errors"] == serde_json::json!([])
            })
        })
    });
    assert!(registered, "{:#}", lab.ps());
    lab.call("library", "get_catalog", &[]).success();
    let ps = run_host(lab.host().arg("ps")).success();
    assert!(!ps.stdout.contains("FAILED"), "{ps}");
    assert!(!ps.stdout.contains("not registered"), "{ps}");
}

#[test]
fn a_daemon_that_registered_some_of_its_services_is_not_an_error_but_ps_marks_the_others() {
    let lab = Lab::demo();
    // A second name server, `backup`, that nothing runs: autoconnect
    // registers only there, sample there and with production; library
    // with no name server at all (not an error: it is not meant to be
    // found by name).
    let backup = pyrolab_test_support::free_port();
    let text = fs::read_to_string(&lab.config)
        .expect("read")
        .replace(
            "    storage: memory\n",
            &format!(
                "    storage: memory\n  backup:\n    host: 127.0.0.1\n    ns_port: {backup}\n"
            ),
        )
        .replace(
            "    daemon: instruments\n    nameservers: [production]\n  autoconnect:",
            "    daemon: instruments\n    nameservers: [production, backup]\n  autoconnect:",
        )
        .replace(
            "    daemon: instruments\n    nameservers: [production]\n  # What PyroLab's",
            "    daemon: instruments\n    nameservers: [backup]\n  # What PyroLab's",
        )
        .replace(
            "    daemon: lockable\n    nameservers: [production]\n",
            "    daemon: lockable\n    nameservers: []\n",
        );
    fs::write(&lab.config, &text).expect("write");
    assert_eq!(text.matches("[backup]").count(), 1, "{text}");
    assert_eq!(text.matches("[production, backup]").count(), 1, "{text}");
    let up = lab.up().success();
    assert!(!up.stderr.contains("could not register"), "{up}");
    assert!(!up.stderr.contains("error:"), "{up}");
    let unreachable = format!("name server unreachable at 127.0.0.1:{backup}: ");
    for (service, registered) in [
        ("sample", "production, backup (FAILED)"),
        ("autoconnect", "backup (FAILED)"),
        ("library", "-"),
    ] {
        let row = table_row(&up.stdout, service);
        assert!(row.contains(&format!(" {registered} ")), "{row}");
    }
    for service in ["sample", "autoconnect"] {
        assert!(
            up.stdout.contains(&format!(
                "service {service} not registered with backup: {unreachable}"
            )),
            "{up}"
        );
    }
    assert!(
        !up.stdout.contains("service library not registered"),
        "{up}"
    );
    let ps = run_host(lab.host().arg("ps")).success();
    assert!(
        table_row(&ps.stdout, "autoconnect").contains(" backup (FAILED) "),
        "{ps}"
    );
    let status = lab.ps();
    let service = |name: &str| {
        status["services"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {status:#}"))
    };
    let sample = service("sample");
    assert_eq!(sample["registered_with"], serde_json::json!(["production"]));
    assert_eq!(sample["registration_failures"][0]["nameserver"], "backup");
    assert!(
        sample["registration_failures"][0]["error"]
            .as_str()
            .is_some_and(|e| e.starts_with(&unreachable)),
        "{sample:#}"
    );
    let library = service("library");
    assert_eq!(library["registered_with"], serde_json::json!([]));
    assert_eq!(library["registration_failures"], serde_json::json!([]));
    lab.call("sample", "echo", &["by name"]).success();
}

#[test]
fn daemons_whose_name_server_failed_are_not_started() {
    let lab = Lab::demo();
    // Something else holds the name server's port: perhaps another lab's
    // name server, whose names these daemons must not take over.
    let _taken = std::net::TcpListener::bind(("127.0.0.1", lab.ns_port)).expect("hold the port");
    let up = lab.up().failure(1);
    assert!(up.stderr.contains("name server production failed"), "{up}");
    assert!(up.stderr.contains("cannot listen on 127.0.0.1"), "{up}");
    for daemon in ["lockable", "instruments"] {
        let component = lab.component(daemon);
        assert_eq!(component["status"], "failed", "{component:#}");
        assert_eq!(component["pid"], serde_json::Value::Null, "{component:#}");
        assert!(
            component["last_error"]
                .as_str()
                .is_some_and(|e| e.starts_with("not started: its name server production failed")),
            "{component:#}"
        );
    }
}

#[test]
fn reload_keeps_a_daemon_whose_new_driver_cannot_be_found_and_reports_bad_files() {
    let lab = Lab::demo();
    lab.up().success();
    let pid = lab.pid("lockable");
    let text = fs::read_to_string(&lab.config).expect("read");
    fs::write(
        &lab.config,
        text.replace("module: libservice", "module: libservise"),
    )
    .expect("write");
    run_host(lab.host().args(["config", "update"]).arg(&lab.config)).success();
    let reload = run_host(lab.host().arg("reload")).failure(1);
    assert!(
        reload.stderr.contains(
            "daemon lockable not restarted, it keeps running with its previous configuration"
        ),
        "{reload}"
    );
    assert!(reload.stderr.contains("libservise"), "{reload}");
    assert_eq!(lab.pid("lockable"), pid);
    lab.call("library", "get_catalog", &[]).success();

    // A stored configuration broken by hand: reported with its line.
    let stored = lab.sandbox.data_dir().join("config.yaml");
    let broken = fs::read_to_string(&stored)
        .expect("read")
        .replacen("ns_port:", "ns_port: [", 1);
    fs::write(&stored, broken).expect("write");
    let reload = run_host(lab.host().arg("reload")).failure(1);
    assert!(
        reload.stderr.contains("has errors; nothing was changed"),
        "{reload}"
    );
    assert!(reload.stderr.contains("config.yaml:"), "{reload}");
    assert_eq!(lab.pid("lockable"), pid);
}

#[test]
fn timeouts_out_of_range_are_refused() {
    let sandbox = Sandbox::new();
    for bad in ["1e99", "inf", "NaN", "-1", "soon"] {
        let down = run_host(sandbox.host().args(["down", &format!("--timeout={bad}")])).failure(2);
        assert!(down.stderr.contains("--timeout"), "{down}");
    }
}

/// Two hosts of one lab on this machine, each a manager with its own data
/// directory and a `manager:` section: `hosta` runs the name server and
/// daemon `instruments`; `hostb` registers its daemon `bench` with
/// hosta's name server. `tls` adds the lab's TLS (one CA, copied to
/// both) and lets only `admin` act.
struct TwoHosts {
    a: Lab,
    b: Lab,
}

impl TwoHosts {
    fn start(tls: bool) -> TwoHosts {
        let ns_port = pyrolab_test_support::free_port();
        let (a, b) = (Sandbox::new(), Sandbox::new());
        for sandbox in [&a, &b] {
            sandbox.install_plugin("sample");
        }
        let lab_tls = if tls {
            for args in [
                &["init", "--name", "lab"][..],
                &["issue", "production", "--host", "127.0.0.1"],
                &["issue", "instruments", "--host", "127.0.0.1"],
                &["issue", "bench", "--host", "127.0.0.1"],
                &["issue", "manager", "--host", "127.0.0.1"],
                &["issue", "admin", "--client"],
                &["issue", "alice", "--client"],
            ] {
                run_host(a.host().arg("tls").args(args)).success();
            }
            pyrolab_test_support::copy_tree(&a.data_dir().join("tls"), &b.data_dir().join("tls"));
            "tls: {require_client_cert: true}\n"
        } else {
            ""
        };
        let config = |sandbox: &Sandbox,
                      host: &str,
                      daemon: &str,
                      service: &str,
                      autolaunch: &str| {
            let text = format!(
                "version: '1.0'
plugin_dirs: [{plugins}]
{lab_tls}nameservers:
  production: {{host: 127.0.0.1, ns_port: {ns_port}}}
daemons:
  {daemon}: {{host: 127.0.0.1, nameservers: [production]}}
services:
  {service}: {{module: sample, classname: SampleService, daemon: {daemon}, nameservers: [production]}}
manager: {{name: {host}, host: 127.0.0.1, access: {{act: [admin]}}}}
autolaunch: {autolaunch}
{monitor}",
                monitor = if host == "hosta" && !tls {
                    "monitor: {host: 127.0.0.1, port: 0, polling: 0.2}\n"
                } else {
                    ""
                },
                plugins = sandbox.plugin_dir().display(),
            );
            let path = sandbox.path().join("lab.yaml");
            fs::write(&path, text).expect("write lab.yaml");
            path
        };
        let a_config = config(
            &a,
            "hosta",
            "instruments",
            "sample_a",
            "{nameservers: [production], daemons: [instruments]}",
        );
        let b_config = config(&b, "hostb", "bench", "sample_b", "{daemons: [bench]}");
        let hosts = TwoHosts {
            a: Lab {
                sandbox: a,
                ns_port,
                config: a_config,
            },
            b: Lab {
                sandbox: b,
                ns_port,
                config: b_config,
            },
        };
        let admin = hosts.credentials("admin");
        run_host(
            hosts
                .with(&admin, hosts.a.host())
                .arg("up")
                .arg("--config")
                .arg(&hosts.a.config),
        )
        .success();
        run_host(
            hosts
                .with(&admin, hosts.b.host())
                .arg("up")
                .arg("--config")
                .arg(&hosts.b.config),
        )
        .success();
        // Both managers found by name.
        let found = wait_until(Duration::from_secs(30), || {
            hosts.lab_status(&admin)["hosts"]
                .as_array()
                .is_some_and(|h| h.len() == 2)
        });
        assert!(found, "{:#}", hosts.lab_status(&admin));
        hosts
    }

    /// `PYRO_SSL_*` for `identity`, when the lab has TLS.
    fn credentials(&self, identity: &str) -> Vec<(String, String)> {
        let tls = self.a.sandbox.data_dir().join("tls");
        if !tls.join("ca.crt").is_file() {
            return Vec::new();
        }
        vec![
            ("PYRO_SSL".into(), "1".into()),
            (
                "PYRO_SSL_CACERTS".into(),
                tls.join("ca.crt").display().to_string(),
            ),
            (
                "PYRO_SSL_CLIENTCERT".into(),
                tls.join(format!("{identity}.crt")).display().to_string(),
            ),
            (
                "PYRO_SSL_CLIENTKEY".into(),
                tls.join(format!("{identity}.key")).display().to_string(),
            ),
        ]
    }

    fn with(&self, credentials: &[(String, String)], mut command: Command) -> Command {
        for (key, value) in credentials {
            command.env(key, value);
        }
        command
    }

    /// `ps --lab --json` from host a.
    fn lab_status(&self, credentials: &[(String, String)]) -> serde_json::Value {
        run_host(
            self.with(credentials, self.a.host())
                .args(["ps", "--lab", "--json"]),
        )
        .success()
        .json()
    }
}

fn host<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["hosts"]
        .as_array()
        .and_then(|hosts| hosts.iter().find(|h| h["host"] == name))
        .unwrap_or_else(|| panic!("no host {name} in {status:#}"))
}

fn component<'a>(host: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    host["status"]["components"]
        .as_array()
        .and_then(|all| all.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no component {name} in {host:#}"))
}

#[test]
fn one_host_sees_and_restarts_another_hosts_components_and_marks_a_dead_manager_unreachable() {
    let hosts = TwoHosts::start(false);
    let status = hosts.lab_status(&[]);
    let (a, b) = (host(&status, "hosta"), host(&status, "hostb"));
    assert_eq!(a["reachable"], true);
    assert_eq!(component(a, "instruments")["status"], "running");
    assert_eq!(component(b, "bench")["status"], "running", "{b:#}");
    let table = run_host(hosts.a.host().args(["ps", "--lab"])).success();
    assert!(table.stdout.contains("hostb/bench"), "{table}");

    // Restarted from host a by hostb's manager (on this machine: a
    // loopback caller may act without TLS).
    let before = component(b, "bench")["pid"].clone();
    let restarted = run_host(hosts.a.host().args(["restart", "daemon", "hostb/bench"])).success();
    assert!(
        restarted
            .stdout
            .starts_with("daemon hostb/bench: running (pid "),
        "{restarted}"
    );
    let b = hosts.lab_status(&[]);
    let after = &component(host(&b, "hostb"), "bench")["pid"];
    assert_ne!(*after, before, "a new process");
    let logs = run_host(hosts.a.host().args(["logs", "hostb/bench", "-n", "50"])).success();
    assert!(
        logs.stdout.contains("[manager] stopping (SIGTERM"),
        "{logs}"
    );
    assert!(logs.stdout.contains("[manager] ready at"), "{logs}");
    let unknown = run_host(hosts.a.host().args(["logs", "hostc/bench"])).failure(1);
    assert!(
        unknown.stderr.contains("no host \"hostc\" in the lab"),
        "{unknown}"
    );

    // Host b's manager killed: host a and its services go on; b is shown
    // unreachable.
    let manager_b = hosts.b.manager_pid();
    kill_9(manager_b);
    assert!(wait_until(Duration::from_secs(10), || !process_running(
        manager_b
    )));
    let status = hosts.lab_status(&[]);
    let b = host(&status, "hostb");
    assert_eq!(b["reachable"], false, "{b:#}");
    assert!(b["error"].as_str().is_some_and(|e| !e.is_empty()), "{b:#}");
    assert_eq!(
        component(host(&status, "hosta"), "instruments")["status"],
        "running"
    );
    let called = run_host(hosts.a.host().args(["call", "sample_a", "echo", "still"])).success();
    assert!(called.stdout.contains("SERVER RECEIVED: still"), "{called}");
}

#[test]
fn with_tls_only_an_identity_with_the_act_right_restarts_another_hosts_component() {
    let hosts = TwoHosts::start(true);
    let alice = hosts.credentials("alice");
    let admin = hosts.credentials("admin");
    // Reading is anyone's (with a lab certificate).
    let status = hosts.lab_status(&alice);
    assert_eq!(
        component(host(&status, "hostb"), "bench")["status"],
        "running"
    );
    let refused =
        run_host(
            hosts
                .with(&alice, hosts.a.host())
                .args(["restart", "daemon", "hostb/bench"]),
        )
        .failure(1);
    assert!(
        refused.stderr.contains("access denied: \"alice\" may not restart a component on host hostb (it lacks the `act` right)"),
        "{refused}"
    );
    let restarted =
        run_host(
            hosts
                .with(&admin, hosts.a.host())
                .args(["restart", "daemon", "hostb/bench"]),
        )
        .success();
    assert!(
        restarted.stdout.starts_with("daemon hostb/bench: running"),
        "{restarted}"
    );
    let log = fs::read_to_string(hosts.b.sandbox.data_dir().join("logs/manager.log")).unwrap();
    assert!(log.contains("refused: access denied: \"alice\""), "{log}");
}

/// The web monitor's URL on host a.
fn monitor_url(lab: &Lab) -> String {
    lab.ps()["manager"]["monitor"]
        .as_str()
        .expect("host a runs the monitor")
        .to_owned()
}

fn get_json(url: &str) -> serde_json::Value {
    let (status, body) = pyrolab_test_support::browser::http_get(url);
    assert_eq!(status, 200, "{url}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

#[test]
fn the_monitor_shows_every_host_its_components_configuration_and_logs_and_a_host_gone() {
    let hosts = TwoHosts::start(false);
    let url = monitor_url(&hosts.a);
    let seen = wait_until(Duration::from_secs(20), || {
        get_json(&format!("{url}api/hosts"))["lab"]["hosts_reachable"] == 2
    });
    assert!(seen, "{:#}", get_json(&format!("{url}api/hosts")));
    let lab = get_json(&format!("{url}api/hosts"));
    assert_eq!(lab["lab"]["configured"], 3, "{lab:#}");
    assert_eq!(lab["lab"]["configured_running"], 3, "{lab:#}");
    let config = get_json(&format!("{url}api/hosts/config?host=hostb"));
    assert!(
        config["config"]
            .as_str()
            .is_some_and(|c| c.contains("bench:")),
        "{config:#}"
    );
    let logs = get_json(&format!(
        "{url}api/logs?host=hostb&component=bench&lines=20"
    ));
    assert!(
        logs["lines"].as_array().is_some_and(|l| l
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.contains("[manager] ready at")))),
        "{logs:#}"
    );

    let mut browser = pyrolab_test_support::browser::Browser::start(1280, 1000);
    browser.open(&url);
    browser.wait_for_text(
        "both hosts and their components",
        Duration::from_secs(20),
        |text| {
            text.contains("2 of 2 hosts answer")
                && text.contains("3 of 3 configured components run")
                && text.contains("hostb/bench")
                && text.contains("hosta/instruments")
        },
    );
    browser.eval("document.querySelector('tr[data-host=\"hostb\"] button').click()");
    browser.wait_for_text("host b's configuration", Duration::from_secs(10), |text| {
        text.contains("Configuration: hostb") && text.contains("sample_b:")
    });

    // Host b's manager killed: marked unreachable, with since when, at the
    // next look (polling 0.2 s; a refused connection answers at once, a
    // silent host within 3 s).
    let manager_b = hosts.b.manager_pid();
    let killed = Instant::now();
    kill_9(manager_b);
    let marked = wait_until(Duration::from_secs(10), || {
        get_json(&format!("{url}api/hosts"))["hosts"]
            .as_array()
            .and_then(|h| h.iter().find(|h| h["host"] == "hostb").cloned())
            .is_some_and(|b| b["reachable"] == false && b["unreachable_since"].is_string())
    });
    assert!(marked, "{:#}", get_json(&format!("{url}api/hosts")));
    assert!(
        killed.elapsed() < Duration::from_secs(5),
        "marked after {:?}",
        killed.elapsed()
    );
    browser.wait_for_text("host b unreachable", Duration::from_secs(10), |text| {
        text.contains("1 of 2 hosts answer")
            && text.contains("2 of 3 configured components run")
            && text.contains("unreachable since")
    });
    let artifacts = pyrolab_test_support::target_dir().join("test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("artifacts folder");
    browser.screenshot(&artifacts.join("monitor-hosts.png"));
}
