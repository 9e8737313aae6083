//! Hardening against clients that hold resources without using them: the
//! idle and stalled-writer watchdogs, and the sweep of timers left behind
//! by closed connections.
//!
//! Each connection has one watchdog timer at a time. A connection with no
//! complete request for `--idle-timeout-secs`, or whose output has not moved
//! for `--write-timeout-secs` (a client that never reads), is closed and
//! counted in `STATS idle_closes=`. A connection only waiting for its
//! database replies is not idle.

use std::time::{Duration, Instant};

use shared::cli::CommonConfig;
use shared::stats::Counters;

use crate::event_loop::EventLoop;
use crate::slab::ConnectionId;
use crate::timers::Timer;

/// The shorter timeout, but never zero: a zero period would set the next
/// check at the very instant being handled, and the loop would fire it
/// again and again without end.
fn watchdog_period(common: &CommonConfig) -> Duration {
    common.watchdog_period().max(Duration::from_millis(1))
}

/// Below this many timers the heap is never swept.
const MIN_TIMER_SWEEP: usize = 1024;

impl EventLoop {
    pub(crate) fn arm_watchdog(&mut self, id: ConnectionId) {
        let period = watchdog_period(&self.service.shared.config.common);
        let timer = Timer::Watchdog { conn: id };
        self.service.timers.add(Instant::now() + period, timer);
    }

    /// Closes the connection if it has been idle (or stalled) too long,
    /// otherwise sets its watchdog again. A connection's deadline can move
    /// earlier between checks (it starts a stalled write while it was only
    /// idle), so no check is set further away than the shorter timeout: a
    /// stall is caught at most one write timeout late.
    pub(crate) fn check_watchdog(&mut self, id: ConnectionId, now: Instant) {
        let Some(conn) = self.connections.get_mut(id) else {
            return; // closed meanwhile: its watchdog just lapses
        };
        let common = &self.service.shared.config.common;
        let next_check = now + watchdog_period(common);
        let deadline = conn.deadline(common.idle_timeout, common.write_timeout);
        match deadline {
            Some(deadline) if deadline <= now => {
                Counters::add(&self.service.counters().idle_closes, 1);
                self.close(id);
            }
            Some(deadline) => {
                let timer = Timer::Watchdog { conn: id };
                self.service.timers.add(deadline.min(next_check), timer);
            }
            None => self
                .service
                .timers
                .add(next_check, Timer::Watchdog { conn: id }),
        }
    }

    /// Timers of closed connections are left in the heap (nothing is
    /// cancelled) and each would only go when it fires: with many short
    /// connections, that is thousands of dead watchdogs waiting out their
    /// period. So once the heap has doubled since the last sweep, keep only
    /// the timers of live connections. Each sweep is O(n) and halves the
    /// heap at least, so its cost is spread over the pushes that grew it.
    pub(crate) fn sweep_stale_timers(&mut self) {
        if self.service.timers.len() < self.sweep_at.max(MIN_TIMER_SWEEP) {
            return;
        }
        let connections = &self.connections;
        let mut dropped_queries = 0;
        self.service.timers.retain(|timer| match timer {
            Timer::DbReply { conn, .. } => {
                let live = connections.contains(*conn);
                dropped_queries += i64::from(!live);
                live
            }
            Timer::Watchdog { conn } => connections.contains(*conn),
            Timer::RetryAccept | Timer::RefusalDue { .. } => true,
        });
        self.service.db_waiting_changed(-dropped_queries);
        self.sweep_at = 2 * self.service.timers.len();
    }
}
