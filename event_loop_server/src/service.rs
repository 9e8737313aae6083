//! How a loop answers each request without ever waiting for it.
//!
//! A quick request (`PING`, `HELP`, `STATS`) is answered on the spot. A
//! database query becomes a timer: the answer is made when the timer fires,
//! and until then the request is an empty place in its connection's answer
//! queue. An image job either runs right here, stalling the whole loop for
//! its duration (the lesson of the CPU-bound workload), or goes to the
//! offload pool and comes back through the loop's waker (offload.rs).
//!
//! A panic while answering (a bug) must not take the loop, and with it
//! every connection, down: `answer_caught` answers `ERR internal error`
//! and counts it.

use std::time::{Duration, Instant};

use shared::panics::answer_caught;
use shared::protocol::{response, Request};

use crate::context::Context;
use crate::slab::ConnectionId;
use crate::timers::Timer;

/// The answer now, or `None` when it will come through
/// `Connection::fill` with the same `seq`.
pub(crate) fn answer(
    ctx: &mut Context,
    conn: ConnectionId,
    seq: u64,
    request: Request,
) -> Option<String> {
    answer_caught(ctx, |ctx| answer_uncaught(ctx, conn, seq, request))
}

fn answer_uncaught(
    ctx: &mut Context,
    conn: ConnectionId,
    seq: u64,
    request: Request,
) -> Option<String> {
    Some(match request {
        Request::Ping => response::pong(),
        Request::Help => response::help(),
        Request::Quit => response::bye(),
        Request::Stats => ctx.shared.stats(),
        Request::Image(job) => match &ctx.offload {
            Some(offload) if offload.submit(ctx.index, conn, seq, job) => {
                return None; // the answer comes back through the waker
            }
            Some(_) => response::busy_image_queue(),
            // Inline: the whole loop, every connection, waits for this.
            None => response::run_image(&mut ctx.scratch, &job, None),
        },
        Request::Db { id, delay_ms } => {
            let default = ctx.config().common.default_db_delay;
            let delay = delay_ms.map_or(default, Duration::from_millis);
            // Timed from now, not from the start of this turn, so the
            // reply can never leave before the delay has passed.
            let timer = Timer::DbReply { conn, seq, id };
            ctx.timers.add(Instant::now() + delay, timer);
            ctx.db_waiting_changed(1);
            return None;
        }
    })
}

/// A database query's timer fired: its reply, counted out of the heap.
pub(crate) fn db_reply(ctx: &mut Context, due: Instant, id: u64) -> String {
    let now = Instant::now();
    ctx.mine().lateness.record(due, now);
    ctx.window.record_late(due, now);
    ctx.db_waiting_changed(-1);
    response::db(id, shared::db::value(id))
}
