//! The loop itself: one thread, one `mio::Poll`, every socket non-blocking.
//!
//! ```text
//!   ┌─────────────────────────────── one turn ───────────────────────────────┐
//!   │ poll(timeout: to the next timer, 0 if work is left over)      clock.rs │
//!   │   the clock read before and after it times utilisation         live.rs │
//!   │ each event, by what its token is for:                        tokens.rs │
//!   │   Clock      ─▶ nothing: the precise timer (a timerfd) only   clock.rs │
//!   │                 wakes us in time for the next timer                    │
//!   │   Listener   ─▶ accept; keep or hand over each connection    accept.rs │
//!   │   Refused    ─▶ that refused connection's answer             refuse.rs │
//!   │   Waker      ─▶ offloaded answers, handed-over connections, offload.rs │
//!   │                 shutdown                                               │
//!   │   Connection ─▶ drive it, or wake its task                machines.rs, │
//!   │                 (--style async)                             reactor.rs │
//!   │ due timers   ─▶ database replies, watchdogs,  service.rs, watchdog.rs, │
//!   │                 refusals, accept retry            refuse.rs, accept.rs │
//!   │ new connections ─▶ register each, queue it for a drive (or a poll)     │
//!   │ stale timers ─▶ swept out once the heap has doubled          timers.rs │
//!   │ queued connections (new, out of budget, woken) ─▶ drive or poll them   │
//!   │                                                            executor.rs │
//!   │ draining, and no connection left? ─▶ the loop ends                     │
//!   └────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! How a connection is written is the loop's type parameter
//! (connections.rs): a state machine the loop drives, or an `async fn`
//! task it wakes and polls. Everything else here is the same for both.
//!
//! Everything this loop does happens on its thread, one step at a time, so
//! nothing needs a lock. Each step is a method here or a function over the
//! loop's [`Context`] (context.rs says why the connections are kept apart
//! from it). The flip side: a step that takes long (an inline
//! `IMAGE` job) stalls *every* connection of this loop for its duration.
//! That is the lesson of the CPU-bound workload, not a bug.
//!
//! ## Readiness, edge-triggered
//! Each socket is registered once, for both reading and writing, and mio
//! reports it when it *becomes* readable or writable (epoll's `EPOLLET`).
//! An event is a hint to try, never a promise: a read may still say
//! `WouldBlock`, and an event may come for a connection that is gone (its
//! token then finds nothing in the slab). What an edge does *not* do is
//! repeat: no new event comes for bytes that are already there, in the
//! socket or already read into the framer; only a new arrival raises a new
//! edge (on Linux every arrival does, read dry or not). So the connection
//! remembers where its input stands (`connection::Input`) and `drive`
//! always finishes what it started.

use std::io::{self, ErrorKind};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest};
use shared::stats::CloseReason;

use crate::accept::Acceptor;
use crate::clock::Clock;
use crate::connections::Connections;
use crate::context::Context;
use crate::state::Done;
use crate::timers::Timer;
use crate::tokens::Target;
use crate::watchdog::{self, Check};

/// Whether this loop is serving or finishing what it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Shutdown began when this many answers had been sent.
    Draining {
        answered_before: u64,
    },
}

/// One loop; `C` is how its connections are written (connections.rs):
/// state machines, or `async fn` tasks. Built in two steps: everything but
/// the connections where the server starts (so a failure there is the
/// server's error), the connections on the loop's own thread ([`run`]).
///
/// [`run`]: EventLoop::run
pub(crate) struct EventLoop<C = ()> {
    /// Everything a step needs besides the connections and the acceptor.
    ctx: Context,
    connections: C,
    /// Loop 0 only, and only until shutdown.
    acceptor: Option<Acceptor>,
    clock: Clock,
    /// Connections the acceptor hands to this loop.
    handoff: Receiver<TcpStream>,
    /// Offloaded answers for this loop's connections.
    done: Receiver<Done>,
    phase: Phase,
}

impl EventLoop {
    pub(crate) fn new(
        ctx: Context,
        listener: Option<TcpListener>,
        handoff: Receiver<TcpStream>,
        done: Receiver<Done>,
    ) -> io::Result<Self> {
        let acceptor = match listener {
            Some(mut listener) => {
                let token = Target::Listener.token();
                ctx.registry()
                    .register(&mut listener, token, Interest::READABLE)?;
                Some(Acceptor::new(listener))
            }
            None => None,
        };
        Ok(EventLoop {
            clock: Clock::new(ctx.registry(), Target::Clock.token())?,
            ctx,
            connections: (),
            acceptor,
            handoff,
            done,
            phase: Phase::Serving,
        })
    }

    /// Makes this loop's connections `C` on the calling thread, then runs
    /// until shutdown has drained every one. Returns how many answers the
    /// drain sent.
    pub(crate) fn run<C: Connections>(self) -> u64 {
        EventLoop {
            connections: C::new(&self.ctx),
            ctx: self.ctx,
            acceptor: self.acceptor,
            clock: self.clock,
            handoff: self.handoff,
            done: self.done,
            phase: self.phase,
        }
        .serve()
    }
}

