//! Component and manager logs: one file per component in
//! `<data-dir>/logs/`, each line timestamped (RFC 3339, UTC), rotated by
//! size (`NAME.log` becomes `NAME.log.1`, `.1` becomes `.2`, ... up to
//! [`KEEP`] old files), readable while the component runs.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::status::Kind;
use crate::data_dir::DataDir;

/// A log file grows to this size before it is rotated.
pub const MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Rotated files kept besides the current one.
pub const KEEP: usize = 5;

/// The log file of a component.
pub fn log_path(data_dir: &DataDir, kind: Kind, name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    data_dir
        .logs_dir()
        .join(format!("{}-{safe}.log", kind.as_str()))
}

/// The manager's own log file.
pub fn manager_log_path(data_dir: &DataDir) -> PathBuf {
    data_dir.logs_dir().join("manager.log")
}

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
            crate::data_dir::create_private_dir(dir)?;
        }
        let file = crate::data_dir::private_file_options()
            .create(true)
            .append(true)
            .open(path)?;
        // A log an older version left readable by everyone is not.
        crate::data_dir::make_private(path)?;
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

/// Where a reader got to in the current log file: just after its last
/// complete line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Position {
    identity: Option<(u64, u64)>,
    offset: u64,
}

/// The selected lines of the log at `path` (all its files), and where
/// reading stopped, for [`follow`] to go on from.
pub fn read(path: &Path, selection: Selection) -> io::Result<(Vec<String>, Position)> {
    let mut kept: VecDeque<String> = VecDeque::new();
    let mut in_range = selection.since.is_none();
    let mut position = Position::default();
    for file in files(path) {
        let file = File::open(&file)?;
        let identity = identity_of(&file);
        let mut reader = BufReader::new(file);
        let mut offset = 0u64;
        let mut line = Vec::new();
        while reader.read_until(b'\n', &mut line)? > 0 {
            if !line.ends_with(b"\n") {
                // Being written: left for `follow`.
                break;
            }
            offset += line.len() as u64;
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            line.clear();
            if let (Some(since), Some(at)) = (selection.since, line_time(&text)) {
                in_range = at >= since;
            }
            if !in_range {
                continue;
            }
            kept.push_back(text);
            if selection.last.is_some_and(|n| kept.len() > n) {
                kept.pop_front();
            }
        }
        position = Position { identity, offset };
    }
    Ok((kept.into(), position))
}

