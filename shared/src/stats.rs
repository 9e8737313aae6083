//! The counters behind `STATS`, shared by every thread of a server.
//!
//! Relaxed atomics are enough: each counter is read on its own, to report a
//! number to a person, and no other memory is published through them.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted and not yet closed (queued ones included).
    pub open_connections: AtomicU64,
    /// Response lines produced so far, over every connection.
    pub requests_answered: AtomicU64,
    /// Connections turned away with `ERR busy`.
    pub busy_rejections: AtomicU64,
    /// Connections closed because they sent no complete request in time.
    pub idle_closes: AtomicU64,
    /// Requests whose handling panicked, answered `ERR internal error`.
    pub panics: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Never below zero: a miscount must not wrap a gauge to 2^64 (a
    /// server would then think itself full for ever).
    pub fn sub(counter: &AtomicU64, n: u64) {
        let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
            Some(v.saturating_sub(n))
        });
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
