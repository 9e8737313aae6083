//! Hardening against clients that hold resources without using them: the
//! idle and stalled-writer watchdogs.
//!
//! Each connection has one watchdog timer at a time. A connection with no
//! complete request for `--idle-timeout-secs`, or whose output has not moved
//! for `--write-timeout-secs` (a client that never reads), is closed and
//! counted in `STATS idle_closes=`. A connection only waiting for its
//! database replies is not idle.
//!
//! A closed connection's watchdog is not cancelled: it finds nothing when
//! it fires, and the sweep in timers.rs clears such timers in bulk.

use std::time::{Duration, Instant};

use shared::cli::CommonConfig;

use crate::context::Context;
use crate::slab::ConnectionId;
use crate::timers::Timer;

/// What a watchdog found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Gone already, or alive and watched again.
    Fine,
    /// Idle or stalled too long: the loop closes it.
    Expired,
}

/// The shorter timeout, but never zero: a zero period would set the next
/// check at the very instant being handled, and the loop would fire it
/// again and again without end.
fn period(common: &CommonConfig) -> Duration {
    common.watchdog_period().max(Duration::from_millis(1))
}

/// Sets the first watchdog of a new connection.
pub(crate) fn arm(ctx: &mut Context, id: ConnectionId) {
    let first = Instant::now() + period(&ctx.config().common);
    ctx.timers.add(first, Timer::Watchdog { conn: id });
}

/// Whether the connection has been idle (or stalled) too long; if not, its
/// watchdog is set again. A connection's deadline can move earlier between
/// checks (it starts a stalled write while it was only idle), so no check
/// is set further away than the shorter timeout: a stall is caught at most
/// one write timeout late.
/// `deadline` is the connection's (`None` if it is gone).
pub(crate) fn check(
    ctx: &mut Context,
    deadline: Option<Option<Instant>>,
    id: ConnectionId,
    now: Instant,
) -> Check {
    let Some(deadline) = deadline else {
        return Check::Fine; // closed meanwhile: its watchdog just lapses
    };
    let next_check = now + period(&ctx.config().common);
    let next = match deadline {
        Some(deadline) if deadline <= now => return Check::Expired,
        Some(deadline) => deadline.min(next_check),
        None => next_check,
    };
    ctx.timers.add(next, Timer::Watchdog { conn: id });
    Check::Fine
}

/// Where a connection stands, as far as the watchdog cares; both styles
/// keep these and ask [`Activity::deadline`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Activity {
    /// Idle time counts from here: the last *complete* request, so a line
    /// trickled a byte at a time does not keep a connection alive.
    pub(crate) last_request: Instant,
    /// A stalled reader is timed from here: when output last moved.
    pub(crate) last_write_progress: Instant,
}

impl Activity {
    pub(crate) fn new(now: Instant) -> Self {
        Activity {
            last_request: now,
            last_write_progress: now,
        }
    }

    /// When the connection should be closed if nothing changes: a stalled
    /// reader after the write timeout, an idle one after the idle timeout.
    /// `None` while it is only waiting for its answers, which is not idle.
    pub(crate) fn deadline(
        &self,
        unsent: bool,
        answers_owed: bool,
        idle: Duration,
        write: Duration,
    ) -> Option<Instant> {
        if unsent {
            Some(self.last_write_progress + write)
        } else if answers_owed {
            None
        } else {
            Some(self.last_request + idle)
        }
    }
}
