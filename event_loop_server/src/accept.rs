//! Accepting connections: who gets each one, and what happens when the
//! process runs out of file descriptors.
//!
//! ## One acceptor, many loops
//! Loop 0 owns the listener and accepts for every loop, like netty's boss
//! group. Each new connection goes to the loop holding the fewest, over
//! that loop's channel, and its waker interrupts its `poll`; a connection
//! placed on loop 0 itself is simply kept. Either way it lands in its
//! loop's `Context::accepted`, and the loop registers its new connections
//! once per turn (event_loop.rs). The alternatives, and what they cost:
//! - every loop accepting from a clone of the listener: every loop wakes
//!   for every connection (mio cannot ask for `EPOLLEXCLUSIVE`), and the
//!   spread follows whichever loop is fastest to wake, not the load;
//! - `SO_REUSEPORT`: the kernel balances by hashing, but std cannot set
//!   the option, and a hash does not see how busy each loop is.
//!
//! With one loop, this is the classic loop that accepts for itself.
//!
//! Past `--max-connections`, a new connection is refused in its own
//! dialect (`refuse.rs`).
//!
//! ## Running out of descriptors
//! When `accept` fails for lack of file descriptors (`EMFILE`, `ENFILE`),
//! the pending connection stays in the kernel's backlog. Retrying at once
//! would fail again and spin. So the acceptor stops, arms a 100 ms retry
//! timer, and also retries as soon as a connection of loop 0 closes and
//! frees a descriptor. Readiness events on the listener are ignored
//! meanwhile; each is one new arrival, not a repeating alarm, so they cannot
//! make the loop spin either. `ECONNABORTED` (a client gave up while
//! queued) is simply skipped.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use shared::socket::{lost_arrival, try_now};

use crate::context::Context;
use crate::refuse::{self, Refusals};
use crate::slab::ConnectionId;
use crate::state::Shared;
use crate::timers::Timer;

const ACCEPT_RETRY: Duration = Duration::from_millis(100);

#[derive(Debug, PartialEq, Eq)]
enum State {
    Accepting,
    /// `accept` failed for lack of descriptors; one retry timer is armed.
    OutOfDescriptors,
}

pub(crate) struct Acceptor {
    listener: TcpListener,
    state: State,
    /// Where the search for the least-loaded loop starts, so that ties are
    /// broken round-robin rather than always in favour of loop 0.
    next: usize,
    /// Connections turned away while they wait for their first bytes.
    refusals: Refusals,
}

impl Acceptor {
    pub(crate) fn new(listener: TcpListener) -> Self {
        Acceptor {
            listener,
            state: State::Accepting,
            next: 0,
            refusals: Refusals::new(),
        }
    }

    /// Accepts until the backlog is empty. Connections for this loop go to
    /// `ctx.accepted`; the others are handed to their loops.
    pub(crate) fn accept_all(&mut self, ctx: &mut Context) {
        loop {
            match try_now(|| self.listener.accept()) {
                Ok(Some((stream, _peer))) => {
                    self.state = State::Accepting;
                    self.place(stream, ctx);
                }
                Ok(None) => return, // the backlog is empty
                Err(e) if lost_arrival(&e) => {}
                Err(_) => {
                    // Out of descriptors (or memory): see the module docs.
                    if self.state == State::Accepting {
                        let retry = Instant::now() + ACCEPT_RETRY;
                        ctx.timers.add(retry, Timer::RetryAccept);
                    }
                    self.state = State::OutOfDescriptors;
                    return;
                }
            }
        }
    }

    /// A descriptor came free (a connection of this loop closed): worth
    /// trying again only if accepting had stopped for lack of them.
    pub(crate) fn descriptor_freed(&mut self, ctx: &mut Context) {
        if self.state == State::OutOfDescriptors {
            self.accept_all(ctx);
        }
    }

    /// The retry timer fired.
    pub(crate) fn retry(&mut self, ctx: &mut Context) {
        self.state = State::Accepting;
        self.accept_all(ctx);
    }

    /// A refused connection's first bytes (or its FIN) have come.
    pub(crate) fn refused_readable(&mut self, slot: usize, ctx: &Context) {
        self.refusals.readable(slot, ctx);
    }

    /// A refused connection has waited long enough.
    pub(crate) fn refusal_due(&mut self, refused: ConnectionId, ctx: &Context) {
        self.refusals.finish(refused, ctx);
    }

    /// Shutdown: every waiting refusal is answered, and the listener is
    /// closed (dropped with the acceptor), so the kernel turns new clients
    /// away.
    pub(crate) fn stop(mut self, ctx: &Context) {
        let _ = ctx.registry().deregister(&mut self.listener);
        self.refusals.finish_all(ctx);
    }

    fn place(&mut self, stream: TcpStream, ctx: &mut Context) {
        let shared = &*ctx.shared;
        if shared.stopping.load(Ordering::SeqCst) {
            // Shutting down: a loop may already have drained and gone, so
            // hand nothing over; this client gets a clear refusal.
            refuse::at_once(stream, &ctx.mine().counters);
            return;
        }
        if shared.open_connections() >= shared.config.max_connections as u64 {
            self.refusals.refuse(stream, ctx);
            return;
        }
        let target = self.least_loaded(shared);
        let owner = &shared.loops[target];
        // Counted at once, so the next choice already sees it.
        owner.counters.open_connections.add(1);
        if target == ctx.index {
            ctx.accepted.push(stream);
        } else if owner.handoff.send(stream).is_ok() {
            let _ = owner.waker.wake();
        } else {
            owner.counters.open_connections.sub(1); // that loop is gone
        }
    }

    fn least_loaded(&mut self, shared: &Shared) -> usize {
        let n = shared.loops.len();
        let load = |i: usize| shared.loops[i].counters.open_connections.get();
        let start = self.next;
        let best = (0..n).map(|k| (start + k) % n).min_by_key(|&i| load(i));
        self.next = (start + 1) % n;
        best.unwrap_or(0)
    }
}
