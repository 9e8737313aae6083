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

use mio::net::TcpStream;
use shared::cli::CommonConfig;

use crate::connection::Connection;
use crate::context::Context;
use crate::slab::{ConnectionId, Slab};
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
pub(crate) fn check(
    ctx: &mut Context,
    connections: &Slab<Connection<TcpStream>>,
    id: ConnectionId,
    now: Instant,
) -> Check {
    let Some(conn) = connections.get(id) else {
        return Check::Fine; // closed meanwhile: its watchdog just lapses
    };
    let common = &ctx.config().common;
    let next_check = now + period(common);
    let next = match conn.deadline(common.idle_timeout, common.write_timeout) {
        Some(deadline) if deadline <= now => return Check::Expired,
        Some(deadline) => deadline.min(next_check),
        None => next_check,
    };
    ctx.timers.add(next, Timer::Watchdog { conn: id });
    Check::Fine
}