impl<C: Connections> EventLoop<C> {
    fn serve(mut self) -> u64 {
        let mut events = Events::with_capacity(1024);
        loop {
            let next_timer = self.ctx.timers.next_deadline();
            let work_left = self.connections.work_left() || !self.ctx.accepted.is_empty();
            let timeout = if work_left {
                Some(Duration::ZERO)
            } else {
                // The one clock read before poll: the timeout and the
                // utilisation both use it (live.rs).
                let now = Instant::now();
                self.ctx.entering_poll(now);
                self.clock.poll_timeout(next_timer, now)
            };
            let polled = self.ctx.poll.poll(&mut events, timeout);
            self.ctx.left_poll(Instant::now());
            if let Err(e) = polled {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                eprintln!("event loop: poll failed, stopping: {e}");
                return 0;
            }
            for event in events.iter() {
                self.dispatch(event);
            }
            self.fire_due_timers();
            self.set_up_accepted();
            self.sweep_stale_timers();
            self.connections.run_queued(&mut self.ctx);
            self.descriptors_freed();
            if let Some(sent) = self.drained() {
                return sent;
            }
        }
    }

    fn dispatch(&mut self, event: &Event) {
        match Target::of(event.token()) {
            Target::Listener => {
                if let Some(acceptor) = &mut self.acceptor {
                    acceptor.accept_all(&mut self.ctx);
                }
            }
            Target::Refused(slot) => {
                if let Some(acceptor) = &mut self.acceptor {
                    acceptor.refused_readable(slot, &self.ctx);
                }
            }
            Target::Clock => {} // due timers fire after the events
            Target::Waker => {
                self.take_offloaded_answers();
                self.ctx.accepted.extend(self.handoff.try_iter());
                self.drain_if_asked();
            }
            Target::Connection(slot) => {
                self.connections.event(&mut self.ctx, slot, event);
                self.descriptors_freed();
            }
        }
    }

    /// Connections closed, so descriptors came free: a stopped acceptor
    /// may try again with them.
    fn descriptors_freed(&mut self) {
        if self.connections.take_closed() > 0 {
            if let Some(acceptor) = &mut self.acceptor {
                acceptor.descriptor_freed(&mut self.ctx);
            }
        }
    }

    fn take_offloaded_answers(&mut self) {
        while let Ok(done) = self.done.try_recv() {
            self.connections.offloaded(&mut self.ctx, done);
        }
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        while let Some((due, timer)) = self.ctx.timers.pop_due(now) {
            match timer {
                Timer::DbReply { conn, seq, id } => {
                    self.connections.db_reply(&mut self.ctx, due, conn, seq, id);
                }
                // An `async fn`'s sleep is over: its task runs this turn.
                Timer::Wake { waker, .. } => waker.wake(),
                Timer::Watchdog { conn } => {
                    let deadline = self.connections.deadline(&self.ctx, conn);
                    let check = watchdog::check(&mut self.ctx, deadline, conn, now);
                    if check == Check::Expired {
                        self.connections
                            .close(&mut self.ctx, conn, CloseReason::TimedOut);
                    }
                }
                Timer::RefusalDue { refused } => {
                    if let Some(acceptor) = &mut self.acceptor {
                        acceptor.refusal_due(refused, &self.ctx);
                    }
                }
                Timer::RetryAccept => {
                    if let Some(acceptor) = &mut self.acceptor {
                        acceptor.retry(&mut self.ctx);
                    }
                }
            }
        }
        self.descriptors_freed();
    }

    /// Registers each connection accepted for this loop and queues it for
    /// a first run this turn: bytes may have arrived before registration,
    /// and no edge would report them.
    fn set_up_accepted(&mut self) {
        let draining = self.phase != Phase::Serving;
        for stream in std::mem::take(&mut self.ctx.accepted) {
            if let Some(id) = self.connections.add(&mut self.ctx, stream, draining) {
                watchdog::arm(&mut self.ctx, id);
            }
        }
    }

    /// Timers of closed connections are left in the heap (nothing is
    /// cancelled); once in a while they are swept out (timers.rs).
    fn sweep_stale_timers(&mut self) {
        let connections = &self.connections;
        let dropped = self.ctx.timers.sweep_stale(|id| connections.contains(id));
        if dropped > 0 {
            self.ctx.db_waiting_changed(-(dropped as i64));
        }
    }

    /// Shutdown: no new connections, nothing more read; every request
    /// already read is still answered, then each connection closes.
    fn drain_if_asked(&mut self) {
        let stopping = self.ctx.shared.stopping.load(Ordering::SeqCst);
        if self.phase != Phase::Serving || !stopping {
            return;
        }
        self.phase = Phase::Draining {
            answered_before: self.answered(),
        };
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.stop(&self.ctx);
        }
        self.connections.stop_reading(&mut self.ctx);
    }

    /// Once draining and every connection is gone: how many answers the
    /// drain sent.
    fn drained(&mut self) -> Option<u64> {
        let Phase::Draining { answered_before } = self.phase else {
            return None;
        };
        if self.connections.len() > 0 {
            return None;
        }
        // Handed over as the acceptor stopped: never served.
        for _ in self.handoff.try_iter() {
            self.ctx.mine().counters.open_connections.sub(1);
        }
        Some(self.answered() - answered_before)
    }

    fn answered(&self) -> u64 {
        self.ctx.mine().counters.requests_answered.get()
    }
}
