//! A stop signal for background threads that work in rounds: they sleep
//! between rounds with [`StopSignal::wait`] and wake at once when stopped,
//! or when nudged to do a round now.

use crate::sync::LockUnpoisoned;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Shared between a background thread and its owner.
#[derive(Clone, Default)]
pub struct StopSignal {
    inner: Arc<(Mutex<Flags>, Condvar)>,
}

#[derive(Default)]
struct Flags {
    stopped: bool,
    nudged: bool,
}

impl StopSignal {
    /// A signal not yet given.
    pub fn new() -> Self {
        StopSignal::default()
    }

    /// Tells the thread to stop (and wakes it).
    pub fn stop(&self) {
        let (flags, wake) = &*self.inner;
        flags.lock_unpoisoned().stopped = true;
        wake.notify_all();
    }

    /// Asks the thread for a round now (and wakes it).
    pub fn nudge(&self) {
        let (flags, wake) = &*self.inner;
        flags.lock_unpoisoned().nudged = true;
        wake.notify_all();
    }

    /// Whether the thread was nudged since it last asked; clears it.
    pub fn take_nudge(&self) -> bool {
        let (flags, _) = &*self.inner;
        std::mem::take(&mut flags.lock_unpoisoned().nudged)
    }

    /// Sleeps for `period` unless stopped or nudged; returns whether to go
    /// on.
    pub fn wait(&self, period: Duration) -> bool {
        let (flags, wake) = &*self.inner;
        let (guard, _) = crate::sync::wait_until(wake, flags.lock_unpoisoned(), period, |flags| {
            flags.stopped || flags.nudged
        });
        !guard.stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn stopping_wakes_a_waiting_thread_at_once() {
        let signal = StopSignal::new();
        let waiter = signal.clone();
        let started = Instant::now();
        let thread = std::thread::spawn(move || waiter.wait(Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(50));
        signal.stop();
        assert!(!thread.join().unwrap());
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!signal.wait(Duration::from_secs(30)), "stays stopped");
    }

    #[test]
    fn a_nudge_wakes_a_waiting_thread_once() {
        let signal = StopSignal::new();
        let waiter = signal.clone();
        let thread = std::thread::spawn(move || {
            let went_on = waiter.wait(Duration::from_secs(30));
            (went_on, waiter.take_nudge(), waiter.take_nudge())
        });
        std::thread::sleep(Duration::from_millis(50));
        signal.nudge();
        assert_eq!(thread.join().unwrap(), (true, true, false));
    }
}
