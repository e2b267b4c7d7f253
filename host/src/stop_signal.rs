//! A stop signal for background threads that work in rounds: they sleep
//! between rounds with [`StopSignal::wait`] and wake at once when stopped.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Shared between a background thread and its owner.
#[derive(Clone, Default)]
pub struct StopSignal {
    inner: Arc<(Mutex<bool>, Condvar)>,
}

impl StopSignal {
    /// A signal not yet given.
    pub fn new() -> Self {
        StopSignal::default()
    }

    /// Tells the thread to stop (and wakes it).
    pub fn stop(&self) {
        let (stopped, wake) = &*self.inner;
        *stopped.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
    }

    /// Sleeps for `period` unless stopped; returns whether to go on.
    pub fn wait(&self, period: Duration) -> bool {
        let (stopped, wake) = &*self.inner;
        let guard = stopped.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = wake
            .wait_timeout_while(guard, period, |stopped| !*stopped)
            .unwrap_or_else(|p| p.into_inner());
        !*guard
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
}
