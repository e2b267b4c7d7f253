//! Support for the end-to-end tests: where the built binary and plugin
//! libraries are, a temporary plugin directory per test, running the real
//! `pyrolab-host` with a timeout, and building driver crates outside the
//! workspace the way a third party would.
//!
//! Every test gets its own temporary data directory and plugin directory,
//! and runs the binary with the user's `PYROLAB_*` variables removed.

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
const PLUGIN_PACKAGES: &[&str] = &["pyrolab-sample", "libservice", "faulty", "not-a-plugin"];

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

    /// A `pyrolab-host` command with this sandbox's data and plugin
    /// directories and a clean environment.
    pub fn host(&self) -> Command {
        let mut command = Command::new(host_binary());
        command
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--plugin-dir")
            .arg(self.plugin_dir());
        for var in [
            "PYROLAB_HOME",
            "PYROLAB_PLUGIN_PATH",
            "PYROLAB_LOG",
            "RUST_LOG",
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
