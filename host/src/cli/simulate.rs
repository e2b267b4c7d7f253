//! `pyrolab-host simulate INSTRUMENT`: serves a simulated instrument
//! (the `pyrolab-simulators` crate: the tests' instruments) until
//! stopped, so a lab can try its configuration with no hardware.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

/// Serve a simulated instrument until Ctrl-C (or SIGTERM, as `down` sends
/// a `command` component), printing the VISA resource or serial port its
/// driver's configuration gives.
///
/// Each simulator follows its instrument's manual: settings and their
/// ranges, timing, error replies. Network instruments listen on loopback
/// by default; serial ones are a pseudo-terminal (`/dev/pts/N`), with
/// --link for a path that does not change between runs.
#[derive(Debug, Args)]
pub struct SimulateCommand {
    /// The instrument.
    instrument: Instrument,

    /// The address a network instrument listens on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,

    /// The TCP port of a network instrument (default its own: 5025 for
    /// SCPI sockets, the portmapper's 111 for VXI-11, which needs
    /// privileges: give another, and the same as the driver's
    /// `portmapper_port`); 0: any free one. For a serial instrument: serve
    /// it on this TCP port instead of a pseudo-terminal, as behind a
    /// serial-to-Ethernet adapter (`TCPIP0::HOST::PORT::SOCKET`).
    #[arg(long)]
    port: Option<u16>,

    /// For a serial instrument: also make PATH a symbolic link to its
    /// pseudo-terminal (replacing an older link there; removed at exit),
    /// for the driver's `port:`.
    #[arg(long, value_name = "PATH")]
    link: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Instrument {
    /// Keysight B2900 source-measure unit, SCPI on a TCP socket.
    B2900,
    /// Rohde & Schwarz RTO oscilloscope, SCPI on a TCP socket.
    Rto,
    /// Rohde & Schwarz SMCV100B signal generator, SCPI over VXI-11.
    Smcv100b,
    /// Thorlabs KDC101 motor controller (APT), on a serial port.
    Kdc101,
    /// Pure Photonics PPCL550 C-band laser (OIF ITLA), on a serial port.
    Ppcl550,
    /// Pure Photonics PPCL551 L-band laser (OIF ITLA), on a serial port.
    Ppcl551,
}

/// A simulator that runs while it is held.
enum Running {
    B2900(simulators::B2900),
    Rto(simulators::Rto),
    Smcv100b(simulators::Smcv100b),
    Kdc101(simulators::Kdc101),
    Ppcl55x(simulators::Ppcl55x, &'static str),
}

impl Running {
    fn start(command: &SimulateCommand) -> anyhow::Result<Running> {
        let host = command.host.as_str();
        let listening = |port: u16| {
            move |err: std::io::Error| {
                let hint = if port < 1024 && err.kind() == std::io::ErrorKind::PermissionDenied {
                    " (ports below 1024 need privileges: give --port)"
                } else {
                    ""
                };
                anyhow::anyhow!("cannot listen on {host}:{port}: {err}{hint}")
            }
        };
        let port = |default: u16| command.port.unwrap_or(default);
        Ok(match command.instrument {
            Instrument::B2900 => Running::B2900(
                simulators::B2900::start_on(host, port(5025)).map_err(listening(port(5025)))?,
            ),
            Instrument::Rto => Running::Rto(
                simulators::Rto::start_on(host, port(5025)).map_err(listening(port(5025)))?,
            ),
            Instrument::Smcv100b => Running::Smcv100b(
                simulators::Smcv100b::start_on(host, port(111)).map_err(listening(port(111)))?,
            ),
            Instrument::Kdc101 => Running::Kdc101(match command.port {
                None => simulators::Kdc101::start().context("cannot open a pseudo-terminal")?,
                Some(port) => {
                    simulators::Kdc101::start_on_tcp(host, port).map_err(listening(port))?
                }
            }),
            Instrument::Ppcl550 | Instrument::Ppcl551 => {
                use simulators::{Ppcl55x as Simulator, PpclModel as Model, PpclTiming as Timing};
                let (model, name) = match command.instrument {
                    Instrument::Ppcl550 => (Model::Ppcl550, "PPCL550"),
                    _ => (Model::Ppcl551, "PPCL551"),
                };
                let laser = match command.port {
                    None => Simulator::start_with(model, Timing::default())
                        .context("cannot open a pseudo-terminal")?,
                    Some(port) => {
                        Simulator::start_on_tcp(model, host, port).map_err(listening(port))?
                    }
                };
                Running::Ppcl55x(laser, name)
            }
        })
    }

    /// What the driver's configuration gives to reach it.
    fn describe(&self, host: &str) -> String {
        match self {
            Running::B2900(sim) => format!(
                "simulated Keysight B2900 at TCPIP0::{host}::{}::SOCKET",
                sim.port()
            ),
            Running::Rto(sim) => format!(
                "simulated R&S RTO at TCPIP0::{host}::{}::SOCKET",
                sim.port()
            ),
            Running::Smcv100b(sim) => format!(
                "simulated R&S SMCV100B at {} (portmapper_port: {})",
                sim.resource(),
                sim.portmapper_port()
            ),
            Running::Kdc101(sim) => format!(
                "simulated Thorlabs KDC101 (serial number {}) at {}",
                sim.serial_number(),
                serial_place(sim.path(), &sim.resource(), host)
            ),
            Running::Ppcl55x(sim, name) => format!(
                "simulated Pure Photonics {name} at {}",
                serial_place(sim.path(), &sim.resource(), host)
            ),
        }
    }

    /// The pseudo-terminal of a serial instrument.
    fn serial_port(&self) -> Option<&Path> {
        let path = match self {
            Running::Kdc101(sim) => sim.path(),
            Running::Ppcl55x(sim, _) => sim.path(),
            _ => return None,
        };
        (!path.as_os_str().is_empty()).then_some(path)
    }
}

/// A serial instrument's pseudo-terminal, or the socket of the TCP
/// adapter it is behind.
fn serial_place(path: &Path, resource: &str, host: &str) -> String {
    if path.as_os_str().is_empty() {
        resource.replace("127.0.0.1", host)
    } else {
        path.display().to_string()
    }
}

pub fn run(command: SimulateCommand) -> anyhow::Result<ExitCode> {
    let running = Running::start(&command)?;
    if let Some(link) = &command.link {
        let Some(port) = running.serial_port() else {
            bail!("--link is for a serial instrument on a pseudo-terminal (without --port)");
        };
        make_link(port, link)?;
    }
    let link = command.link.clone();
    ctrlc::set_handler(move || {
        if let Some(link) = &link {
            let _ = std::fs::remove_file(link);
        }
        std::process::exit(0);
    })
    .context("cannot handle Ctrl-C")?;
    let mut line = running.describe(&command.host);
    if let Some(link) = &command.link {
        line.push_str(&format!(", linked as {}", link.display()));
    }
    println!("{line} (Ctrl-C stops it)");
    loop {
        std::thread::park();
    }
}

/// `link` → `target`, replacing an older symbolic link (never a file).
fn make_link(target: &Path, link: &Path) -> anyhow::Result<()> {
    if let Ok(metadata) = std::fs::symlink_metadata(link) {
        if !metadata.file_type().is_symlink() {
            bail!(
                "{} exists and is not a symbolic link: not replacing it",
                link.display()
            );
        }
        std::fs::remove_file(link)
            .with_context(|| format!("cannot replace the link {}", link.display()))?;
    }
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, link)
        .with_context(|| format!("cannot make the link {}", link.display()))?;
    #[cfg(not(unix))]
    bail!("--link needs a Unix system");
    Ok(())
}
