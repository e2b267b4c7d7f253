//! `pyrolab-host logs NAME`: a component's (or the manager's) log.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use clap::Args;

use super::Context;
use crate::data_dir::DataDir;
use crate::manager::logfile::{self, Selection};
use crate::manager::status::Kind;
use crate::manager::{log_path, manager_log_path};

#[derive(Debug, Args)]
pub struct LogsCommand {
    /// The component (a name server's or daemon's name), or `manager`.
    name: String,

    /// Which kind NAME is, when a name server and a daemon share it.
    #[arg(long, value_enum)]
    kind: Option<Kind>,

    /// Keep printing lines as they are written (until Ctrl-C).
    #[arg(short, long)]
    follow: bool,

    /// Only lines since TIME: a time (`2026-12-01T14:00:00Z`, `2026-12-01
    /// 14:00:00`, UTC) or a duration ago (`10m`, `2h`, `1day`).
    #[arg(long, value_name = "TIME", value_parser = parse_since)]
    since: Option<SystemTime>,

    /// Only the last N lines.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    lines: Option<usize>,
}

fn parse_since(text: &str) -> Result<SystemTime, String> {
    if let Some(time) = parse_time(text) {
        return Ok(time);
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(SystemTime::now() - ago),
        Err(_) => Err(format!(
            "{text:?} is neither a time (2026-12-01T14:00:00Z, 2026-12-01T15:00:00+01:00) nor a duration (10m, 2h)"
        )),
    }
}

/// An RFC 3339 time, in UTC (`Z` or nothing) or with an offset
/// (`+01:00`); a space may stand for the `T`.
fn parse_time(text: &str) -> Option<SystemTime> {
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

pub fn run(command: LogsCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let Some(data_dir) = &context.data_dir else {
        bail!("no data directory: give --data-dir DIR or set PYROLAB_HOME");
    };
    let path = find_log(data_dir, &command.name, command.kind)?;
    let (lines, position) = logfile::read(
        &path,
        Selection {
            since: command.since,
            last: command.lines,
        },
    )
    .with_context(|| format!("cannot read {}", path.display()))?;
    let mut stdout = std::io::stdout().lock();
    for line in &lines {
        if writeln!(stdout, "{line}").is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    stdout.flush()?;
    drop(stdout);
    if command.follow {
        logfile::follow(&path, position, |line| {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) ends the following.
            writeln!(stdout, "{line}")
                .and_then(|()| stdout.flush())
                .is_ok()
        })?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The log file of `name`.
fn find_log(data_dir: &DataDir, name: &str, kind: Option<Kind>) -> anyhow::Result<PathBuf> {
    if name == "manager" && kind.is_none() {
        let path = manager_log_path(data_dir);
        if logfile::files(&path).is_empty() {
            bail!(
                "no manager log in {} yet (the manager writes it once `pyrolab-host up` has run)",
                data_dir.logs_dir().display()
            );
        }
        return Ok(path);
    }
    let kinds = match kind {
        Some(kind) => vec![kind],
        None => vec![Kind::Nameserver, Kind::Daemon],
    };
    let found: Vec<(Kind, PathBuf)> = kinds
        .into_iter()
        .map(|kind| (kind, log_path(data_dir, kind, name)))
        .filter(|(_, path)| !logfile::files(path).is_empty())
        .collect();
    match found.as_slice() {
        [(_, path)] => Ok(path.clone()),
        [] => {
            let known = known_components(data_dir);
            if !known.is_empty() && !known.iter().any(|k| k == name) {
                bail!(
                    "no component named {name:?} (the configuration has: {}, and the manager's log is `manager`)",
                    known.join(", ")
                );
            }
            bail!(
                "no log for {name:?} in {} yet (a log exists once the manager has started the component; `pyrolab-host ps` lists them)",
                data_dir.logs_dir().display()
            )
        }
        _ => bail!(
            "both a name server and a daemon are called {name:?}: add --kind nameserver or --kind daemon"
        ),
    }
}

/// The name servers and daemons of the stored configuration.
fn known_components(data_dir: &DataDir) -> Vec<String> {
    match crate::config::ConfigStore::new(data_dir).load() {
        Ok(Some(config)) => config
            .nameservers
            .names()
            .chain(config.daemons.names())
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
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