/// Follows the log at `path` from `from`, handing each new line to `emit`,
/// until `emit` returns false. A rotation loses nothing: the rotated file
/// is read to its end (through the handle still open on it) before the new
/// one.
pub fn follow(path: &Path, from: Position, mut emit: impl FnMut(&str) -> bool) -> io::Result<()> {
    // Where `read` stopped, even if the log has rotated since.
    let mut current: Option<(File, u64)> = files(path)
        .into_iter()
        .filter_map(|file| File::open(file).ok())
        .find(|file| from.identity.is_some() && identity_of(file) == from.identity)
        .map(|file| (file, from.offset))
        .or_else(|| File::open(path).ok().map(|file| (file, 0)));
    let mut partial = Vec::new();
    loop {
        if let Some((file, position)) = &mut current {
            if !drain(file, position, &mut partial, &mut emit)? {
                return Ok(());
            }
        }
        if let Ok(latest) = File::open(path) {
            let open = current.as_ref().and_then(|(file, _)| identity_of(file));
            if open.is_none() || open != identity_of(&latest) {
                if let Some((old, position)) = &mut current {
                    // Lines written to it since the drain above.
                    if !drain(old, position, &mut partial, &mut emit)? {
                        return Ok(());
                    }
                }
                partial.clear();
                let next = open.and_then(|open| file_after(path, open));
                current = Some((next.unwrap_or(latest), 0));
                continue;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The file written after the one identified by `identity` (which has been
/// rotated since): the next newer of the log's files. The log may have
/// rotated more than once between two looks.
fn file_after(path: &Path, identity: (u64, u64)) -> Option<File> {
    let mut opened = files(path)
        .into_iter()
        .filter_map(|file| File::open(file).ok());
    opened.find(|file| identity_of(file) == Some(identity))?;
    opened.next()
}

/// Hands the complete lines after `position` to `emit`; returns false if
/// `emit` wants no more.
fn drain(
    file: &mut File,
    position: &mut u64,
    partial: &mut Vec<u8>,
    emit: &mut impl FnMut(&str) -> bool,
) -> io::Result<bool> {
    if file.metadata()?.len() < *position {
        // Truncated in place (copytruncate rotation): start over.
        *position = 0;
        partial.clear();
    }
    file.seek(SeekFrom::Start(*position))?;
    let mut reader = BufReader::new(&*file);
    let mut chunk = Vec::new();
    loop {
        let n = reader.read_until(b'\n', &mut chunk)?;
        if n == 0 {
            return Ok(true);
        }
        *position += n as u64;
        if chunk.ends_with(b"\n") {
            partial.extend_from_slice(&chunk[..chunk.len() - 1]);
            let line = String::from_utf8_lossy(partial).into_owned();
            partial.clear();
            if !emit(&line) {
                return Ok(false);
            }
        } else {
            partial.extend_from_slice(&chunk);
        }
        chunk.clear();
    }
}

#[cfg(unix)]
fn identity_of(file: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    file.metadata().ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn identity_of(file: &File) -> Option<(u64, u64)> {
    file.metadata()
        .and_then(|m| m.created())
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| (d.as_secs(), u64::from(d.subsec_nanos())))
}

/// A `--since` / `since=` value: a time, or a duration ago.
pub fn parse_since(text: &str) -> Result<SystemTime, String> {
    if let Some(time) = parse_time(text) {
        return Ok(time);
    }
    match humantime::parse_duration(text) {
        Ok(ago) => SystemTime::now()
            .checked_sub(ago)
            .ok_or_else(|| format!("{text:?} reaches back before any time a log can have")),
        Err(_) => Err(format!(
            "{text:?} is neither a time (2026-12-01T14:00:00Z, 2026-12-01T15:00:00+01:00) nor a duration (10m, 2h)"
        )),
    }
}

/// An RFC 3339 time, in UTC (`Z` or nothing) or with an offset
/// (`+01:00`); a space may stand for the `T`.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    if let Ok(time) = humantime::parse_rfc3339_weak(text.trim_end_matches(['Z', 'z'])) {
        return Some(time);
    }
    // An offset after the time of day: `...T15:00:00+01:00`.
    let split = text.rfind(['+', '-']).filter(|&at| at > 10)?;
    let (local, offset) = text.split_at(split);
    let (hours, minutes) = offset[1..].split_once(':')?;
    let offset =
        Duration::from_secs(hours.parse::<u64>().ok()? * 3600 + minutes.parse::<u64>().ok()? * 60);
    let as_if_utc = humantime::parse_rfc3339_weak(local).ok()?;
    // Local time = UTC + offset.
    if offset_sign_is_plus(text, split) {
        as_if_utc.checked_sub(offset)
    } else {
        as_if_utc.checked_add(offset)
    }
}

fn offset_sign_is_plus(text: &str, at: usize) -> bool {
    text.as_bytes()[at] == b'+'
}

/// The log file of component `name` (or of the manager: `manager`), with
/// a message fit for the user when there is none.
pub fn locate(data_dir: &DataDir, name: &str, kind: Option<Kind>) -> Result<PathBuf, String> {
    if name == "manager" && kind.is_none() {
        let path = manager_log_path(data_dir);
        if files(&path).is_empty() {
            return Err(format!(
                "no manager log in {} yet (the manager writes it once `pyrolab-host up` has run)",
                data_dir.logs_dir().display()
            ));
        }
        return Ok(path);
    }
    let kinds = match kind {
        Some(kind) => vec![kind],
        None => vec![Kind::Nameserver, Kind::Daemon, Kind::Command],
    };
    let found: Vec<PathBuf> = kinds
        .into_iter()
        .map(|kind| log_path(data_dir, kind, name))
        .filter(|path| !files(path).is_empty())
        .collect();
    match found.as_slice() {
        [path] => Ok(path.clone()),
        [] => {
            let known = known_components(data_dir);
            if !known.is_empty() && !known.iter().any(|k| k == name) {
                return Err(format!(
                    "no component named {name:?} (the configuration has: {}, and the manager's log is `manager`)",
                    known.join(", ")
                ));
            }
            Err(format!(
                "no log for {name:?} in {} yet (a log exists once the manager has started the component; `pyrolab-host ps` lists them)",
                data_dir.logs_dir().display()
            ))
        }
        _ => Err(format!(
            "several components are called {name:?}: give the kind (nameserver, daemon or command)"
        )),
    }
}

/// The name servers and daemons of the stored configuration.
fn known_components(data_dir: &DataDir) -> Vec<String> {
    match crate::config::ConfigStore::new(data_dir).load() {
        Ok(Some(config)) => config
            .nameservers
            .names()
            .chain(config.daemons.names())
            .chain(config.commands.names())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
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
        let (lines, _) = read(&path, Selection::default()).expect("read");
        assert_eq!(lines.last().map(|l| l.ends_with(" line 39")), Some(true));
        assert!(line_time(&lines[0]).is_some(), "{}", lines[0]);
        let (last, _) = read(
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
    fn follow_goes_on_where_read_stopped_and_across_rotations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("daemon-lab.log");
        let mut log = LogFile::with_limit(&path, 300).expect("open");
        for i in 0..3 {
            log.line(&format!("old {i}"));
        }
        let (old, position) = read(&path, Selection::default()).expect("read");
        assert_eq!(old.len(), 3);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let follower = {
            let path = path.clone();
            let seen = Arc::clone(&seen);
            std::thread::spawn(move || {
                follow(&path, position, |line| {
                    let mut seen = seen.lock().expect("lock");
                    seen.push(line.rsplit(' ').next().unwrap_or_default().to_owned());
                    seen.len() < 20
                })
                .expect("follow");
            })
        };
        for i in 0..20 {
            log.line(&format!("new {i}"));
            if i % 4 == 3 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !follower.is_finished() {
            assert!(
                std::time::Instant::now() < deadline,
                "the follower is stuck: {:?}, files {:?}",
                seen.lock().expect("lock"),
                files(&path)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        follower.join().expect("follower");
        let seen = seen.lock().expect("lock").clone();
        let expected: Vec<String> = (0..20).map(|i| i.to_string()).collect();
        assert_eq!(seen, expected);
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
        let (lines, _) = read(
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

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn times_with_offsets_mean_the_same_instant() {
        let utc = parse_time("2026-12-01T14:00:00Z").expect("utc");
        assert_eq!(parse_time("2026-12-01T14:00:00"), Some(utc));
        assert_eq!(parse_time("2026-12-01 14:00:00"), Some(utc));
        assert_eq!(parse_time("2026-12-01T15:00:00+01:00"), Some(utc));
        assert_eq!(parse_time("2026-12-01T09:30:00-04:30"), Some(utc));
        assert_eq!(parse_time("yesterday"), None);
        assert!(parse_since("10m").is_ok());
        assert!(parse_since("soon").is_err());
    }
}
