//! Support for the end-to-end tests: where the built binary and plugin
//! libraries are, a temporary plugin directory per test, running the real
//! `pyrolab-host` with a timeout, and building driver crates outside the
//! workspace the way a third party would.
//!
//! Every test gets its own temporary data directory and plugin directory,
//! and runs the binary with the user's `PYROLAB_*` variables removed.

#[cfg(target_os = "linux")]
pub mod browser;
#[cfg(target_os = "linux")]
pub mod managed_lab;
#[cfg(target_os = "linux")]
pub mod postgres;
#[cfg(target_os = "linux")]
pub mod pty_laser;
pub mod python_peers;

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// How long one run of `pyrolab-host` may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// How long building a driver crate may take (a cold build compiles
/// abi_stable and serde on a 2-core machine).
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the repository")
        .to_owned()
}

/// The cargo profile directory the tests were built into (`target/debug`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test>-<hash>
    exe.parent()
        .and_then(Path::parent)
        .expect("test executables live in <profile>/deps")
        .to_owned()
}

/// The target directory (`target`).
pub fn target_dir() -> PathBuf {
    profile_dir()
        .parent()
        .expect("the profile dir is inside the target dir")
        .to_owned()
}

/// The file name Cargo gives a cdylib named `lib_name` on this platform.
pub fn library_file_name(lib_name: &str) -> String {
    if cfg!(target_os = "windows") {
        format!("{lib_name}.dll")
    } else if cfg!(target_os = "macos") {
        format!("lib{lib_name}.dylib")
    } else {
        format!("lib{lib_name}.so")
    }
}

/// The workspace packages whose libraries the tests load, built by
/// [`built_library`].
const PLUGIN_PACKAGES: &[&str] = &[
    "pyrolab-sample",
    "libservice",
    "faulty",
    "not-a-plugin",
    "tsl550",
    "keysight",
    "smcv100b",
    "rohdeschwarz",
    "ppcl55x",
    "kdc101",
    "pyro5-test-objects",
];

/// A workspace plugin library, freshly built.
///
/// `cargo test` builds a dependency's library only as an rlib, never the
/// `cdylib` the host loads, so the first call in each test process runs
/// `cargo build` for the plugin packages (a quick no-op when they are up to
/// date). This keeps `cargo test --workspace` self-sufficient and the
/// libraries in step with their sources.
pub fn built_library(lib_name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(build_workspace_plugins);
    let path = profile_dir().join(library_file_name(lib_name));
    assert!(
        path.is_file(),
        "{} is missing after building the plugin packages",
        path.display()
    );
    path
}

fn build_workspace_plugins() {
    let profile = match profile_dir().file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_owned(),
        Some(other) => other.to_owned(),
    };
    let mut command = cargo();
    command
        .current_dir(repo_root())
        .args(["build", "--quiet", "--lib", "--profile", &profile])
        .env("CARGO_TARGET_DIR", target_dir());
    for package in PLUGIN_PACKAGES {
        command.args(["-p", package]);
    }
    run(&mut command, BUILD_TIMEOUT).success();
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The `pyrolab-host` binary.
pub fn host_binary() -> PathBuf {
    let name = format!("pyrolab-host{}", std::env::consts::EXE_SUFFIX);
    let path = profile_dir().join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// A test's private world: a data directory and a plugin directory, both
/// temporary.
pub struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    /// A new, empty sandbox.
    pub fn new() -> Self {
        Sandbox {
            root: tempfile::Builder::new()
                .prefix("pyrolab-e2e-")
                .tempdir()
                .expect("create a temporary directory"),
        }
    }

    /// The sandbox root.
    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// The data directory handed to `--data-dir`.
    pub fn data_dir(&self) -> PathBuf {
        let dir = self.root.path().join("data");
        fs::create_dir_all(&dir).expect("create data dir");
        dir
    }

    /// The plugin directory handed to `--plugin-dir`.
    pub fn plugin_dir(&self) -> PathBuf {
        let dir = self.root.path().join("plugins");
        fs::create_dir_all(&dir).expect("create plugin dir");
        dir
    }

    /// Copies a built workspace library into the plugin directory (as a
    /// user drops a driver file in) and returns its new path.
    pub fn install_plugin(&self, lib_name: &str) -> PathBuf {
        self.install_file(&built_library(lib_name))
    }

    /// Copies any file into the plugin directory.
    pub fn install_file(&self, file: &Path) -> PathBuf {
        let target = self
            .plugin_dir()
            .join(file.file_name().expect("a file name"));
        fs::copy(file, &target).expect("copy plugin");
        target
    }

    /// What the binary takes for the system plugin directory
    /// (`PYROLAB_SYSTEM_PLUGIN_DIR`): a folder of the sandbox, not created
    /// until a test puts a driver there, so that what is installed in
    /// /usr/lib/pyrolab-host/plugins never changes a test's outcome.
    pub fn system_plugin_dir(&self) -> PathBuf {
        self.root.path().join("system-plugins")
    }

    /// A `pyrolab-host` command with this sandbox's data and plugin
    /// directories and a clean environment.
    pub fn host(&self) -> Command {
        let mut command = Command::new(host_binary());
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--plugin-dir")
            .arg(self.plugin_dir())
            .env("PYROLAB_SYSTEM_PLUGIN_DIR", self.system_plugin_dir());
        for var in [
            "PYROLAB_HOME",
            "PYROLAB_DATA_DIR",
            "PYROLAB_PLUGIN_PATH",
            "PYROLAB_LOG",
            "RUST_LOG",
            "PYRO_NS_HOST",
            "PYRO_NS_PORT",
            "PYRO_SERIALIZER",
            "PYRO_SSL",
            "PYRO_SSL_CACERTS",
            "PYRO_SSL_CLIENTCERT",
            "PYRO_SSL_CLIENTKEY",
        ] {
            command.env_remove(var);
        }
        command
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new()
    }
}

