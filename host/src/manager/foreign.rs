//! Components of kind `command`: programs that are not pyrolab-host's own
//! (a PyroLab Python daemon script, a vendor's server), run under the
//! manager so that a lab's not-yet-ported drivers are started, logged,
//! restarted and shown like the others.
//!
//! A command has no stdin protocol: it cannot say when it is ready nor
//! answer the manager's pings. Its readiness is observed from outside
//! ([`Readiness`]): a port that accepts a connection, or a name that is
//! registered on a name server and whose Pyro daemon answers a ping.
//! While it runs, the same question is asked every
//! [`PROBE_EVERY`](super::liveness::PROBE_EVERY); a command that stops
//! answering is reported (in its log and `ps`'s last error), not killed:
//! from outside, a foreign program busy in a long instrument call looks
//! the same as a stuck one, and killing it would abort what the
//! instrument is doing. One that exits is restarted by its policy.

use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Manager;
use super::liveness::{PROBE_EVERY, pyro_ping};
use crate::client::NameServerProxy;
use crate::config::schema::{CommandConfig, Readiness};
use crate::lab::status::{ComponentId, Kind, State};
use crate::supervised::ServedService;

/// How often a starting command is asked whether it is ready.
const READY_POLL: Duration = Duration::from_millis(250);
/// How long one readiness question may take (a connect, a lookup, a ping).
const ASK_WITHIN: Duration = Duration::from_secs(3);

/// The process of `command`: its program and arguments, in its folder,
/// with its environment, its output to `output`.
pub(super) fn process(
    command: &CommandConfig,
    output: std::io::PipeWriter,
) -> std::io::Result<Command> {
    let (program, args) = command
        .run
        .split_first()
        .ok_or_else(|| std::io::Error::other("the command has no program"))?;
    let mut process = Command::new(program_path(program, &command.cwd));
    process
        .args(args)
        .current_dir(&command.cwd)
        .env("PYTHONUNBUFFERED", "1")
        .envs(&command.env)
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output);
    Ok(process)
}

/// The command line `command` runs as: what `/proc/PID/cmdline` shows of
/// it, to tell it from an unrelated process that reused its pid.
pub(super) fn command_line(command: &CommandConfig) -> Vec<String> {
    let mut line = command.run.clone();
    if let Some(program) = line.first_mut() {
        *program = program_path(program, &command.cwd)
            .to_string_lossy()
            .into_owned();
    }
    line
}

/// `program` as the child is started with: a relative path with a slash
/// (`./driver.py`, `bin/server`) is taken from the command's folder, not
/// from wherever the manager was started; a bare name is looked up on
/// `PATH`; `pyrolab-host` is this very program (the manager's own
/// binary), so a lab's `pyrolab-host simulate ...` commands run the same
/// build wherever it was started from.
fn program_path(program: &str, cwd: &Path) -> PathBuf {
    if program == "pyrolab-host"
        && let Ok(own) = std::env::current_exe()
    {
        return own;
    }
    let path = Path::new(program);
    if path.is_relative() && program.contains('/') {
        cwd.join(path)
    } else {
        path.to_owned()
    }
}

/// What a ready command showed: the address it answers at, and the
/// service it registered (readiness by name).
struct Answer {
    address: String,
    service: Option<ServedService>,
}

impl Manager {
    /// Watches command `id`'s process from outside until `ended`: marks it
    /// ready once it answers as its `ready` says, then asks again every
    /// few seconds and reports when it stops (or starts again) answering.
    pub(super) fn watch_command(&self, id: &ComponentId, generation: u64, ended: &AtomicBool) {
        let Some(ready) = self.command_readiness(id) else {
            return;
        };
        loop {
            if ended.load(Ordering::SeqCst) {
                return;
            }
            match self.ask_command(&ready) {
                Ok(answer) => {
                    self.command_ready(id, generation, &ready, answer);
                    break;
                }
                Err(_) => std::thread::sleep(READY_POLL),
            }
        }
        let mut answering = true;
        while self.sleep_unless_ended(ended, PROBE_EVERY) {
            match (self.ask_command(&ready), answering) {
                (Ok(_), false) => {
                    answering = true;
                    self.note(id, &format!("answers again ({})", describe(&ready)));
                }
                (Err(err), true) => {
                    answering = false;
                    let message = format!(
                        "does not answer ({}: {err}); not restarted for it: the manager cannot tell \
                         a busy program from a stuck one",
                        describe(&ready)
                    );
                    tracing::warn!("{id} {message}");
                    self.note(id, &message);
                    if let Some(slot) = self.lab().slots.get_mut(id) {
                        slot.last_error = Some(message);
                    }
                }
                _ => {}
            }
        }
    }

    /// Command `id`'s readiness, or `None` once the configuration no
    /// longer has it.
    fn command_readiness(&self, id: &ComponentId) -> Option<Readiness> {
        debug_assert_eq!(id.kind, Kind::Command);
        Some(self.lab().config.commands.get(&id.name)?.ready.clone())
    }

