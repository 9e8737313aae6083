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
//!   │   Connection ─▶ drive that connection                    connection.rs │
//!   │ due timers   ─▶ database replies, watchdogs,  service.rs, watchdog.rs, │
//!   │                 refusals, accept retry            refuse.rs, accept.rs │
//!   │ new connections ─▶ register each, queue it for a drive                 │
//!   │ stale timers ─▶ swept out once the heap has doubled          timers.rs │
//!   │ queued connections (new, or out of budget) ─▶ drive them               │
//!   │ draining, and no connection left? ─▶ the loop ends                     │
//!   └────────────────────────────────────────────────────────────────────────┘
//! ```
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest};
use shared::linger;
use shared::stats::CloseReason;

use crate::accept::Acceptor;
use crate::clock::Clock;
use crate::connection::{Connection, Status};
use crate::context::Context;
use crate::service;
use crate::slab::{ConnectionId, Slab};
use crate::state::{Done, Shared};
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

pub(crate) struct EventLoop {
    /// Everything a step needs besides the connections and the acceptor.
    ctx: Context,
    connections: Slab<Connection<TcpStream>>,
    /// Loop 0 only, and only until shutdown.
    acceptor: Option<Acceptor>,
    clock: Clock,
    /// Connections to drive once more at the end of this turn: new ones,
    /// and ones that used their turn's budget with requests left.
    again: Vec<ConnectionId>,
    /// Connections the acceptor hands to this loop.
    handoff: Receiver<TcpStream>,
    /// Offloaded answers for this loop's connections.
    done: Receiver<Done>,
    phase: Phase,
    /// The same shared state as `ctx.shared`, a second handle taken once:
    /// a connection counts its answers here while `ctx` is lent to it.
    stats: Arc<Shared>,
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
            stats: Arc::clone(&ctx.shared),
            ctx,
            connections: Slab::new(),
            acceptor,
            again: Vec::new(),
            handoff,
            done,
            phase: Phase::Serving,
        })
    }

    /// Runs until shutdown has drained every connection. Returns how many
    /// answers the drain sent.
    pub(crate) fn run(mut self) -> u64 {
        let mut events = Events::with_capacity(1024);
        loop {
            let next_timer = self.ctx.timers.next_deadline();
            let work_left = !self.again.is_empty() || !self.ctx.accepted.is_empty();
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
            self.drive_left_over();
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
                let Some(id) = self.connections.id_at(slot) else {
                    return; // a connection already gone
                };
                let fin = event.is_read_closed() || event.is_error();
                if event.is_readable() || fin {
                    if let Some(conn) = self.connections.get_mut(id) {
                        conn.readable(fin);
                    }
                }
                self.drive_connection(id);
            }
        }
    }

    /// Lets a connection do all it can now (`Connection::drive`), then acts
    /// on its status and counts the answers it sent.
    fn drive_connection(&mut self, id: ConnectionId) {
        let Some(conn) = self.connections.get_mut(id) else {
            return;
        };
        // The connection is borrowed from `connections` while `ctx` answers
        // its requests: two fields, two borrows (context.rs says why).
        let ctx = &mut self.ctx;
        let answered = &self.stats.loops[ctx.index].counters.requests_answered;
        let status = conn.drive(
            |seq, request| service::answer(ctx, id, seq, request),
            |moved| answered.add(moved),
        );
        match status {
            Ok(Status::Waiting) => {}
            Ok(Status::MoreToDo) => self.again.push(id),
            Ok(Status::Finished) => self.close(id, CloseReason::Finished),
            Err(_) => self.close(id, CloseReason::Failed),
        }
    }

    /// Drives the connections queued in `again`. One may have been queued
    /// by several events this turn; it gets one more drive, not one per
    /// event.
    fn drive_left_over(&mut self) {
        self.again
            .sort_unstable_by_key(|id| (id.slot, id.generation));
        self.again.dedup();
        for id in std::mem::take(&mut self.again) {
            self.drive_connection(id);
        }
    }

    /// Closes so the last answers arrive (`shared::linger::close`), counts
    /// why, and lets a stopped acceptor try again with the freed descriptor.
    fn close(&mut self, id: ConnectionId, reason: CloseReason) {
        let Some(mut conn) = self.connections.remove(id) else {
            return;
        };
        let _ = self.ctx.registry().deregister(&mut conn.socket);
        let closed = linger::close(&conn.socket, TcpStream::shutdown);
        let counters = &self.ctx.mine().counters;
        counters.count_close(reason.then_closed(closed));
        counters.open_connections.sub(1);
        // The descriptor must really be closed before a stopped acceptor
        // retries: that retry is what it was waiting for.
        drop(conn);
        if let Some(acceptor) = &mut self.acceptor {
            acceptor.descriptor_freed(&mut self.ctx);
        }
    }

    fn take_offloaded_answers(&mut self) {
        while let Ok(done) = self.done.try_recv() {
            if let Some(conn) = self.connections.get_mut(done.conn) {
                conn.fill(done.seq, done.line);
                self.drive_connection(done.conn);
            }
        }
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        while let Some((due, timer)) = self.ctx.timers.pop_due(now) {
            match timer {
                Timer::DbReply { conn, seq, id } => {
                    let reply = service::db_reply(&mut self.ctx, due, id);
                    if let Some(c) = self.connections.get_mut(conn) {
                        c.fill(seq, reply);
                        self.drive_connection(conn);
                    }
                }
                Timer::Watchdog { conn } => {
                    let check = watchdog::check(&mut self.ctx, &self.connections, conn, now);
                    if check == Check::Expired {
                        self.close(conn, CloseReason::TimedOut);
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
    }

    /// Registers each connection accepted for this loop and queues it for
    /// a first drive this turn: bytes may have arrived before registration,
    /// and no edge would report them.
    fn set_up_accepted(&mut self) {
        for stream in std::mem::take(&mut self.ctx.accepted) {
            let id = self
                .connections
                .insert_with(|_| Connection::new(stream, Instant::now()));
            let Some(conn) = self.connections.get_mut(id) else {
                continue;
            };
            let interest = Interest::READABLE | Interest::WRITABLE;
            let token = Target::Connection(id.slot).token();
            if self
                .ctx
                .registry()
                .register(&mut conn.socket, token, interest)
                .is_err()
            {
                self.connections.remove(id);
                self.ctx.mine().counters.open_connections.sub(1);
                continue;
            }
            if self.phase != Phase::Serving {
                conn.stop_reading(); // arrived as the server stopped
            }
            watchdog::arm(&mut self.ctx, id);
            self.again.push(id);
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
        for id in self.connections.ids() {
            if let Some(conn) = self.connections.get_mut(id) {
                conn.stop_reading();
            }
            self.drive_connection(id);
        }
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
