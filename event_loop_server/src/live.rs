//! What a loop shows the live view (`shared::live`): its utilisation and
//! its timers' lateness over the last whole wall-clock second, and the
//! `/stats.json` object built from every loop's figures.
//!
//! These are the two numbers Node.js reports for its own loop:
//! `performance.eventLoopUtilization()` (the share of time the loop is not
//! waiting in the kernel) and `monitorEventLoopDelay()` (how late the loop
//! gets to what is due).
//!
//! ## Kept per second, by the loop, never reset by a reader
//! Each loop owns a [`Window`]: the time it spent outside `poll` in the
//! current second, and a histogram of how late its database replies left.
//! When a turn finds that a second has ended, the loop publishes that
//! second's figures into its [`Published`] atomics (one relaxed store each)
//! and starts the next. A reader only loads them, so a test and a browser
//! watching at once see the same numbers, and reading changes nothing.
//!
//! ## What it costs a turn
//! The clock is read once before `poll` (the read `Clock::poll_timeout`
//! made anyway, now made by the loop and passed to it) and once after: one
//! more read per turn (`Instant::now` is a vDSO call, tens of
//! nanoseconds), plus two relaxed stores of `in_poll` to a cache line only
//! this loop writes. A turn that polls with a zero timeout (work left over)
//! skips the first read and counts its non-blocking poll as busy. A loop
//! with no timer at all (no connection, no query) reads twice; it is idle.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shared::live::{common_fields, common_flags, Json};
use shared::stats::{lateness_bucket, BUCKETS, BUCKET_MICROS};

use crate::state::Shared;

const SECOND: Duration = Duration::from_secs(1);
/// Utilisation is published in ten-thousandths.
const SCALE: u64 = 10_000;
/// A lateness quantile of a second in which no timer fired.
const NO_QUANTILE: u64 = 0xFFFF;

/// One loop's last whole second, as the other threads see it.
#[derive(Default)]
pub(crate) struct Published {
    /// `second << 32 | busy share in ten-thousandths`: one word, so a
    /// reader never pairs one second's share with another's number.
    utilisation: AtomicU64,
    /// `second << 32 | p50 bucket << 16 | p99 bucket`.
    lateness: AtomicU64,
    /// In `poll` now: what a second without a turn was spent on.
    in_poll: AtomicBool,
}

/// The second a loop is accumulating; owned by that loop alone.
pub(crate) struct Window {
    /// Seconds count from here (the server's start), for every loop alike.
    epoch: Instant,
    second: u64,
    busy: Duration,
    /// When the loop last left `poll`.
    awake_since: Instant,
    /// When it entered `poll` this turn, if it may wait there.
    entered: Option<Instant>,
    late: Vec<u32>,
    late_count: u32,
}

impl Window {
    pub(crate) fn new(epoch: Instant) -> Self {
        let now = Instant::now();
        Window {
            epoch,
            second: now.saturating_duration_since(epoch).as_secs(),
            busy: Duration::ZERO,
            awake_since: now,
            entered: None,
            late: vec![0; BUCKETS],
            late_count: 0,
        }
    }

    /// The loop is about to wait in `poll`: it was busy since it woke.
    pub(crate) fn entering_poll(&mut self, now: Instant, published: &Published) {
        self.account(self.awake_since, now, true, published);
        self.entered = Some(now);
        published.in_poll.store(true, Ordering::Relaxed);
    }

    /// `poll` returned. Without `entering_poll` this turn (a zero-timeout
    /// poll), the whole time since the last wake-up counts as busy.
    pub(crate) fn left_poll(&mut self, now: Instant, published: &Published) {
        match self.entered.take() {
            Some(entered) => self.account(entered, now, false, published),
            None => self.account(self.awake_since, now, true, published),
        }
        self.awake_since = now;
        published.in_poll.store(false, Ordering::Relaxed);
    }

    /// A database reply left `fired - due` late: counted in this second.
    pub(crate) fn record_late(&mut self, due: Instant, fired: Instant) {
        let micros = fired.saturating_duration_since(due).as_micros() as u64;
        self.late[lateness_bucket(micros)] += 1;
        self.late_count += 1;
    }

    /// Adds the span `from..to` (busy or waiting) to the seconds it covers,
    /// publishing each second that ends inside it.
    fn account(&mut self, mut from: Instant, to: Instant, busy: bool, published: &Published) {
        loop {
            let end = self.epoch + Duration::from_secs(self.second + 1);
            if to < end {
                if busy {
                    self.busy += to.saturating_duration_since(from);
                }
                return;
            }
            if busy {
                self.busy += end.saturating_duration_since(from);
            }
            self.publish(published);
            from = end;
            self.second += 1;
            // Whole seconds inside the span were all busy or all waiting:
            // publish only the last of them, not one store per second.
            let last = to.saturating_duration_since(self.epoch).as_secs();
            if last > self.second + 1 {
                self.second = last - 1;
                self.busy = if busy { SECOND } else { Duration::ZERO };
                self.publish(published);
                self.second = last;
                from = self.epoch + Duration::from_secs(last);
            }
        }
    }

