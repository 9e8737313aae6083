//! The counters behind `STATS`, shared by every thread of a server, and the
//! histogram of how late database replies leave.
//!
//! Relaxed atomics are enough: each counter is read on its own, to report a
//! number to a person, and no other memory is published through them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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

/// Width of one bucket of the lateness histogram.
const BUCKET_MICROS: u64 = 25;
/// 25 µs buckets up to 10 ms; later ones share the last bucket.
const BUCKETS: usize = 400;

/// A histogram of how late database replies leave (a loop's timer firing,
/// or a pool worker's `thread::sleep` returning), in 25 µs buckets. Any
/// thread may write or read it; relaxed atomics, like the counters.
pub struct Lateness {
    buckets: Box<[AtomicU64]>,
}

impl Default for Lateness {
    fn default() -> Self {
        Lateness {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Lateness {
    pub fn record(&self, due: Instant, fired: Instant) {
        let micros = fired.saturating_duration_since(due).as_micros() as u64;
        let bucket = ((micros / BUCKET_MICROS) as usize).min(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The `quantile` (0 to 1) of every histogram given, merged, in µs: the
    /// upper edge of its bucket, so the figure never flatters. `None`
    /// before any timer has fired.
    pub fn quantile_micros<'a>(
        all: impl Iterator<Item = &'a Lateness> + Clone,
        quantile: f64,
    ) -> Option<u64> {
        let count = |i: usize| -> u64 {
            let of_each = all.clone().map(|l| l.buckets[i].load(Ordering::Relaxed));
            of_each.sum()
        };
        let total: u64 = (0..BUCKETS).map(count).sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64 * quantile).ceil() as u64).max(1);
        let mut seen = 0;
        for i in 0..BUCKETS {
            seen += count(i);
            if seen >= rank {
                return Some((i as u64 + 1) * BUCKET_MICROS);
            }
        }
        Some(BUCKETS as u64 * BUCKET_MICROS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn quantiles_come_from_the_merged_buckets() {
        let (a, b) = (Lateness::default(), Lateness::default());
        let due = Instant::now();
        for _ in 0..98 {
            a.record(due, due + Duration::from_micros(10));
        }
        b.record(due, due + Duration::from_micros(2_000));
        b.record(due, due + Duration::from_micros(2_000));
        let both = [&a, &b];
        assert_eq!(Lateness::quantile_micros(both.into_iter(), 0.5), Some(25));
        assert_eq!(
            Lateness::quantile_micros(both.into_iter(), 0.99),
            Some(2_025)
        );
        let none = [&Lateness::default()];
        assert_eq!(Lateness::quantile_micros(none.into_iter(), 0.5), None);
    }
}
