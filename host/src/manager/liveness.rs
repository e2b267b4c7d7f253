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
//!   address, after its stdin has answered. The stdin answer says how many
//!   calls it is running. One that runs calls but does not answer is busy
//!   (every worker of a daemon in a driver call, or a multiplex daemon's
//!   one call that takes long): that is logged, when it starts and when
//!   it ends, but the component is not killed, since a driver call may
//!   rightly take long and killing it would abort what the instrument is
//!   doing. One that runs no call and still does not answer is stuck: it
//!   counts as a miss, as a silent stdin does.

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
use crate::tls::ClientTls;

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
            let miss = match self.asked_alive(id, generation, ended) {
                None if ended.load(Ordering::SeqCst) => return,
                None => Some(format!(
                    "no answer to a ping within {} s",
                    ALIVE_WITHIN.as_secs()
                )),
                Some(calls) => match (pyro_ping(&address, self.probe_tls(id)), calls) {
                    (Ok(()), _) => {
                        if !answering_calls {
                            self.note(id, &format!("answers calls at {address} again"));
                        }
                        answering_calls = true;
                        None
                    }
                    (Err(err), 0) => Some(format!(
                        "does not answer calls at {address} ({err}) while it runs none"
                    )),
                    (Err(err), calls) => {
                        if answering_calls {
                            let message = format!(
                                "busy: does not answer calls at {address} ({err}) while it runs \
                                 {calls}; not restarted for it"
                            );
                            tracing::warn!("{id} {message}");
                            self.note(id, &message);
                        }
                        answering_calls = false;
                        None
                    }
                },
            };
            let Some(miss) = miss else {
                missed = 0;
                continue;
            };
            missed += 1;
            self.note(id, &format!("{miss} ({missed} of {MISSES})"));
            if missed >= MISSES {
                let reason = format!("stopped answering: {miss}, {MISSES} times in a row; killed");
                tracing::error!("{id} {reason}");
                *hung.lock_unpoisoned() = Some(reason);
                process::kill(pid, Signal::Kill);
                return;
            }
        }
    }

    /// Sleeps `period`, or less if `ended` is set meanwhile; whether it
    /// was not.
    pub(super) fn sleep_unless_ended(&self, ended: &AtomicBool, period: Duration) -> bool {
        let lab = self.lab();
        let _ = sync::wait_until(&self.changed, lab, period, |_| ended.load(Ordering::SeqCst));
        !ended.load(Ordering::SeqCst)
    }

    /// What the component is probed over: TLS with its own certificate,
    /// when it has TLS.
    pub(super) fn probe_tls(&self, id: &ComponentId) -> Option<ClientTls> {
        let tls = self.lab().config.component_tls(id).cloned()?;
        let files = tls.files(&id.name, Some(&self.options.data_dir)).ok()?;
        match ClientTls::for_component(&files) {
            Ok(tls) => Some(tls),
            Err(err) => {
                tracing::warn!("{id}: cannot probe it over TLS: {err}");
                None
            }
        }
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
    /// [`ALIVE_WITHIN`]) for its answer: the calls it runs, or `None`
    /// without an answer.
    fn asked_alive(&self, id: &ComponentId, generation: u64, ended: &AtomicBool) -> Option<u64> {
        // Another run's, or exiting (the supervisor sees that): nothing to
        // ask, and nothing missed.
        const NOT_ASKED: Option<u64> = Some(1);
        let asked = Instant::now();
        let mut lab = self.lab();
        let Some(slot) = lab.slots.get_mut(id) else {
            return NOT_ASKED;
        };
        if slot.generation != generation {
            return NOT_ASKED;
        }
        let Some(stdin) = slot.stdin.as_mut() else {
            return NOT_ASKED;
        };
        let line = format!("{}\n", supervised::PING);
        if stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .is_err()
        {
            return NOT_ASKED;
        }
        let answered = |lab: &mut super::Lab| {
            ended.load(Ordering::SeqCst)
                || lab
                    .slots
                    .get(id)
                    .and_then(|slot| slot.alive_at)
                    .is_some_and(|at| at >= asked)
        };
        let (lab, in_time) = sync::wait_until(&self.changed, lab, ALIVE_WITHIN, answered);
        if !in_time || ended.load(Ordering::SeqCst) {
            return None;
        }
        lab.slots.get(id).map(|slot| slot.calls_in_progress)
    }

    /// Writes a line of the manager's own into the component's log.
    pub(super) fn note(&self, id: &ComponentId, text: &str) {
        if let Some(slot) = self.lab().slots.get(id) {
            slot.note(text);
        }
    }
}

/// Calls `ping` on the `Pyro.Daemon` object at `address` (a name server
/// has one too), over TLS with `tls`. Whatever it returns is an answer
/// (ours return true, stock Pyro5's None).
pub(super) fn pyro_ping(address: &str, tls: Option<ClientTls>) -> Result<(), String> {
    let uri = resolve(&format!("PYRO:Pyro.Daemon@{address}")).map_err(|err| err.to_string())?;
    let mut proxy = Proxy::new(uri);
    proxy.set_tls(tls);
    proxy.set_timeout(Some(PYRO_PING_WITHIN));
    let started = Instant::now();
    proxy
        .call::<pyrolab_plugin_api::Value>("ping", ())
        .map(|_| ())
        .map_err(|err| format!("{err}, after {:.1} s", started.elapsed().as_secs_f64()))
}