    /// Publishes `self.second` and clears the window for the next one.
    fn publish(&mut self, published: &Published) {
        let share = (self.busy.as_nanos() * SCALE as u128 / SECOND.as_nanos()) as u64;
        let utilisation = self.second << 32 | share.min(SCALE);
        published.utilisation.store(utilisation, Ordering::Relaxed);
        let (p50, p99) = if self.late_count == 0 {
            (NO_QUANTILE, NO_QUANTILE)
        } else {
            (self.late_bucket(0.5), self.late_bucket(0.99))
        };
        let lateness = self.second << 32 | p50 << 16 | p99;
        published.lateness.store(lateness, Ordering::Relaxed);
        if self.late_count > 0 {
            self.late.fill(0);
            self.late_count = 0;
        }
        self.busy = Duration::ZERO;
    }

    fn late_bucket(&self, quantile: f64) -> u64 {
        let rank = ((f64::from(self.late_count) * quantile).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.late.iter().enumerate() {
            seen += u64::from(*count);
            if seen >= rank {
                return i as u64;
            }
        }
        BUCKETS as u64 - 1
    }
}

/// One loop's figures for the last whole second, as a reader computes them.
struct LastSecond {
    utilisation: f64,
    late_p50_us: Option<u64>,
    late_p99_us: Option<u64>,
}

impl Published {
    fn last_second(&self, epoch: Instant) -> LastSecond {
        let now = Instant::now().saturating_duration_since(epoch).as_secs();
        let last = now.checked_sub(1);
        let utilisation = self.utilisation.load(Ordering::Relaxed);
        let lateness = self.lateness.load(Ordering::Relaxed);
        let utilisation = if Some(utilisation >> 32) == last {
            (utilisation & 0xFFFF_FFFF) as f64 / SCALE as f64
        } else if self.in_poll.load(Ordering::Relaxed) {
            // No turn has ended a second since: it has been waiting.
            0.0
        } else {
            // Nor has it entered poll: one step (an inline blur) has held
            // the loop the whole time.
            1.0
        };
        let quantile = |shift: u32| {
            let bucket = (lateness >> shift) & 0xFFFF;
            let fresh = Some(lateness >> 32) == last && bucket != NO_QUANTILE;
            fresh.then_some((bucket + 1) * BUCKET_MICROS)
        };
        LastSecond {
            utilisation,
            late_p50_us: quantile(16),
            late_p99_us: quantile(0),
        }
    }
}

/// The loop server's `/stats.json`: the `STATS` figures, the flags, one
/// entry per loop, and the offload pool.
pub(crate) fn stats_json(shared: &Shared) -> String {
    let config = &shared.config;
    let loops = &shared.loops;
    let mut json = Json::object();
    common_fields(
        &mut json,
        "event_loop_server",
        shared.started.elapsed(),
        loops.iter().map(|l| &l.counters),
        loops.iter().map(|l| &l.lateness),
    );
    let db_waiting = loops.iter().map(|l| l.db_waiting.get()).sum();
    json.number("max_connections", config.max_connections as u64)
        .number("db_waiting", db_waiting)
        .number("loops", loops.len() as u64);
    json.begin_object("flags");
    common_flags(&mut json, &config.common);
    json.number("max_connections", config.max_connections as u64)
        .number("loops", config.loops as u64)
        .number("offload_workers", config.offload_workers as u64)
        .end_object();
    json.begin_array("per_loop");
    for each in loops {
        let last = each.live.last_second(shared.started);
        json.begin_element()
            .fraction("utilisation", last.utilisation)
            .maybe("timer_late_p50_us", last.late_p50_us)
            .maybe("timer_late_p99_us", last.late_p99_us)
            .number("pending_timers", each.db_waiting.get())
            .number("connections", each.counters.open_connections.get())
            .number("requests", each.counters.requests_answered.get())
            .end_object();
    }
    json.end_array();
    let offload = shared.offload_load.get();
    json.begin_object("offload")
        .number("workers", config.offload_workers as u64)
        .number("queued", offload.map_or(0, |o| o.queued() as u64))
        .number("busy", offload.map_or(0, |o| o.busy() as u64));
    json.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_half_busy_is_published_as_half_once_it_ends() {
        let epoch = Instant::now();
        let published = Published::default();
        let mut window = Window::new(epoch);
        let at = |ms| epoch + Duration::from_millis(ms);
        window.awake_since = at(0);
        window.entering_poll(at(500), &published); // busy 0 to 500 ms
        window.record_late(at(600), at(600) + Duration::from_micros(30));
        window.left_poll(at(1_200), &published); // waiting to 1.2 s
        let utilisation = published.utilisation.load(Ordering::Relaxed);
        assert_eq!(utilisation, 5_000, "second 0, half busy");
        let lateness = published.lateness.load(Ordering::Relaxed);
        assert_eq!(lateness, 1 << 16 | 1, "second 0: one reply, 25-50 µs");
        // A 3 s step with no poll: seconds 1 to 3 end inside it.
        window.entering_poll(at(1_300), &published);
        window.left_poll(at(1_300), &published);
        window.left_poll(at(4_500), &published);
        let utilisation = published.utilisation.load(Ordering::Relaxed);
        assert_eq!(utilisation, 3 << 32 | SCALE, "second 3, all busy");
    }
}
