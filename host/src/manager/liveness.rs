//! Whether a running component still answers.
//!
//! A component can stop answering without exiting: stopped (`SIGSTOP`, a
//! frozen cgroup), or wedged. While one runs and is ready, its supervisor
//! asks it every [`PROBE_EVERY`] over two paths:
//!
//! - its stdin: a [`supervised::PING`] line, which the thread reading its
//!   stdin answers at once with [`Event::Alive`](crate::supervised::Event)
//!   on its stdout. No answer within [`ALIVE_WITHIN`], [`MISSES`] times in
//!   a row, means the process is not running: it is killed, and its
//!   restart policy decides what comes next, as after a crash.
//! - its own protocol: a Pyro `ping` of `Pyro.Daemon` at its bound
//!   address. A component that answers its stdin but not this is running
//!   but not answering calls (every worker of a daemon in a driver call
//!   that does not return, say): that is logged, when it starts and when
//!   it ends, but the component is not killed, since a driver call may
//!   legitimately take long (a multiplex daemon runs one call at a time),
//!   and killing it would abort what the instrument is doing.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::Manager;
use super::process::{self, Signal};
use crate::client::{Proxy, resolve};
use crate::lab::status::ComponentId;
use crate::supervised;
use crate::sync::{self, LockUnpoisoned};

/// How often a ready component is asked whether it answers.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// How soon a running process answers a ping on its stdin (it takes
/// microseconds; this allows for a machine under heavy load).
pub const ALIVE_WITHIN: Duration = Duration::from_secs(2);
/// Unanswered pings in a row after which the process is killed.
pub const MISSES: u32 = 3;
/// How long the Pyro `ping` may take.
const PYRO_PING_WITHIN: Duration = Duration::from_secs(5);

impl Manager {
    /// Asks the component's process `pid` whether it answers until `ended`;
    /// kills it when it has stopped answering, leaving the reason in
    /// `hung`.
    pub(super) fn watch_liveness(
        &self,
        id: &ComponentId,
        generation: u64,
        pid: u32,
        ended: &AtomicBool,
        hung: &Mutex<Option<String>>,
    ) {
        let mut missed = 0;
        let mut answering_calls = true;
        while self.sleep_unless_ended(ended, PROBE_EVERY) {
            let Some(address) = self.probe_address(id, generation) else {
                continue;
            };
            if self.asked_alive(id, generation, ended) {
                missed = 0;
            } else {
                if ended.load(Ordering::SeqCst) {
                    return;
                }
                missed += 1;
                self.note(
                    id,
                    &format!(
                        "no answer to a ping within {} s ({missed} of {MISSES})",
                        ALIVE_WITHIN.as_secs()
                    ),
                );
                if missed >= MISSES {
                    let reason = format!(
                        "stopped answering: no answer to a ping within {} s, {MISSES} times in a \
                         row; killed",
                        ALIVE_WITHIN.as_secs()
                    );
                    tracing::error!("{id} {reason}");
                    *hung.lock_unpoisoned() = Some(reason);
                    process::kill(pid, Signal::Kill);
                    return;
                }
                continue;
            }
            let pinged = pyro_ping(&address);
            match (&pinged, answering_calls) {
                (Err(err), true) => {
                    let message = format!(
                        "runs, but does not answer calls at {address} ({err}): every worker busy \
                         in a driver call, or stuck; not restarted for it"
                    );
                    tracing::warn!("{id} {message}");
                    self.note(id, &message);
                }
                (Ok(()), false) => self.note(id, &format!("answers calls at {address} again")),
                _ => {}
            }
            answering_calls = pinged.is_ok();
        }
    }

    /// Sleeps `period`, or less if `ended` is set meanwhile; whether it
    /// was not.
    fn sleep_unless_ended(&self, ended: &AtomicBool, period: Duration) -> bool {
        let lab = self.lab();
        let _ = sync::wait_until(&self.changed, lab, period, |_| ended.load(Ordering::SeqCst));
        !ended.load(Ordering::SeqCst)
    }

    /// Where to probe the component, if its current process is ready.
    fn probe_address(&self, id: &ComponentId, generation: u64) -> Option<String> {
        let lab = self.lab();
        let slot = lab.slots.get(id)?;
        (slot.generation == generation && slot.ready && slot.pid.is_some())
            .then(|| slot.probe_address.clone())
            .flatten()
    }

    /// Writes a ping on the component's stdin and waits (at most
    /// [`ALIVE_WITHIN`]) for its answer.
    fn asked_alive(&self, id: &ComponentId, generation: u64, ended: &AtomicBool) -> bool {
        let asked = Instant::now();
        let mut lab = self.lab();
        let Some(slot) = lab.slots.get_mut(id) else {
            return true;
        };
        if slot.generation != generation {
            return true;
        }
        let Some(stdin) = slot.stdin.as_mut() else {
            return true;
        };
        let line = format!("{}\n", supervised::PING);
        if stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .is_err()
        {
            // Its stdin is gone: it is exiting, which the supervisor sees.
            return true;
        }
        let answered = |lab: &mut super::Lab| {
            ended.load(Ordering::SeqCst)
                || lab
                    .slots
                    .get(id)
                    .and_then(|slot| slot.alive_at)
                    .is_some_and(|at| at >= asked)
        };
        let (_lab, in_time) = sync::wait_until(&self.changed, lab, ALIVE_WITHIN, answered);
        in_time
    }

    /// Writes a line of the manager's own into the component's log.
    fn note(&self, id: &ComponentId, text: &str) {
        if let Some(slot) = self.lab().slots.get(id) {
            slot.note(text);
        }
    }
}

/// Calls `ping` on the `Pyro.Daemon` object at `address` (a name server
/// has one too).
fn pyro_ping(address: &str) -> Result<(), String> {
    let uri = resolve(&format!("PYRO:Pyro.Daemon@{address}")).map_err(|err| err.to_string())?;
    let mut proxy = Proxy::new(uri);
    proxy.set_timeout(Some(PYRO_PING_WITHIN));
    let started = Instant::now();
    proxy
        .call::<bool>("ping", ())
        .map(|_| ())
        .map_err(|err| format!("{err}, after {:.1} s", started.elapsed().as_secs_f64()))
}