/// A finished command: what it printed and how it exited.
pub struct Output {
    /// The command line, for failure reports.
    pub command: String,
    /// Exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nexit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

impl Output {
    /// Asserts the command succeeded, printing everything if not.
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "command failed\n{self}");
        self
    }

    /// Asserts the command failed with `code`, printing everything if not.
    #[track_caller]
    pub fn failure(self, code: i32) -> Self {
        assert_eq!(self.code, Some(code), "expected exit code {code}\n{self}");
        self
    }

    /// Standard output parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON: {err}\n{self}"))
    }
}

/// Runs `command` to completion, killing it and failing the test if it takes
/// longer than `timeout`.
pub fn run(command: &mut Command, timeout: Duration) -> Output {
    let description = describe(command);
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {description}: {err}"));
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_with_deadline(&mut child, timeout);
    let output = Output {
        command: description,
        code: status.and_then(|s| s.code()),
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    };
    assert!(status.is_some(), "timed out after {timeout:?}\n{output}");
    output
}

/// Runs `pyrolab-host` with the default timeout.
pub fn run_host(command: &mut Command) -> Output {
    run(command, COMMAND_TIMEOUT)
}

fn drain(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn wait_with_deadline(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&shell_quote(arg));
    }
    text
}

fn shell_quote(arg: &OsStr) -> String {
    let arg = arg.to_string_lossy();
    if arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:".contains(c))
    {
        arg.into_owned()
    } else {
        format!("'{}'", arg.replace('\'', "'\\''"))
    }
}

/// Builds a driver crate that lives outside the workspace, as a third party
/// would, and returns the built library.
///
/// All such builds share one target directory under the workspace's, so
/// their common dependencies are compiled once per machine, and the
/// workspace's `Cargo.lock` is copied in so they use the same versions.
pub fn build_external_crate(crate_dir: &Path, lib_name: &str) -> PathBuf {
    let lock = repo_root().join("Cargo.lock");
    if lock.is_file() && !crate_dir.join("Cargo.lock").exists() {
        fs::copy(&lock, crate_dir.join("Cargo.lock")).expect("copy Cargo.lock");
    }
    let target = target_dir().join("external-driver-builds");
    let mut command = cargo();
    command
        .current_dir(crate_dir)
        .args(["build", "--quiet", "--lib"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET");
    run(&mut command, BUILD_TIMEOUT).success();
    let library = target.join("debug").join(library_file_name(lib_name));
    assert!(library.is_file(), "{} was not built", library.display());
    library
}

/// Copies a directory tree, skipping `target` directories.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create directory");
    for entry in fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&path, &dest);
            }
        } else {
            fs::copy(&path, &dest).expect("copy file");
        }
    }
}

