//! `pyrolab-host logs NAME`: a component's (or the manager's) log.

use std::io::Write;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context as _, bail};
use clap::Args;

use super::Context;
use crate::lab::logfile::{self, Selection};
use crate::lab::status::Kind;

#[derive(Debug, Args)]
pub struct LogsCommand {
    /// The component (a name server's, daemon's or command's name), or
    /// `manager`; `HOST/NAME` for one of another host of the lab (its
    /// last lines, through that host's manager).
    name: String,

    /// Which kind NAME is, when a name server and a daemon share it.
    #[arg(long, value_enum)]
    kind: Option<Kind>,

    /// Keep printing lines as they are written (until Ctrl-C).
    #[arg(short, long)]
    follow: bool,

    /// Only lines since TIME: a time (`2026-12-01T14:00:00Z`, `2026-12-01
    /// 14:00:00`, UTC) or a duration ago (`10m`, `2h`, `1day`).
    #[arg(long, value_name = "TIME", value_parser = logfile::parse_since)]
    since: Option<SystemTime>,

    /// Only the last N lines.
    #[arg(short = 'n', long = "lines", value_name = "N")]
    lines: Option<usize>,
}

pub fn run(command: LogsCommand, context: &Context) -> anyhow::Result<ExitCode> {
    if let Some((host, name)) = super::lab::remote(&command.name) {
        if command.follow || command.since.is_some() {
            bail!("-f and --since work on this host's logs only; for {host}/{name}, give -n N");
        }
        return super::lab::logs(context, host, name, command.lines, command.kind);
    }
    let Some(data_dir) = &context.data_dir else {
        bail!("no data directory: give --data-dir DIR or set PYROLAB_HOME");
    };
    let path =
        logfile::locate(data_dir, &command.name, command.kind).map_err(anyhow::Error::msg)?;
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
