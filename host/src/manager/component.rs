//! One component under supervision: its child process, its output, its
//! restarts.
//!
//! Each started component has a supervisor thread. It starts the child
//! (`pyrolab-host run KIND NAME --config run/config.yaml --supervised`),
//! logs its output, learns from its event lines when it is ready, and
//! when the child ends unasked, starts it again after a back-off delay
//! (0.5 s, doubling to 30 s), as its `restart` policy says
//! ([`RestartPolicy`]). A component that crashes [`CRASH_LOOP_LIMIT`]
//! times in a row, each time within [`STABLE_AFTER`] of starting, is
//! crash-looping: with `restart: always` (the default) it is retried every
//! [`MAX_BACKOFF`] for as long as it takes, and `ps` says so; with
//! `on-failure` it is marked failed and left alone. One that fails before
//! it was ever ready when `fail_fast` (how `up`, `start` and `reload`
//! start components: a plugin that is missing stays missing, and the user
//! wants the reason now, not a retry loop) is marked failed whatever its
//! policy.

use crate::sync::{self, LockUnpoisoned};
use std::collections::BTreeMap;
use std::io::PipeReader;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use super::process::{self, Signal};
use super::{Manager, READY_TIMEOUT, foreign};
use crate::config::LaunchConfig;
use crate::config::schema::RestartPolicy;
use crate::lab::logfile::SharedLog;
use crate::lab::status::{ComponentId, Kind, State};
use crate::supervised::{self, Event, RegistrationOutcome, ServedService};

/// The first restart delay; it doubles with each crash in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest restart delay, and how often a crash-looping component
/// with `restart: always` is retried.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Crashes in a row after which a component is marked failed.
pub const CRASH_LOOP_LIMIT: u32 = 5;
/// A component that ran this long before crashing is not crash-looping:
/// its count of crashes in a row starts again.
pub const STABLE_AFTER: Duration = Duration::from_secs(60);

/// What the manager knows about one component.
pub struct Slot {
    /// Its configuration, as compared by `reload`.
    pub fingerprint: String,
    pub state: State,
    /// Whether it should be running (false once a stop was asked for).
    pub want_running: bool,
    /// Bumped by every start and stop request, so that a supervisor of an
    /// earlier request leaves the component alone.
    pub generation: u64,
    pub pid: Option<u32>,
    /// The child's stdin; while it is open, the child keeps running.
    pub stdin: Option<ChildStdin>,
    /// When the current process started.
    pub since: Option<(SystemTime, Instant)>,
    /// Whether the current process said it is ready.
    pub ready: bool,
    pub restarts: u32,
    pub last_error: Option<String>,
    pub address: Option<String>,
    /// Where the manager reaches it to ask whether it answers (its bound
    /// address; `address` may be a NAT one).
    pub probe_address: Option<String>,
    /// When it last said it runs ([`Event::Alive`]), and how many calls
    /// it was running then.
    pub alive_at: Option<Instant>,
    pub calls_in_progress: u64,
    pub services: Vec<ServedService>,
    pub registrations: Vec<RegistrationOutcome>,
    /// Service → lock holder.
    pub locks: BTreeMap<String, String>,
    pub supervisor: Option<JoinHandle<()>>,
    pub log: SharedLog,
    pub log_path: PathBuf,
}

impl Slot {
    pub fn new(fingerprint: String, log: SharedLog, log_path: PathBuf) -> Slot {
        Slot {
            fingerprint,
            state: State::Stopped,
            want_running: false,
            generation: 0,
            pid: None,
            stdin: None,
            since: None,
            ready: false,
            restarts: 0,
            last_error: None,
            address: None,
            probe_address: None,
            alive_at: None,
            calls_in_progress: 0,
            services: Vec::new(),
            registrations: Vec::new(),
            locks: BTreeMap::new(),
            supervisor: None,
            log,
            log_path,
        }
    }

    /// Writes a line of the manager's own into the component's log.
    pub fn note(&self, text: &str) {
        self.log
            .lock_unpoisoned()
            .line(&format!("[manager] {text}"));
    }