/// How long creating the Python environment may take (downloads from PyPI).
pub const PYTHON_SETUP_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// A Python interpreter with the pinned Pyro5 client
/// (`tests/python/requirements.txt`) installed, in a virtual environment
/// under the target directory, created on first use. Python being absent is
/// a test failure with instructions, never a silent skip.
pub fn python_with_pyro5() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(create_python_environment).clone()
}

fn create_python_environment() -> PathBuf {
    let venv = target_dir().join("python-venv");
    let python = if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    };
    let requirements = repo_root().join("tests/python/requirements.txt");
    let wanted = fs::read_to_string(&requirements).expect("read tests/python/requirements.txt");
    let stamp = venv.join("requirements.installed");
    // Test binaries run in parallel processes: one creates, the others wait.
    let _lock = DirLock::acquire(&target_dir().join("python-venv.lock"), PYTHON_SETUP_TIMEOUT);
    if python.is_file() && fs::read_to_string(&stamp).is_ok_and(|done| done == wanted) {
        return python;
    }
    let system_python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    let mut create = Command::new(&system_python);
    create.arg("-m").arg("venv").arg("--clear").arg(&venv);
    let created = run(&mut create, PYTHON_SETUP_TIMEOUT);
    assert_eq!(
        created.code,
        Some(0),
        "the Python interop tests need Python 3 with venv (install python3 and python3-venv, or set PYTHON)\n{created}"
    );
    let mut install = Command::new(&python);
    install
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements);
    run(&mut install, PYTHON_SETUP_TIMEOUT).success();
    fs::write(&stamp, wanted).expect("write the install stamp");
    python
}

/// A lock between processes: a directory that exists while it is held.
struct DirLock {
    path: PathBuf,
}

