//! Turning a client away when the server is full, in the client's own
//! dialect.
//!
//! A full server answers a new connection with one refusal and closes it:
//! `ERR busy` in the line protocol, a `503` with `Retry-After` in HTTP. To
//! know which, it must see the client's first line, and that line is often
//! not there yet: `curl` connects, and only then sends, tens of
//! microseconds after the loop has already accepted. Answering at once
//! would give such a client a line it cannot parse.
//!
//! So a refused connection may wait a little for its first bytes, without
//! holding up the loop: it is registered for readability, and answered at
//! its first readiness event or after [`WAIT_FOR_FIRST_BYTES`], whichever
//! comes first. The waiting is bounded in both count and time, because a
//! refused client must not be able to cost the server more than a refusal:
//! at most [`MAX_WAITING`] wait at once, and past that the rest are
//! answered at once with whatever they have sent.

use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::Interest;
use shared::stats::Counters;

use crate::context::Context;
use crate::slab::{ConnectionId, Slab};
use crate::timers::Timer;
use crate::tokens::Target;

/// Refused connections that may wait for their first bytes at once.
const MAX_WAITING: usize = 64;
/// How long one may wait.
const WAIT_FOR_FIRST_BYTES: Duration = Duration::from_millis(200);

/// Refused connections waiting for their first bytes. A slab, like the
/// loop's connections, so that a deadline set for one refusal cannot end
/// a later one in the same slot.
pub(crate) struct Refusals {
    waiting: Slab<TcpStream>,
}

impl Refusals {
    pub(crate) fn new() -> Self {
        Refusals {
            waiting: Slab::new(),
        }
    }

    /// Refuses `stream`: at once if its first bytes are already here or
    /// there is no room to wait, else when they come or the wait is over.
    pub(crate) fn refuse(&mut self, stream: TcpStream, ctx: &mut Context) {
        let counters = &ctx.mine().counters;
        // A peek: the refusal itself reads the bytes when it answers.
        let arrived = stream.peek(&mut [0u8; 1]).unwrap_or(0) > 0;
        if arrived || self.waiting.len() >= MAX_WAITING {
            return at_once(stream, counters);
        }
        let refused = self.waiting.insert_with(|_| stream);
        let token = Target::Refused(refused.slot).token();
        let registered = self
            .waiting
            .get_mut(refused)
            .map(|stream| ctx.registry().register(stream, token, Interest::READABLE));
        if !matches!(registered, Some(Ok(()))) {
            if let Some(stream) = self.waiting.remove(refused) {
                at_once(stream, counters);
            }
            return;
        }
        let due = Timer::RefusalDue { refused };
        ctx.timers.add(Instant::now() + WAIT_FOR_FIRST_BYTES, due);
    }

    /// A readiness event for the refused connection in `slot`: its bytes
    /// (or its FIN) have come.
    pub(crate) fn readable(&mut self, slot: usize, ctx: &Context) {
        if let Some(refused) = self.waiting.id_at(slot) {
            self.finish(refused, ctx);
        }
    }

    /// Shutdown: every waiting refusal is answered now.
    pub(crate) fn finish_all(&mut self, ctx: &Context) {
        for refused in self.waiting.ids() {
            self.finish(refused, ctx);
        }
    }

    /// Answers `refused` now, if it is still waiting: a stale id (its
    /// deadline, after its first bytes already ended it) finds nothing.
    pub(crate) fn finish(&mut self, refused: ConnectionId, ctx: &Context) {
        if let Some(mut stream) = self.waiting.remove(refused) {
            let _ = ctx.registry().deregister(&mut stream);
            at_once(stream, &ctx.mine().counters);
        }
    }
}

/// Refuses at once, with whatever the client has sent so far
/// (`shared::linger::refuse`), and closes.
pub(crate) fn at_once(stream: TcpStream, counters: &Counters) {
    shared::linger::refuse(&stream);
    counters.busy_rejections.add(1);
}
