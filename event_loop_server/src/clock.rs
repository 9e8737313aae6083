//! How precisely a loop keeps time, and how late its timers actually fire.
//!
//! A loop has no thread to put to sleep for each timer: it waits in `poll`,
//! and `poll` waits no longer than the time to the earliest timer. The catch
//! is the unit. `epoll_wait` counts its timeout in whole milliseconds, so
//! mio rounds a timeout *up* (rounding down would wake early and spin). A
//! reply due in 9.2 ms then waits 10 ms, and every timer leaves on average
//! half a millisecond late, up to a whole one. A thread in `thread::sleep`
//! has nanosecond resolution and does not pay that.
//!
//! The loop here waits in two steps:
//! 1. `poll` with the timeout rounded *down* to whole milliseconds, which
//!    ends at or before the deadline;
//! 2. if the earliest timer is then less than a millisecond away and `poll`
//!    returned nothing to do, a `thread::sleep` for exactly the rest.
//!
//! Step 2 blocks the loop for under a millisecond, and only when it has no
//! event to handle; an event that arrives meanwhile waits at most that long.
//! Nothing spins: an idle loop, or one with only long timers, sleeps in
//! `poll` and wakes once per timer. Two other ways were weighed (see
//! docs/ARCHITECTURE.md): polling with a zero timeout through the last
//! millisecond keeps a core busy, and a Linux `timerfd` would need `unsafe`
//! calls and costs two system calls each time the earliest deadline moves.
//!
//! [`Lateness`] records how late each database reply leaves, on the
//! server's own clock, so the figure does not depend on any load generator:
//! `STATS` reports its 50th and 99th percentiles.

use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const MILLISECOND: Duration = Duration::from_millis(1);

/// The timeout for `poll`: none without timers, zero when work is left over
/// from this turn, else the whole milliseconds before the next deadline.
pub(crate) fn poll_timeout(next: Option<Instant>, work_left: bool) -> Option<Duration> {
    if work_left {
        return Some(Duration::ZERO);
    }
    let left = next?.saturating_duration_since(Instant::now());
    Some(Duration::from_millis(left.as_millis() as u64))
}

/// After a `poll` that returned no event: if the next deadline is less than
/// a millisecond away, sleep until it, precisely, instead of going round
/// again with a zero timeout (a spin) or a 1 ms one (late).
pub(crate) fn sleep_out_the_rest(next: Option<Instant>) {
    if let Some(at) = next {
        let left = at.saturating_duration_since(Instant::now());
        if !left.is_zero() && left < MILLISECOND {
            thread::sleep(left);
        }
    }
}

/// Width of one bucket of the lateness histogram.
const BUCKET_MICROS: u64 = 25;
/// 25 µs buckets up to 10 ms; later ones share the last bucket.
const BUCKETS: usize = 400;

/// A histogram of timer lateness in 25 µs buckets. Only the owning loop
/// writes it (relaxed atomics, never contended); any loop may read it for
/// `STATS`.
pub(crate) struct Lateness {
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
    pub(crate) fn record(&self, due: Instant, fired: Instant) {
        let micros = fired.saturating_duration_since(due).as_micros() as u64;
        let bucket = ((micros / BUCKET_MICROS) as usize).min(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// The `quantile` (0 to 1) of every histogram given, merged, in µs: the
    /// upper edge of its bucket, so the figure never flatters. `None`
    /// before any timer has fired.
    pub(crate) fn quantile_micros<'a>(
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

    #[test]
    fn the_poll_timeout_never_reaches_past_the_deadline() {
        let soon = Instant::now() + Duration::from_micros(9_700);
        let timeout = poll_timeout(Some(soon), false);
        assert!(timeout.is_some_and(|t| t <= Duration::from_millis(9)));
        assert_eq!(poll_timeout(None, false), None);
        assert_eq!(poll_timeout(None, true), Some(Duration::ZERO));
    }

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
