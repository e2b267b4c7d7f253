//! `pyrolab-host systemd-unit`: a systemd unit that brings the lab up at
//! boot (after a power failure too) and keeps the manager running.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::Context;

#[derive(Debug, Args)]
pub struct SystemdUnitCommand {
    /// Write a user unit (for `systemctl --user`; needs `loginctl
    /// enable-linger USER` to start at boot without a login) instead of a
    /// system unit that runs as the current user.
    #[arg(long)]
    user: bool,
}

pub fn run(command: SystemdUnitCommand, context: &Context) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the pyrolab-host executable")?;
    let data_dir = context
        .data_dir
        .as_ref()
        .context("no data directory: give --data-dir DIR or set PYROLAB_HOME")?;
    let data_dir = std::path::absolute(data_dir.root())?;
    let plugin_dirs: Vec<PathBuf> = context
        .plugin_dirs
        .iter()
        .map(|dir| std::path::absolute(dir).unwrap_or_else(|_| dir.clone()))
        .collect();
    let user = (!command.user).then(current_user).flatten();
    print!(
        "{}",
        unit(&exe, &data_dir, &plugin_dirs, user.as_deref(), command.user)
    );
    Ok(ExitCode::SUCCESS)
}

fn current_user() -> Option<String> {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|name| !name.is_empty())
}

/// Quotes a path for a systemd command line.
fn quoted(path: &Path) -> String {
    let text = path.display().to_string();
    if text
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

fn unit(
    exe: &Path,
    data_dir: &Path,
    plugin_dirs: &[PathBuf],
    user: Option<&str>,
    user_unit: bool,
) -> String {
    let mut global = format!("{} --data-dir {}", quoted(exe), quoted(data_dir));
    for dir in plugin_dirs {
        global.push_str(&format!(" --plugin-dir {}", quoted(dir)));
    }
    let (after, wanted_by) = if user_unit {
        ("network-online.target", "default.target")
    } else {
        ("network-online.target", "multi-user.target")
    };
    let user_line = user.map(|u| format!("User={u}\n")).unwrap_or_default();
    format!(
        "# pyrolab-host: the lab's name servers and daemons, started at boot.
# Install: save as {path}, then
#   {systemctl} daemon-reload
#   {systemctl} enable --now pyrolab-host.service
# Status: {systemctl} status pyrolab-host; pyrolab-host --data-dir {data} ps
[Unit]
Description=pyrolab-host lab instrument services
Documentation=https://github.com/pyrolab-host/pyrolab-host/blob/main/docs/manager.md
Wants=network-online.target
After={after}

[Service]
# `up --foreground` tells systemd when every autolaunched component is ready.
Type=notify
NotifyAccess=main
{user_line}ExecStart={global} up --foreground
ExecReload={global} reload
# SIGTERM makes the manager stop the daemons (they unregister), then the
# name servers; stragglers are killed after --timeout (10 s).
KillMode=mixed
TimeoutStartSec=180
TimeoutStopSec=60
# The manager restarts crashed components itself; systemd restarts the
# manager.
Restart=on-failure
RestartSec=2

[Install]
WantedBy={wanted_by}
",
        path = if user_unit {
            "~/.config/systemd/user/pyrolab-host.service"
        } else {
            "/etc/systemd/system/pyrolab-host.service"
        },
        systemctl = if user_unit {
            "systemctl --user"
        } else {
            "sudo systemctl"
        },
        data = quoted(data_dir),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_up_in_the_foreground_with_notification() {
        let text = unit(
            Path::new("/opt/pyrolab/pyrolab-host"),
            Path::new("/srv/lab data"),
            &[PathBuf::from("/opt/drivers")],
            Some("lab"),
            false,
        );
        assert!(text.contains("Type=notify\n"), "{text}");
        assert!(text.contains("User=lab\n"), "{text}");
        assert!(text.contains(
            "ExecStart=/opt/pyrolab/pyrolab-host --data-dir \"/srv/lab data\" --plugin-dir /opt/drivers up --foreground\n"
        ), "{text}");
        assert!(text.contains("WantedBy=multi-user.target"), "{text}");
    }
}
