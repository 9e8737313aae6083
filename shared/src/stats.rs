//! The counters behind `STATS`, shared by every thread of a server; the
//! histogram of how late database replies leave; and the `STATS` line both
//! servers build from them.
//!
//! Relaxed atomics are enough: each counter is read on its own, to report a
//! number to a person, and no other memory is published through them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::protocol::response;

/// One number any thread may change or read.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Never below zero: a miscount must not wrap a gauge to 2^64 (a
    /// server would then think itself full for ever).
    pub fn sub(&self, n: u64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                Some(v.saturating_sub(n))
            });
    }

    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Counters {
    /// Connections accepted and not yet closed (queued ones included).
    pub open_connections: Counter,
    /// Response lines produced so far, over every connection.
    pub requests_answered: Counter,
    /// Connections turned away with `ERR busy`.
    pub busy_rejections: Counter,
    /// Connections closed because they sent no complete request in time,
    /// or their output made no progress in time.
    pub idle_closes: Counter,
    /// Connections closed because a read, a write or the closing shutdown
    /// failed (a reset, a broken pipe).
    pub error_closes: Counter,
    /// Requests whose handling panicked, answered `ERR internal error`.
    pub panics: Counter,
}

/// Why a server closed a connection, as `STATS` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Everything asked was answered: the client left or quit, or the
    /// server drained it at shutdown. Not counted.
    Finished,
    /// No complete request for the idle timeout, or output stalled for the
    /// write timeout: `idle_closes`.
    TimedOut,
    /// A read, a write or the closing shutdown failed with a real error,
    /// not "would block" or "interrupted": `error_closes`.
    Failed,
}

impl CloseReason {
    /// The reason once the close itself has been tried: a connection that
    /// had finished, but whose closing shutdown failed (the peer had reset
    /// it meanwhile), failed after all.
    pub fn then_closed(self, closed: std::io::Result<()>) -> CloseReason {
        match (self, closed) {
            (CloseReason::Finished, Err(_)) => CloseReason::Failed,
            (reason, _) => reason,
        }
    }
}

impl Counters {
    /// Counts one closed connection; the caller has already closed it.
    pub fn count_close(&self, reason: CloseReason) {
        match reason {
            CloseReason::Finished => {}
            CloseReason::TimedOut => self.idle_closes.add(1),
            CloseReason::Failed => self.error_closes.add(1),
        }
    }
}

/// A server's `STATS` answer: `connections` and `requests`, then the
/// server's own `first` fields, then the fields every server counts, then
/// its own `last` ones. Both servers build the line here, so the fields they
/// share have one name and one order. A server with several sets of
/// counters (one per loop) passes them all; they are added up.
pub fn stats_line<'a>(
    counters: impl Iterator<Item = &'a Counters> + Clone,
    lateness: impl Iterator<Item = &'a Lateness> + Clone,
    first: &[(&str, u64)],
    last: &[(&str, u64)],
) -> String {
    let sum =
        |pick: fn(&Counters) -> &Counter| -> u64 { counters.clone().map(|c| pick(c).get()).sum() };
    let late = |quantile| Lateness::quantile_micros(lateness.clone(), quantile).unwrap_or(0);
    let mut fields = first.to_vec();
    fields.extend([
        ("busy_rejections", sum(|c| &c.busy_rejections)),
        ("idle_closes", sum(|c| &c.idle_closes)),
        ("error_closes", sum(|c| &c.error_closes)),
        ("panics", sum(|c| &c.panics)),
        ("timer_late_p50_us", late(0.5)),
        ("timer_late_p99_us", late(0.99)),
    ]);
    fields.extend_from_slice(last);
    response::stats(
        sum(|c| &c.open_connections),
        sum(|c| &c.requests_answered),
        &fields,
    )
}
/// Width of one bucket of the lateness histogram.
pub const BUCKET_MICROS: u64 = 25;
/// 25 µs buckets up to 10 ms; later ones share the last bucket.
pub const BUCKETS: usize = 400;

/// The bucket a reply `micros` late falls in. The event loop's per-second
/// window (event_loop_server's live.rs) counts in the same buckets.
pub fn lateness_bucket(micros: u64) -> usize {
    ((micros / BUCKET_MICROS) as usize).min(BUCKETS - 1)
}

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
        self.buckets[lateness_bucket(micros)].fetch_add(1, Ordering::Relaxed);
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