    /// Asks whether the command answers as `ready` says.
    fn ask_command(&self, ready: &Readiness) -> Result<Answer, String> {
        match ready {
            Readiness::Started => Ok(Answer {
                address: String::new(),
                service: None,
            }),
            Readiness::Port { host, port } => {
                connect(host, *port)?;
                Ok(Answer {
                    address: crate::net::join_host_port(host, *port),
                    service: None,
                })
            }
            Readiness::Name { name, nameserver } => {
                let (host, port, tls) = self.nameserver_address(nameserver)?;
                let ns =
                    NameServerProxy::connect_with(&host, port, Some(ASK_WITHIN), None, Some(tls))
                        .map_err(|err| format!("name server {nameserver}: {err}"))?;
                let uri = ns
                    .lookup(name)
                    .map_err(|err| format!("{name} on name server {nameserver}: {err}"))?;
                let address = uri.location.to_string();
                pyro_ping(&address, None)
                    .map_err(|err| format!("its daemon at {address}: {err}"))?;
                Ok(Answer {
                    address,
                    service: Some(ServedService {
                        name: name.clone(),
                        uri: uri.to_string(),
                    }),
                })
            }
        }
    }

    /// Where name server `name` of the configuration answers: where it is
    /// bound when the manager runs it, its configured address otherwise;
    /// and the TLS it takes.
    fn nameserver_address(
        &self,
        name: &str,
    ) -> Result<(String, u16, Option<crate::tls::ClientTls>), String> {
        let id = ComponentId {
            kind: Kind::Nameserver,
            name: name.to_owned(),
        };
        let (configured, bound) = {
            let lab = self.lab();
            let ns =
                lab.config.nameservers.get(name).ok_or_else(|| {
                    format!("there is no name server {name} in the configuration")
                })?;
            let bound = lab
                .slots
                .get(&id)
                .filter(|slot| slot.ready && slot.pid.is_some())
                .and_then(|slot| slot.probe_address.clone());
            ((crate::net::resolve_host(&ns.host), ns.ns_port), bound)
        };
        let (host, port) = match bound.as_deref().and_then(crate::net::split_host_port) {
            Some((host, port)) => (host, port),
            None => configured,
        };
        Ok((host, port, self.probe_tls(&id)))
    }

    /// Marks command `id` ready (if `generation` is still its run).
    fn command_ready(&self, id: &ComponentId, generation: u64, ready: &Readiness, answer: Answer) {
        let mut lab = self.lab();
        let Some(slot) = lab.slots.get_mut(id) else {
            return;
        };
        if slot.generation != generation || slot.pid.is_none() {
            return;
        }
        slot.ready = true;
        if slot.state == State::Starting {
            slot.state = State::Running;
        }
        slot.note(&format!("ready: {}", describe(ready)));
        tracing::info!("{id} ready ({})", describe(ready));
        slot.address = Some(answer.address).filter(|a| !a.is_empty());
        slot.services = answer.service.into_iter().collect();
        self.changed.notify_all();
    }
}

/// The readiness in words, for the log.
fn describe(ready: &Readiness) -> String {
    match ready {
        Readiness::Started => "started".to_owned(),
        Readiness::Port { host, port } => {
            format!(
                "{} accepts connections",
                crate::net::join_host_port(host, *port)
            )
        }
        Readiness::Name { name, nameserver } => {
            format!("{name} is on name server {nameserver} and its daemon answers")
        }
    }
}

/// Opens (and closes) a TCP connection to `host:port`.
fn connect(host: &str, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + ASK_WITHIN;
    let addresses = (host, port)
        .to_socket_addrs()
        .map_err(|err| format!("cannot resolve {host}: {err}"))?;
    let mut last = format!("{host} has no address");
    for address in addresses {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&address, left) {
            Ok(_) => return Ok(()),
            Err(err) => last = format!("{address}: {err}"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_programs_with_a_slash_run_from_the_commands_folder() {
        let cwd = Path::new("/lab/drivers");
        assert_eq!(
            program_path("./laser.py", cwd),
            PathBuf::from("/lab/drivers/./laser.py")
        );
        assert_eq!(
            program_path("bin/server", cwd),
            PathBuf::from("/lab/drivers/bin/server")
        );
        assert_eq!(program_path("python3", cwd), PathBuf::from("python3"));
        assert_eq!(
            program_path("/usr/bin/env", cwd),
            PathBuf::from("/usr/bin/env")
        );
    }

    #[test]
    fn a_port_answers_once_something_listens() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        assert!(connect("127.0.0.1", port).is_ok());
        drop(listener);
        let err = connect("127.0.0.1", port).expect_err("nothing listens");
        assert!(err.contains("refused"), "{err}");
    }
}