impl DirLock {
    fn acquire(path: &Path, timeout: Duration) -> DirLock {
        let deadline = Instant::now() + timeout;
        loop {
            match fs::create_dir(path) {
                Ok(()) => {
                    return DirLock {
                        path: path.to_owned(),
                    };
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock older than the timeout was left by a killed run.
                    let stale = fs::metadata(path)
                        .and_then(|m| m.modified())
                        .is_ok_and(|at| at.elapsed().unwrap_or_default() > timeout);
                    if stale {
                        let _ = fs::remove_dir(path);
                    }
                    assert!(
                        Instant::now() < deadline,
                        "timed out waiting for {}",
                        path.display()
                    );
                    thread::sleep(Duration::from_millis(100));
                }
                Err(err) => panic!("cannot create {}: {err}", path.display()),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = fs::remove_dir(&self.path);
    }
}

/// A `pyrolab-host` process running in the background (a daemon), killed
/// when dropped. Its stdout lines are collected as they come.
pub struct Background {
    child: Child,
    /// The child's stdin, when the test holds it open (some peers run
    /// until it closes).
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
    /// Lines `wait_for_text` has looked past.
    text_seen: usize,
    stderr: thread::JoinHandle<String>,
    command: String,
}

impl Background {
    /// Starts `command` with piped output.
    pub fn start(command: &mut Command) -> Background {
        Background::spawn(command.stdin(Stdio::null()))
    }

    /// Starts `command` with piped output and a stdin pipe that stays open
    /// until [`Background::close_stdin`] or the drop.
    pub fn start_holding_stdin(command: &mut Command) -> Background {
        let mut background = Background::spawn(command.stdin(Stdio::piped()));
        background.stdin = background.child.stdin.take();
        background
    }

    /// Closes the child's stdin (a peer that runs until then stops).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn spawn(command: &mut Command) -> Background {
        let description = describe(command);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {description}: {err}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = std::sync::mpsc::channel();
        thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = drain(child.stderr.take().expect("piped stderr"));
        Background {
            child,
            stdin: None,
            lines,
            seen: Vec::new(),
            text_seen: 0,
            stderr,
            command: description,
        }
    }

    /// Waits for a stdout line starting with `prefix` and returns it.
    #[track_caller]
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.seen.iter().find(|l| l.starts_with(prefix)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line starting with {prefix:?} within {timeout:?}\ncommand: {}\nstdout so far: {:#?}",
                        self.command, self.seen
                    );
                }
            }
        }
    }

    /// Waits for a stdout line containing `text`, after the line the
    /// previous `wait_for_text` matched, and returns it.
    #[track_caller]
    pub fn wait_for_text(&mut self, text: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(offset) = self.seen[self.text_seen..]
                .iter()
                .position(|l| l.contains(text))
            {
                self.text_seen += offset + 1;
                return self.seen[self.text_seen - 1].clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    panic!(
                        "no line containing {text:?} within {timeout:?}\ncommand: {}\nstdout so far: {:#?}",
                        self.command, self.seen
                    );
                }
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit; returns the output.
    #[cfg(unix)]
    pub fn interrupt(self, timeout: Duration) -> Output {
        self.signal("INT", timeout)
    }

    /// Sends SIGTERM (as a service manager stops a process) and waits for
    /// the process to exit.
    #[cfg(unix)]
    pub fn terminate(self, timeout: Duration) -> Output {
        self.signal("TERM", timeout)
    }

    #[cfg(unix)]
    fn signal(mut self, signal: &str, timeout: Duration) -> Output {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
        let status = wait_with_deadline(&mut self.child, timeout);
        self.finish(status)
    }

    /// Kills the process and returns what it printed (for failure reports).
    pub fn stop(mut self) -> Output {
        let _ = self.child.kill();
        let status = self.child.wait().ok();
        self.finish(status)
    }

    fn finish(mut self, status: Option<std::process::ExitStatus>) -> Output {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            self.seen.push(line);
        }
        let stderr = std::mem::replace(&mut self.stderr, thread::spawn(String::new));
        Output {
            command: self.command.clone(),
            code: status.and_then(|s| s.code()),
            stdout: self.seen.join("\n"),
            stderr: stderr.join().unwrap_or_default(),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A launch configuration for one daemon `lab` on `127.0.0.1`, any port,
/// serving the bundled drivers (installed into the sandbox's plugin
/// directory): `library` (session), `sample` (single), `faulty` (single),
/// and `faulty` again as `counter_single`, `counter_session` and
/// `counter_percall` for instance-mode tests. `extra` is appended to the
/// daemon's settings (e.g. `"    max_connections: 1\n"`).
pub fn lab_config(sandbox: &Sandbox, servertype: &str, extra: &str) -> PathBuf {
    for lib in ["sample", "libservice", "faulty"] {
        sandbox.install_plugin(lib);
    }
    let mut text = format!(
        "version: '1.0'
plugin_dirs: [{plugins}]
daemons:
  lab:
    host: 127.0.0.1
    port: 0
    servertype: {servertype}
{extra}services:
  library: {{module: libservice, classname: LibraryCatalog, instancemode: session, daemon: lab}}
  sample: {{module: sample, classname: SampleService, instancemode: single, daemon: lab}}
  faulty: {{module: faulty, classname: Faulty, parameters: {{port: COM1}}, instancemode: single, daemon: lab}}
",
        plugins = sandbox.plugin_dir().display()
    );
    for mode in ["single", "session", "percall"] {
        text.push_str(&format!(
            "  counter_{mode}: {{module: faulty, classname: Faulty, parameters: {{port: COM1}}, instancemode: {mode}, daemon: lab}}\n"
        ));
    }
    let path = sandbox.path().join("lab.yaml");
    fs::write(&path, text).expect("write lab.yaml");
    path
}

/// Starts `pyrolab-host run daemon lab --config CONFIG` and returns it with
/// the `host:port` it listens on.
pub fn start_lab_daemon(sandbox: &Sandbox, config: &Path) -> (Background, String) {
    let mut daemon = Background::start(
        sandbox
            .host()
            .args(["run", "daemon", "lab", "--config"])
            .arg(config),
    );
    let line = daemon.wait_for_line("daemon lab listening on ", Duration::from_secs(30));
    let location = line.rsplit(' ').next().expect("a location").to_owned();
    (daemon, location)
}

/// A free TCP port on loopback, for a component that must be told its port
/// in advance (a name server its daemons register with): bound to port 0,
/// then released.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind a free port")
        .port()
}

/// Whether process `pid` is running: it exists and is not a zombie (an
/// exited process its parent has not yet reaped).
#[cfg(target_os = "linux")]
pub fn process_running(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes;
/// returns whether it held.
pub fn wait_until(timeout: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}
