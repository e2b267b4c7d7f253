//! `pyrolab-host systemd-unit`: a systemd unit that brings the lab up at
//! boot (after a power failure too) and keeps the manager running.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use super::Context;
use crate::loader::PLUGIN_PATH_ENV;

#[derive(Debug, Args)]
pub struct SystemdUnitCommand {
    /// Print a user unit (for `systemctl --user`; needs `loginctl
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
    if !data_dir.join("config.yaml").is_file() {
        eprintln!(
            "warning: no configuration is stored in {dir} yet: store one (`pyrolab-host --data-dir {dir} config update FILE`) before starting the unit",
            dir = data_dir.display()
        );
    }
    let plugin_path = std::env::var_os(PLUGIN_PATH_ENV).filter(|p| !p.is_empty());
    let user = (!command.user).then(current_user);
    print!(
        "{}",
        unit(&Unit {
            exe: &exe,
            data_dir: &data_dir,
            plugin_dirs: &plugin_dirs,
            plugin_path: plugin_path.as_deref().map(Path::new),
            user: user.as_deref(),
            user_unit: command.user,
        })
    );
    Ok(ExitCode::SUCCESS)
}

/// The user to run as: the login name, else the numeric user id (which
/// systemd accepts too); never left out, which would mean root.
fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| rustix::process::getuid().as_raw().to_string())
}

/// Text for a unit file: `%` (systemd's specifiers) and `$` (its
/// variables) escaped.
fn escaped(text: &str) -> String {
    text.replace('%', "%%").replace('$', "$$")
}

/// A path as one word of a systemd command line.
fn quoted(path: &Path) -> String {
    let text = escaped(&path.display().to_string());
    if text
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\\')
    {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        text
    }
}

/// What goes into the unit.
struct Unit<'a> {
    exe: &'a Path,
    data_dir: &'a Path,
    plugin_dirs: &'a [PathBuf],
    /// `PYROLAB_PLUGIN_PATH`, carried into the unit's environment.
    plugin_path: Option<&'a Path>,
    /// `User=` of a system unit.
    user: Option<&'a str>,
    user_unit: bool,
}

fn unit(unit: &Unit<'_>) -> String {
    let mut global = format!("{} --data-dir {}", quoted(unit.exe), quoted(unit.data_dir));
    for dir in unit.plugin_dirs {
        global.push_str(&format!(" --plugin-dir {}", quoted(dir)));
    }
    let user_line = unit.user.map(|u| format!("User={u}\n")).unwrap_or_default();
    let environment = unit
        .plugin_path
        .map(|path| {
            let value = escaped(&path.display().to_string())
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            format!("Environment=\"{PLUGIN_PATH_ENV}={value}\"\n")
        })
        .unwrap_or_default();
    let (path, systemctl, wanted_by) = if unit.user_unit {
        (
            "~/.config/systemd/user/pyrolab-host.service",
            "systemctl --user",
            "default.target",
        )
    } else {
        (
            "/etc/systemd/system/pyrolab-host.service",
            "sudo systemctl",
            "multi-user.target",
        )
    };
    let data = quoted(unit.data_dir);
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
After=network-online.target

[Service]
# `up --foreground` tells systemd when every autolaunched component is ready.
Type=notify
NotifyAccess=main
{user_line}{environment}ExecStart={global} up --foreground
ExecReload={global} reload
# SIGTERM makes the manager stop the daemons (they unregister), then the
# name servers; stragglers are killed after --timeout (10 s) each.
KillMode=mixed
TimeoutStartSec=180
TimeoutStopSec=60
# The manager restarts crashed components itself; systemd restarts the
# manager.
Restart=on-failure
RestartSec=2

[Install]
WantedBy={wanted_by}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_up_in_the_foreground_with_notification() {
        let text = unit(&Unit {
            exe: Path::new("/opt/pyrolab/pyrolab-host"),
            data_dir: Path::new("/srv/lab data"),
            plugin_dirs: &[PathBuf::from("/opt/drivers%1")],
            plugin_path: Some(Path::new("/opt/more")),
            user: Some("lab"),
            user_unit: false,
        });
        assert!(text.contains("Type=notify\n"), "{text}");
        assert!(text.contains("User=lab\n"), "{text}");
        assert!(
            text.contains(
                "ExecStart=/opt/pyrolab/pyrolab-host --data-dir \"/srv/lab data\" --plugin-dir /opt/drivers%%1 up --foreground\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("Environment=\"PYROLAB_PLUGIN_PATH=/opt/more\"\n"),
            "{text}"
        );
        assert!(text.contains("WantedBy=multi-user.target"), "{text}");
    }

    /// The unit the .deb installs (packaging/pyrolab-host.service) runs
    /// the lab as this command's unit would for the package's binary,
    /// data directory and user: every setting of the generated [Service]
    /// section is in it, so a change here reaches the package too.
    #[test]
    fn the_packaged_unit_has_every_service_setting_of_the_generated_one() {
        let packaged = include_str!("../../../packaging/pyrolab-host.service");
        let generated = unit(&Unit {
            exe: Path::new("/usr/bin/pyrolab-host"),
            data_dir: Path::new("/var/lib/pyrolab-host"),
            plugin_dirs: &[],
            plugin_path: None,
            user: Some("pyrolab"),
            user_unit: false,
        });
        fn settings(text: &str) -> Vec<&str> {
            text.lines()
                .skip_while(|line| *line != "[Service]")
                .take_while(|line| *line != "[Install]")
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .collect()
        }
        let packaged_settings = settings(packaged);
        for setting in settings(&generated) {
            assert!(
                packaged_settings.contains(&setting),
                "packaging/pyrolab-host.service lacks `{setting}`"
            );
        }
        assert!(packaged.contains("WantedBy=multi-user.target"));
    }
}
