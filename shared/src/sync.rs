//! Locking that survives a panic elsewhere.
//!
//! A `Mutex` is "poisoned" when a thread panics while holding it, in case
//! the data inside was left half-updated, and `lock` then returns an error.
//! Every lock in this project guards data that no code leaves half-updated
//! (a push, a pop, an insert, a flag), so a poisoned lock is still good to
//! use; refusing it would turn one caught panic into a server that stops.

use std::sync::{Condvar, Mutex, MutexGuard};

/// `mutex`, locked, poisoned or not.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Waits on `condvar`, giving `guard`'s lock up meanwhile; it comes back
/// locked, poisoned or not.
pub fn wait<'a, T>(condvar: &Condvar, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    condvar
        .wait(guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