    /// Whether a start request may start it now.
    pub fn startable(&self) -> bool {
        matches!(self.state, State::Stopped | State::Failed)
            && self.supervisor.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

/// How one run of a child ended.
struct Exit {
    was_ready: bool,
    ran_for: Duration,
    reason: String,
    /// It exited by itself with status 0 (not a crash).
    clean: bool,
}

/// The restart policy of component `id` in `config`.
fn restart_policy(config: &LaunchConfig, id: &ComponentId) -> RestartPolicy {
    let policy = match id.kind {
        Kind::Nameserver => config.nameservers.get(&id.name).map(|ns| ns.restart),
        Kind::Daemon => config.daemons.get(&id.name).map(|daemon| daemon.restart),
        Kind::Command => config.commands.get(&id.name).map(|command| command.restart),
    };
    policy.unwrap_or(RestartPolicy::Always)
}

/// How long component `id` of `config` has to become ready.
pub(super) fn ready_timeout(config: &LaunchConfig, id: &ComponentId) -> Duration {
    match id.kind {
        Kind::Command => config
            .commands
            .get(&id.name)
            .and_then(|command| Duration::try_from_secs_f64(command.ready_timeout).ok())
            .unwrap_or(READY_TIMEOUT),
        Kind::Nameserver | Kind::Daemon => READY_TIMEOUT,
    }
}

/// The restart delay after `crashes` crashes in a row.
fn backoff(crashes: u32) -> Duration {
    let doublings = crashes.saturating_sub(1).min(16);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

impl Manager {
    /// The supervisor thread's body: runs the component until it is asked
    /// to stop or gives up.
    pub(super) fn supervise(self: &Arc<Self>, id: &ComponentId, generation: u64, fail_fast: bool) {
        let mut fail_fast = fail_fast;
        let mut crashes_in_row = 0u32;
        loop {
            let exit = match self.spawn_child(id) {
                Ok((child, output)) => self.watch(id, generation, child, output),
                Err(err) => Exit {
                    was_ready: false,
                    ran_for: Duration::ZERO,
                    reason: err,
                    clean: false,
                },
            };
            let mut lab = self.lab();
            let policy = restart_policy(&lab.config, id);
            if id.kind == Kind::Nameserver {
                self.nameserver_gone(&mut lab, &id.name);
            }
            let Some(slot) = lab.slots.get_mut(id) else {
                return;
            };
            slot.pid = None;
            slot.stdin = None;
            slot.since = None;
            slot.ready = false;
            slot.locks.clear();
            if !slot.want_running || slot.generation != generation {
                // A stop was asked for (a start waits until this thread
                // is done, so the slot is still this thread's).
                slot.state = State::Stopped;
                slot.note("stopped");
                self.record_children(&lab);
                self.changed.notify_all();
                return;
            }
            slot.last_error = Some(exit.reason.clone());
            if !exit.was_ready && fail_fast {
                slot.state = State::Failed;
                slot.note(&format!("failed to start: {}", exit.reason));
                tracing::error!("{id} failed to start: {}", exit.reason);
                self.record_children(&lab);
                self.changed.notify_all();
                return;
            }
            let stays_down = match policy {
                RestartPolicy::Never => Some(if exit.clean {
                    State::Stopped
                } else {
                    State::Failed
                }),
                RestartPolicy::OnFailure if exit.clean => Some(State::Stopped),
                _ => None,
            };
            if let Some(state) = stays_down {
                let reason = format!(
                    "ended ({}); not restarted (restart: {})",
                    exit.reason,
                    policy.as_str()
                );
                slot.note(&reason);
                tracing::warn!("{id} {reason}");
                if state == State::Failed {
                    slot.last_error = Some(reason);
                }
                slot.state = state;
                self.record_children(&lab);
                self.changed.notify_all();
                return;
            }
            if exit.ran_for >= STABLE_AFTER {
                crashes_in_row = 0;
            }
            crashes_in_row += 1;
            let looping = crashes_in_row >= CRASH_LOOP_LIMIT;
            if looping && policy == RestartPolicy::OnFailure {
                let reason = format!(
                    "crashed {crashes_in_row} times in a row, each within {} s of starting; gave up (last: {})",
                    STABLE_AFTER.as_secs(),
                    exit.reason
                );
                slot.note(&reason);
                tracing::error!("{id} {reason}");
                slot.last_error = Some(reason);
                slot.state = State::Failed;
                self.record_children(&lab);
                self.changed.notify_all();
                return;
            }
            let delay = if looping {
                MAX_BACKOFF
            } else {
                backoff(crashes_in_row)
            };
            slot.restarts += 1;
            slot.state = State::Restarting;
            let message = if looping {
                let message = format!(
                    "crash-looping: crashed {crashes_in_row} times in a row, each within {} s of \
                     starting; retrying every {} s (restart: always; last: {})",
                    STABLE_AFTER.as_secs(),
                    MAX_BACKOFF.as_secs(),
                    exit.reason
                );
                slot.last_error = Some(message.clone());
                message
            } else {
                format!(
                    "crashed ({}); restarting in {:.1} s (restart {})",
                    exit.reason,
                    delay.as_secs_f64(),
                    slot.restarts
                )
            };
            slot.note(&message);
            tracing::warn!("{id} {message}");
            self.record_children(&lab);
            self.changed.notify_all();
            // Sleep out the back-off, unless told to stop meanwhile.
            let unwanted = |lab: &mut super::Lab| {
                let slot = lab
                    .slots
                    .get(id)
                    .expect("slots are removed only when stopped");
                !slot.want_running || slot.generation != generation
            };
            let (mut lab, stopped) = sync::wait_until(&self.changed, lab, delay, unwanted);
            let slot = lab
                .slots
                .get_mut(id)
                .expect("slots are removed only when stopped");
            if stopped {
                slot.state = State::Stopped;
                self.changed.notify_all();
                return;
            }
            slot.state = State::Starting;
            drop(lab);
            fail_fast = false;
        }
    }

    /// Starts the component's process. Its stdout and stderr share one
    /// pipe, so that its lines (and events) arrive in the order it wrote
    /// them.
    fn spawn_child(&self, id: &ComponentId) -> Result<(Child, PipeReader), String> {
        let (output, input) =
            std::io::pipe().map_err(|err| format!("cannot make a pipe: {err}"))?;
        let (mut command, program) = if id.kind == Kind::Command {
            let config = self.lab().config.commands.get(&id.name).cloned();
            let config = config.ok_or_else(|| format!("there is no {id} in the configuration"))?;
            let command = foreign::process(&config, input)
                .map_err(|err| format!("cannot start {:?}: {err}", config.run))?;
            (
                command,
                format!("{:?} in {}", config.run, config.cwd.display()),
            )
        } else {
            let mut command = Command::new(&self.options.exe);
            command
                .args(&self.options.child_args)
                .args(["run", id.kind.as_str(), &id.name, "--config"])
                .arg(self.active_config_path())
                .arg("--supervised")
                .stdin(Stdio::piped())
                .stdout(
                    input
                        .try_clone()
                        .map_err(|err| format!("cannot share a pipe: {err}"))?,
                )
                .stderr(input);
            (command, self.options.exe.display().to_string())
        };
        #[cfg(unix)]
        {
            // Its own process group: a Ctrl-C meant for a manager in the
            // foreground reaches the manager alone, which then stops the
            // components in order; and a signal to the group reaches
            // whatever the component started (a command's shell and its
            // children).
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        // `command` (with our copies of the pipe's writing end) is dropped
        // on return, so the reader sees the end when the child exits.
        let child = command
            .spawn()
            .map_err(|err| format!("cannot start {program}: {err}"))?;
        Ok((child, output))
    }

    /// Runs one child to its end: logs its output, handles its events,
    /// kills it if it is not ready in time.
    fn watch(
        self: &Arc<Self>,
        id: &ComponentId,
        generation: u64,
        mut child: Child,
        output: PipeReader,
    ) -> Exit {
        let pid = child.id();
        let started = Instant::now();
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        let log = {
            let mut lab = self.lab();
            let slot = lab
                .slots
                .get_mut(id)
                .expect("a started component has a slot");
            slot.pid = Some(pid);
            slot.stdin = child.stdin.take();
            slot.since = Some((SystemTime::now(), started));
            slot.ready = false;
            slot.note(&format!("started (pid {pid})"));
            if !slot.want_running || slot.generation != generation {
                process::kill(pid, Signal::Term);
            }
            self.record_children(&lab);
            self.changed.notify_all();
            lab.slots[id].log.clone()
        };
        let reader = {
            let manager = Arc::clone(self);
            let id = id.clone();
            let tail = Arc::clone(&tail);
            // A foreign program's lines are all output: it does not speak
            // the event protocol, and must not be able to fake it.
            let speaks_events = id.kind != Kind::Command;
            thread::spawn(move || {
                for_each_line(BufReader::new(output), |line| {
                    match supervised::parse(line).filter(|_| speaks_events) {
                        Some(event) => manager.on_event(&id, generation, event),
                        None => {
                            log.lock_unpoisoned().line(line);
                            tail.lock_unpoisoned().push(line);
                        }
                    }
                });
            })
        };
        let exit: Arc<Mutex<Option<std::io::Result<ExitStatus>>>> = Arc::default();
        let waiter = {
            let exit = Arc::clone(&exit);
            let manager = Arc::clone(self);
            thread::spawn(move || {
                let status = child.wait();
                let _lab = manager.lab();
                *exit.lock_unpoisoned() = Some(status);
                manager.changed.notify_all();
            })
        };
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hung: Arc<Mutex<Option<String>>> = Arc::default();
        let prober = {
            let manager = Arc::clone(self);
            let id = id.clone();
            let (ended, hung) = (Arc::clone(&ended), Arc::clone(&hung));
            thread::spawn(move || match id.kind {
                Kind::Command => manager.watch_command(&id, generation, &ended),
                Kind::Nameserver | Kind::Daemon => {
                    manager.watch_liveness(&id, generation, pid, &ended, &hung)
                }
            })
        };
        let ready_timeout = ready_timeout(&self.lab().config, id);
        let mut not_ready = None;
        let mut lab = self.lab();
        let was_ready = loop {
            let ready = lab.slots.get(id).is_some_and(|slot| slot.ready);
            if exit.lock_unpoisoned().is_some() {
                break ready;
            }
            if !ready && not_ready.is_none() && started.elapsed() >= ready_timeout {
                not_ready = Some(format!(
                    "not ready within {} s; killed",
                    ready_timeout.as_secs_f64()
                ));
                process::kill(pid, Signal::Kill);
            }
            lab = sync::wait_a_while(&self.changed, lab, Duration::from_millis(250));
        };
        drop(lab);
        ended.store(true, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_all();
        let _ = prober.join();
        let not_ready = not_ready.or_else(|| hung.lock_unpoisoned().take());
        let _ = reader.join();
        let _ = waiter.join();
        let status = exit.lock_unpoisoned().take().expect("the waiter set it");
        let clean = not_ready.is_none() && status.as_ref().is_ok_and(ExitStatus::success);
        let reason = match (not_ready, status) {
            (Some(reason), _) => reason,
            (None, Ok(status)) => tail.lock_unpoisoned().reason(status),
            (None, Err(err)) => format!("cannot wait for pid {pid}: {err}"),
        };
        Exit {
            was_ready,
            ran_for: started.elapsed(),
            reason,
            clean,
        }
    }

    /// Applies an event line of the component's current process.
    fn on_event(&self, id: &ComponentId, generation: u64, event: Event) {
        let mut lab = self.lab();
        let Some(slot) = lab.slots.get_mut(id) else {
            return;
        };
        if slot.generation != generation {
            return;
        }
        match event {
            Event::Alive { calls_in_progress } => {
                slot.alive_at = Some(Instant::now());
                slot.calls_in_progress = calls_in_progress;
            }
            Event::Ready {
                address,
                services,
                registrations,
                local_address,
            } => {
                slot.probe_address = Some(local_address.unwrap_or_else(|| address.clone()));
                slot.ready = true;
                if slot.state == State::Starting {
                    slot.state = State::Running;
                }
                slot.note(&format!("ready at {address}"));
                for failed in registrations.iter().filter(|r| r.error.is_some()) {
                    slot.note(&format!(
                        "not yet registered with name server {}: {} ({}); the daemon keeps trying",
                        failed.nameserver,
                        failed.name,
                        failed.error.as_deref().unwrap_or_default()
                    ));
                }
                tracing::info!("{id} ready at {address}");
                slot.address = Some(address);
                slot.services = services;
                slot.registrations = registrations;
                if id.kind == Kind::Nameserver {
                    self.nameserver_ready(&mut lab, &id.name);
                }
            }
            Event::Registrations { registrations } => {
                for outcome in &registrations {
                    let before = slot
                        .registrations
                        .iter()
                        .find(|r| r.nameserver == outcome.nameserver && r.name == outcome.name);
                    if before.map(|b| &b.error) != Some(&outcome.error) {
                        slot.note(&match &outcome.error {
                            None => format!(
                                "registered with name server {}: {}",
                                outcome.nameserver, outcome.name
                            ),
                            Some(error) => format!(
                                "not registered with name server {}: {} ({error}); the daemon keeps trying",
                                outcome.nameserver, outcome.name
                            ),
                        });
                    }
                }
                slot.registrations = registrations;
            }
            Event::Lock { service, holder } => match holder {
                Some(holder) => {
                    slot.locks.insert(service, holder);
                }
                None => {
                    slot.locks.remove(&service);
                }
            },
        }
        self.changed.notify_all();
    }
}

/// The longest output line kept whole; the rest of a longer one is cut
/// off (a program writing megabytes without a newline cannot make the
/// manager hold them).
const MAX_OUTPUT_LINE: usize = 64 * 1024;

/// Calls `each` with every line of `output` until its end: bytes that are
/// not UTF-8 are replaced (a foreign program may write anything), and a
/// line longer than [`MAX_OUTPUT_LINE`] is cut, marked `…`.
fn for_each_line(mut output: impl BufRead, mut each: impl FnMut(&str)) {
    let mut line = Vec::new();
    let mut cut = false;
    loop {
        let chunk = match output.fill_buf() {
            Ok([]) => break,
            Ok(chunk) => chunk,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let (part, ends_line) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (&chunk[..at], Some(at + 1)),
            None => (chunk, None),
        };
        let room = MAX_OUTPUT_LINE.saturating_sub(line.len());
        cut |= part.len() > room;
        line.extend_from_slice(&part[..part.len().min(room)]);
        let used = ends_line.unwrap_or(chunk.len());
        output.consume(used);
        if ends_line.is_some() {
            emit_line(&mut line, &mut cut, &mut each);
        }
    }
    if !line.is_empty() {
        emit_line(&mut line, &mut cut, &mut each);
    }
}

fn emit_line(line: &mut Vec<u8>, cut: &mut bool, each: &mut impl FnMut(&str)) {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    let mut text = String::from_utf8_lossy(line).into_owned();
    if *cut {
        text.push('…');
    }
    each(&text);
    line.clear();
    *cut = false;
}

/// The error lines of a child's output, to say why it ended.
#[derive(Default)]
struct StderrTail {
    /// `error: ...` lines and panic messages since the child last showed
    /// it was still at work (the first few): a driver's panic that the
    /// daemon turned into an exception, and served on after, is not why
    /// it ended later.
    errors: Vec<String>,
    /// The last line.
    last: Option<String>,
    /// A panic's first line (`thread 'x' panicked at FILE:LINE:COL:`),
    /// waiting for the message on the next line.
    panic: Option<String>,
}

impl StderrTail {
    const MAX_ERRORS: usize = 8;
    const MAX_LINE: usize = 500;

    fn push(&mut self, line: &str) {
        let mut line = line.trim().to_owned();
        if line.is_empty() {
            return;
        }
        if line.len() > Self::MAX_LINE {
            let mut end = Self::MAX_LINE;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push('…');
        }
        if let Some(panic) = self.panic.take() {
            if self.errors.len() < Self::MAX_ERRORS {
                self.errors.push(format!("{panic} {line}"));
            }
        } else if let Some(error) = line.strip_prefix("error: ") {
            if self.errors.len() < Self::MAX_ERRORS {
                self.errors.push(error.to_owned());
            }
        } else if line.contains("panicked at") {
            self.panic = Some(line.clone());
        } else if shows_it_at_work(&line) {
            // Those errors did not end it.
            self.errors.clear();
        }
        self.last = Some(line);
    }

    fn reason(&self, status: ExitStatus) -> String {
        let exit = process::describe_exit(status);
        if let Some(panic) = &self.panic {
            // Panicked on its very last line.
            return format!("{exit}: {panic}");
        }
        if !self.errors.is_empty() {
            return format!("{exit}: {}", self.errors.join("; "));
        }
        match (&self.last, status.code()) {
            (Some(last), Some(code)) if code != 0 => format!("{exit}; its last words: {last}"),
            _ => exit,
        }
    }
}

/// Whether `line` shows the child going on with its work: not part of
/// the report of an error before it (Rust's note on backtraces, a
/// backtrace's lines) and not an error of its own (`ERROR` level).
fn shows_it_at_work(line: &str) -> bool {
    let reporting = line.starts_with("note: ")
        || line.starts_with("stack backtrace")
        || line.starts_with("at ")
        || line.split_once(':').is_some_and(|(frame, _)| {
            !frame.is_empty() && frame.chars().all(|c| c.is_ascii_digit())
        });
    !reporting && !line.contains(" ERROR ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_panic_the_daemon_served_on_after_is_not_blamed_for_a_later_crash() {
        use std::os::unix::process::ExitStatusExt;
        let mut tail = StderrTail::default();
        tail.push("thread 'worker' panicked at plugins/faulty/src/lib.rs:40:9:");
        tail.push("the driver gave up");
        tail.push("note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace");
        tail.push("2026-12-02T03:30:00Z  WARN pyrolab_host::daemon: call failed: RuntimeError");
        tail.push("2026-12-02T03:30:01Z  INFO pyrolab_host::daemon: served");
        assert_eq!(tail.reason(ExitStatus::from_raw(6)), "killed by SIGABRT");
        // A panic that ended it is still named.
        tail.push("thread 'worker' panicked at src/lib.rs:1:1:");
        tail.push("fatal");
        tail.push("note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace");
        assert_eq!(
            tail.reason(ExitStatus::from_raw(6)),
            "killed by SIGABRT: thread 'worker' panicked at src/lib.rs:1:1: fatal"
        );
    }

    #[test]
    fn output_lines_survive_bad_bytes_and_are_cut_when_too_long() {
        let mut output = b"first\r\nnot \xff utf-8\n".to_vec();
        output.extend(std::iter::repeat_n(b'x', MAX_OUTPUT_LINE + 10));
        output.extend_from_slice(b"\nlast without newline");
        let mut lines = Vec::new();
        // A small buffer, so lines span reads.
        for_each_line(BufReader::with_capacity(7, output.as_slice()), |line| {
            lines.push(line.to_owned())
        });
        assert_eq!(
            lines.len(),
            4,
            "{:?}",
            lines.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        assert_eq!(lines[0], "first");
        assert_eq!(lines[1], "not \u{fffd} utf-8");
        assert_eq!(lines[2].len(), MAX_OUTPUT_LINE + '…'.len_utf8());
        assert!(lines[2].ends_with('…'));
        assert_eq!(lines[3], "last without newline");
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(7), Duration::from_secs(30));
        assert_eq!(backoff(1000), Duration::from_secs(30));
    }

    #[cfg(unix)]
    #[test]
    fn the_reason_is_the_error_lines() {
        use std::os::unix::process::ExitStatusExt;
        let mut tail = StderrTail::default();
        tail.push("INFO loading");
        tail.push("error: service x: plugin not found");
        tail.push("error: daemon lab: 1 of its services could not be loaded");
        assert_eq!(
            tail.reason(ExitStatus::from_raw(1 << 8)),
            "exited with status 1: service x: plugin not found; daemon lab: 1 of its services could not be loaded"
        );
        let mut panicked = StderrTail::default();
        panicked.push("thread 'main' panicked at src/time.rs:962:23:");
        panicked.push("cannot convert float seconds to Duration: value is too big");
        panicked
            .push("note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace");
        assert_eq!(
            panicked.reason(ExitStatus::from_raw(101 << 8)),
            "exited with status 101: thread 'main' panicked at src/time.rs:962:23: cannot convert float seconds to Duration: value is too big"
        );
        let mut quiet = StderrTail::default();
        quiet.push("INFO serving");
        assert_eq!(quiet.reason(ExitStatus::from_raw(9)), "killed by SIGKILL");
    }
}
