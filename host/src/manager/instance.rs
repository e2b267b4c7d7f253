//! One manager per data directory, and cleaning up after one that was
//! killed.
//!
//! The manager holds an exclusive `flock` on `run/manager.pid` (which also
//! holds its pid) for as long as it lives. The kernel drops the lock when
//! the process dies however it dies, so a stale pid file never blocks a new
//! manager; a lock that is held always means a live manager.
//!
//! The pids of the manager's children are kept in `run/children.json`. A
//! child notices its manager's death (its stdin pipe closes) and shuts
//! down by itself; a new manager still waits for the old children to be
//! gone, and kills any that linger, before starting its own, so that the
//! old ones neither hold the ports nor undo the new ones' registrations.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};

use crate::data_dir::DataDir;
use crate::lab::status::Kind;

/// The held lock; dropping it releases it.
pub struct InstanceLock {
    _file: File,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another manager holds it.
    #[error(
        "a manager is already running for {data_dir} (pid {pid}); see `pyrolab-host ps`, or stop it with `pyrolab-host down`"
    )]
    Running {
        /// The data directory.
        data_dir: String,
        /// The running manager's pid, as it wrote it.
        pid: String,
    },
    /// The file could not be opened or locked.
    #[error("cannot lock {path}: {cause}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// What went wrong.
        cause: io::Error,
    },
}

/// `run/manager.pid`.
fn lock_path(data_dir: &DataDir) -> PathBuf {
    data_dir.run_dir().join("manager.pid")
}

/// Creates the run directory, readable by its owner only.
pub fn create_run_dir(data_dir: &DataDir) -> io::Result<PathBuf> {
    let dir = data_dir.run_dir();
    crate::data_dir::create_private_dir(&dir)?;
    crate::data_dir::make_private_dir(&dir)?;
    crate::data_dir::make_private_dir(data_dir.root())?;
    Ok(dir)
}

impl InstanceLock {
    /// Takes the lock and writes our pid into it.
    pub fn acquire(data_dir: &DataDir) -> Result<InstanceLock, LockError> {
        let path = lock_path(data_dir);
        let io_error = |cause| LockError::Io {
            path: path.clone(),
            cause,
        };
        create_run_dir(data_dir).map_err(io_error)?;
        let mut file = open(&path).map_err(io_error)?;
        if let Err(err) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if err == rustix::io::Errno::WOULDBLOCK {
                return Err(LockError::Running {
                    data_dir: data_dir.root().display().to_string(),
                    pid: read_pid(&mut file),
                });
            }
            return Err(io_error(err.into()));
        }
        file.set_len(0).map_err(io_error)?;
        file.rewind().map_err(io_error)?;
        writeln!(file, "{}", std::process::id()).map_err(io_error)?;
        Ok(InstanceLock { _file: file })
    }

    /// The pid of the manager holding the lock, if one does.
    pub fn holder(data_dir: &DataDir) -> Option<String> {
        let mut file = File::open(lock_path(data_dir)).ok()?;
        flock(&file, FlockOperation::NonBlockingLockShared).err()?;
        // A manager that has just taken the lock writes its pid a moment
        // later.
        for _ in 0..20 {
            let pid = read_pid(&mut file);
            if pid != "unknown" {
                return Some(pid);
            }
            std::thread::sleep(Duration::from_millis(5));
            let _ = file.rewind();
        }
        Some("unknown".to_owned())
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn read_pid(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    match text.trim() {
        "" => "unknown".to_owned(),
        pid => pid.to_owned(),
    }
}

/// A child the manager started, as recorded in `run/children.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ChildRecord {
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// A command's command line (our own components are told by their
    /// arguments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_line: Option<Vec<String>>,
}

fn children_path(data_dir: &DataDir) -> PathBuf {
    data_dir.run_dir().join("children.json")
}

/// Records the running children (written beside and renamed over, so a
/// reader never sees half a file).
pub fn record_children(data_dir: &DataDir, children: &[ChildRecord]) {
    let path = children_path(data_dir);
    let temporary = path.with_extension("json.tmp");
    let written = serde_json::to_vec(children)
        .map_err(io::Error::other)
        .and_then(|json| fs::write(&temporary, json))
        .and_then(|()| fs::rename(&temporary, &path));
    if let Err(err) = written {
        tracing::warn!(
            "cannot record the children's pids in {}: {err}",
            path.display()
        );
    }
}

/// Forgets the recorded children (after a clean shutdown).
pub fn forget_children(data_dir: &DataDir) {
    let _ = fs::remove_file(children_path(data_dir));
}

/// How long the children of a killed manager get to shut down by
/// themselves before they are killed.
const STALE_GRACE: Duration = Duration::from_secs(10);

/// Waits for the children a killed manager left behind to exit, and kills
/// any that do not within [`STALE_GRACE`].
pub fn clean_up_stale_children(data_dir: &DataDir) {
    let Ok(text) = fs::read(children_path(data_dir)) else {
        return;
    };
    let records: Vec<ChildRecord> = serde_json::from_slice(&text).unwrap_or_default();
    let mut left: Vec<ChildRecord> = records
        .into_iter()
        .filter(|child| is_our_child(child, data_dir))
        .collect();
    if left.is_empty() {
        forget_children(data_dir);
        return;
    }
    tracing::warn!(
        "the previous manager did not stop cleanly; waiting for its {} children to exit",
        left.len()
    );
    // A command has no stdin to tell it its manager died: it is asked to
    // stop now, with the same grace as the others.
    for command in left.iter().filter(|child| child.command_line.is_some()) {
        super::process::kill(command.pid, super::process::Signal::Term);
    }
    let deadline = Instant::now() + STALE_GRACE;
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        left.retain(|child| is_our_child(child, data_dir));
    }
    for child in &left {
        tracing::warn!(
            "{} {} (pid {}) outlived its manager; killing it",
            child.kind.describe(),
            child.name,
            child.pid
        );
        super::process::kill(child.pid, super::process::Signal::Kill);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while left.iter().any(|c| is_our_child(c, data_dir)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    forget_children(data_dir);
}

/// Whether `child` is still a live component process of this data
/// directory (not a zombie, and not an unrelated process that reused the
/// pid): ours run with `--supervised` and the data directory among their
/// arguments; a command with its recorded command line.
#[cfg(target_os = "linux")]
fn is_our_child(child: &ChildRecord, data_dir: &DataDir) -> bool {
    let Ok(cmdline) = fs::read(format!("/proc/{}/cmdline", child.pid)) else {
        return false;
    };
    let arguments: Vec<&[u8]> = cmdline
        .strip_suffix(&[0])
        .unwrap_or(&cmdline)
        .split(|b| *b == 0)
        .collect();
    if let Some(command_line) = &child.command_line {
        return !cmdline.is_empty()
            && arguments.len() == command_line.len()
            && arguments
                .iter()
                .zip(command_line)
                .all(|(a, b)| *a == b.as_bytes());
    }
    let root = data_dir.root().as_os_str().as_encoded_bytes();
    arguments.contains(&b"--supervised".as_slice()) && arguments.contains(&root)
}

/// Elsewhere there is no cheap way to tell a reused pid apart: the
/// children stop by themselves when their manager dies.
#[cfg(not(target_os = "linux"))]
fn is_our_child(_child: &ChildRecord, _data_dir: &DataDir) -> bool {
    false
}
