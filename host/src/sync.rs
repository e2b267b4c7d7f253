//! Locks that outlive a panic.
//!
//! A `Mutex` is poisoned when a thread panics while holding it. Every lock
//! in the host guards state that each critical section leaves valid at
//! every step (a map gets an entry or loses one, a flag flips), and a
//! daemon must keep serving its other clients after one connection's
//! thread panicked, so the host takes poisoned locks as they are rather
//! than spreading the panic. This is the one place that says so.

use std::sync::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, WaitTimeoutResult,
};
use std::time::Duration;

/// [`Mutex::lock`] that takes a poisoned lock as it is.
pub trait LockUnpoisoned<T: ?Sized> {
    /// Locks, whether or not a thread panicked while holding the lock.
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> LockUnpoisoned<T> for Mutex<T> {
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// [`RwLock::read`] and [`RwLock::write`] that take a poisoned lock as it is.
pub trait RwLockUnpoisoned<T: ?Sized> {
    /// Locks for reading, whether or not a writer panicked.
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T>;
    /// Locks for writing, whether or not a writer panicked.
    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> RwLockUnpoisoned<T> for RwLock<T> {
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T> {
        self.write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Waits on `condvar` until `done` holds or `timeout` passes (whichever
/// first), taking a poisoned lock as it is; returns the guard and whether
/// `done` holds.
pub fn wait_until<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
    mut done: impl FnMut(&mut T) -> bool,
) -> (MutexGuard<'a, T>, bool) {
    let (guard, result): (MutexGuard<'a, T>, WaitTimeoutResult) = condvar
        .wait_timeout_while(guard, timeout, |state| !done(state))
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    (guard, !result.timed_out())
}

/// Waits on `condvar` until `done` holds, taking a poisoned lock as it is.
pub fn wait_for<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    mut done: impl FnMut(&mut T) -> bool,
) -> MutexGuard<'a, T> {
    condvar
        .wait_while(guard, |state| !done(state))
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `condvar` once, at most `timeout`, taking a poisoned lock as
/// it is: for a caller that also polls something the condition variable
/// is not told of.
pub fn wait_a_while<'a, T>(
    condvar: &Condvar,
    guard: MutexGuard<'a, T>,
    timeout: Duration,
) -> MutexGuard<'a, T> {
    condvar
        .wait_timeout(guard, timeout)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .0
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::thread;

    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panic_is_still_usable() {
        let shared = Arc::new(Mutex::new(1));
        let poisoner = Arc::clone(&shared);
        let _ = thread::spawn(move || {
            let _guard = poisoner.lock().unwrap();
            panic!("while holding the lock");
        })
        .join();
        assert!(shared.is_poisoned());
        *shared.lock_unpoisoned() += 1;
        assert_eq!(*shared.lock_unpoisoned(), 2);
    }

    #[test]
    fn waiting_ends_when_the_condition_holds_or_the_time_is_up() {
        let pair = Arc::new((Mutex::new(false), Condvar::new()));
        let setter = Arc::clone(&pair);
        let handle = thread::spawn(move || {
            *setter.0.lock_unpoisoned() = true;
            setter.1.notify_all();
        });
        let (guard, done) = wait_until(
            &pair.1,
            pair.0.lock_unpoisoned(),
            Duration::from_secs(10),
            |flag| *flag,
        );
        assert!(done && *guard);
        drop(guard);
        handle.join().unwrap();
        let (guard, done) = wait_until(
            &pair.1,
            pair.0.lock_unpoisoned(),
            Duration::from_millis(10),
            |_| false,
        );
        drop(guard);
        assert!(!done);
    }
}
