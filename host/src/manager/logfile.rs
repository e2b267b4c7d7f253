//! Component and manager logs: one file per component in
//! `<data-dir>/logs/`, each line timestamped (RFC 3339, UTC), rotated by
//! size (`NAME.log` becomes `NAME.log.1`, `.1` becomes `.2`, ... up to
//! [`KEEP`] old files), readable while the component runs.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// A log file grows to this size before it is rotated.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated files kept besides the current one.
pub const KEEP: usize = 5;

/// An open log file, rotated when it outgrows its limit.
pub struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
}

/// A log file several threads write to (a component's stdout and stderr
/// readers, and the manager's notes about it).
pub type SharedLog = Arc<Mutex<LogFile>>;

impl LogFile {
    /// Opens (creating or appending to) the log at `path`.
    pub fn open(path: &Path) -> io::Result<LogFile> {
        LogFile::with_limit(path, MAX_BYTES)
    }

    /// Opens the log at `path`, rotating it at `max_bytes`.
    pub fn with_limit(path: &Path, max_bytes: u64) -> io::Result<LogFile> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path: path.to_owned(),
            file,
            size,
            max_bytes,
        })
    }

    /// Opens the log for sharing between threads.
    pub fn shared(path: &Path) -> io::Result<SharedLog> {
        Ok(Arc::new(Mutex::new(LogFile::open(path)?)))
    }

    /// Appends `text` as one line, stamped with the current time.
    pub fn line(&mut self, text: &str) {
        let stamp = humantime::format_rfc3339_millis(SystemTime::now());
        let text = text.trim_end_matches(['\r', '\n']);
        self.append(format!("{stamp} {text}\n").as_bytes());
    }

    /// Appends bytes that already form whole, timestamped lines (the
    /// manager's own `tracing` output).
    pub fn append(&mut self, bytes: &[u8]) {
        if self.size > 0 && self.size + bytes.len() as u64 > self.max_bytes {
            if let Err(err) = self.rotate() {
                // Keep writing to the full file rather than lose lines.
                let note = format!("(cannot rotate {}: {err})\n", self.path.display());
                let _ = self.file.write_all(note.as_bytes());
            }
        }
        // A full disk must not stop the component: the line is lost, and
        // the next write tries again.
        if self.file.write_all(bytes).is_ok() {
            self.size += bytes.len() as u64;
        }
    }

    fn rotate(&mut self) -> io::Result<()> {
        for n in (1..KEEP).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        fs::rename(&self.path, rotated(&self.path, 1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

/// `NAME.log.N`.
fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The log's files, oldest first: the rotated ones, then the current one.
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = (1..=KEEP)
        .rev()
        .map(|n| rotated(path, n))
        .filter(|p| p.exists())
        .collect();
    if path.exists() {
        files.push(path.to_owned());
    }
    files
}

/// The time a log line starts with, if it starts with one.
pub fn line_time(line: &str) -> Option<SystemTime> {
    let stamp = line.split_ascii_whitespace().next()?;
    humantime::parse_rfc3339_weak(stamp).ok()
}

/// Which lines of a log to show.
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection {
    /// Only lines written at or after this time. A line without a time of
    /// its own (the rest of a multi-line message) goes with the line
    /// before it.
    pub since: Option<SystemTime>,
    /// Only the last this many lines.
    pub last: Option<usize>,
}

/// The selected lines of the log at `path` (all its files).
pub fn read(path: &Path, selection: Selection) -> io::Result<Vec<String>> {
    let mut kept: VecDeque<String> = VecDeque::new();
    let mut in_range = selection.since.is_none();
    for file in files(path) {
        let reader = BufReader::new(File::open(&file)?);
        for line in reader.split(b'\n') {
            let line = String::from_utf8_lossy(&line?).into_owned();
            if let (Some(since), Some(at)) = (selection.since, line_time(&line)) {
                in_range = at >= since;
            }
            if !in_range {
                continue;
            }
            kept.push_back(line);
            if selection.last.is_some_and(|n| kept.len() > n) {
                kept.pop_front();
            }
        }
    }
    Ok(kept.into())
}

/// Follows the log at `path` from its current end, handing each new line
/// to `emit`, across rotations, until `emit` returns false.
pub fn follow(path: &Path, mut emit: impl FnMut(&str) -> bool) -> io::Result<()> {
    let mut position = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut identity = file_identity(path);
    let mut partial = Vec::new();
    loop {
        let now = file_identity(path);
        if now != identity {
            // Rotated: the current file is a new one; read it from the start.
            identity = now;
            position = 0;
            partial.clear();
        }
        if let Ok(mut file) = File::open(path) {
            let len = file.metadata()?.len();
            if len < position {
                position = 0;
            }
            if len > position {
                file.seek(SeekFrom::Start(position))?;
                let mut reader = BufReader::new(file.take(len - position));
                let mut chunk = Vec::new();
                while reader.read_until(b'\n', &mut chunk)? > 0 {
                    if chunk.ends_with(b"\n") {
                        partial.extend_from_slice(&chunk[..chunk.len() - 1]);
                        if !emit(&String::from_utf8_lossy(&partial)) {
                            return Ok(());
                        }
                        partial.clear();
                    } else {
                        partial.extend_from_slice(&chunk);
                    }
                    chunk.clear();
                }
                position = len;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(unix)]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(path: &Path) -> Option<(u64, u64)> {
    fs::metadata(path)
        .and_then(|m| m.created())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| (d.as_secs(), u64::from(d.subsec_nanos())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_stamped_and_rotated_by_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("daemon-lab.log");
        let mut log = LogFile::with_limit(&path, 200).expect("open");
        for i in 0..40 {
            log.line(&format!("line {i}"));
        }
        let all = files(&path);
        assert_eq!(all.len(), KEEP + 1, "{all:?}");
        for file in &all {
            assert!(fs::metadata(file).expect("meta").len() <= 200);
        }
        let lines = read(&path, Selection::default()).expect("read");
        assert_eq!(lines.last().map(|l| l.ends_with(" line 39")), Some(true));
        assert!(line_time(&lines[0]).is_some(), "{}", lines[0]);
        let last = read(
            &path,
            Selection {
                last: Some(3),
                ..Selection::default()
            },
        )
        .expect("read");
        assert_eq!(last.len(), 3);
        assert!(last[2].ends_with(" line 39"));
    }

    #[test]
    fn since_keeps_continuation_lines_with_their_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.log");
        fs::write(
            &path,
            "2026-01-01T10:00:00.000Z old\n  old detail\n2026-01-01T12:00:00.000Z new\n  new detail\n",
        )
        .expect("write");
        let since = humantime::parse_rfc3339("2026-01-01T11:00:00Z").expect("time");
        let lines = read(
            &path,
            Selection {
                since: Some(since),
                last: None,
            },
        )
        .expect("read");
        assert_eq!(lines, ["2026-01-01T12:00:00.000Z new", "  new detail"]);
    }
}
