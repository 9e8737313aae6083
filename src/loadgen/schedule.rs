//! When each request of an open-loop load is due.
//!
//! A closed loop sends the next request when an answer comes back, so a
//! server that stalls also stops the clock of every client waiting on it:
//! the stall shows up as fewer requests, not as slow ones. That is
//! coordinated omission, and wrk2 answers it the way this file does: the
//! k-th request is due at `start + k / rate` whatever has happened since,
//! and its latency is counted from that moment, not from when it could
//! finally be sent.
//!
//! Due times come from the index, not from adding an interval to the last
//! one, so rounding never drifts the rate over a long run.

use std::time::{Duration, Instant};

pub(super) struct Schedule {
    start: Instant,
    /// Seconds between two due times (1 / rate).
    interval: f64,
    /// Index of the next request not yet handed out.
    next: u64,
}

impl Schedule {
    /// `rate` requests per second from `start`; `rate` must be positive.
    pub(super) fn new(start: Instant, rate: f64) -> Schedule {
        Schedule {
            start,
            interval: 1.0 / rate,
            next: 0,
        }
    }

    /// When the next request is due.
    pub(super) fn next_due(&self) -> Instant {
        self.start + Duration::from_secs_f64(self.next as f64 * self.interval)
    }

    /// The due time of the next request if it is due by `now` and before
    /// `end`, handing it out; `None` otherwise.
    pub(super) fn take_due(&mut self, now: Instant, end: Instant) -> Option<Instant> {
        let due = self.next_due();
        (due <= now && due < end).then(|| {
            self.next += 1;
            due
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_at_a_rate_holds_exactly_that_many_requests() {
        let start = Instant::now();
        let end = start + Duration::from_secs(1);
        let mut schedule = Schedule::new(start, 1000.0);
        let mut dues = Vec::new();
        // Long after the end: everything due in the second comes out at once
        // (a generator that fell behind), and nothing past it.
        while let Some(due) = schedule.take_due(end + Duration::from_secs(5), end) {
            dues.push(due);
        }
        assert_eq!(dues.len(), 1000);
        assert!(dues.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(dues[0], start);
        assert_eq!(dues[999] - start, Duration::from_millis(999));
    }

    #[test]
    fn nothing_is_handed_out_before_it_is_due() {
        let start = Instant::now();
        let mut schedule = Schedule::new(start, 10.0);
        let end = start + Duration::from_secs(60);
        assert_eq!(schedule.take_due(start, end), Some(start));
        assert_eq!(schedule.take_due(start, end), None);
        let later = start + Duration::from_millis(250);
        assert_eq!(
            schedule.take_due(later, end),
            Some(start + Duration::from_millis(100))
        );
        assert_eq!(
            schedule.take_due(later, end),
            Some(start + Duration::from_millis(200))
        );
        assert_eq!(schedule.take_due(later, end), None);
        assert_eq!(schedule.next_due(), start + Duration::from_millis(300));
    }
}
