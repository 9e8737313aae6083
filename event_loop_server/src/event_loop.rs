//! The loop itself: one thread, one `mio::Poll`, every socket non-blocking.
//!
//! ```text
//!   ┌──────────────────────────────── one turn ────────────────────────────────┐
//!   │ poll(timeout: to the next timer, 0 if work is left over)   clock.rs       │
//!   │   CLOCK     ─▶ (the precise timer: nothing but wake up)                   │
//!   │   LISTENER  ─▶ accept, keep or hand over each connection  accept.rs      │
//!   │   a refused connection's first bytes ─▶ its refusal       refuse.rs      │
//!   │   WAKER     ─▶ offloaded answers, handed-over connections, shutdown      │
//!   │   a socket  ─▶ drive that connection                      connection.rs  │
//!   │ due timers  ─▶ database replies, watchdogs, accept retry  service.rs,    │
//!   │                                                           watchdog.rs    │
//!   │ connections that used up their turn's budget ─▶ drive them again         │
//!   └───────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Everything this loop does happens on its thread, one step at a time, so
//! nothing needs a lock. The flip side: a step that takes long (an inline
//! `IMAGE` job) stalls *every* connection of this loop for its duration.
//! That is the lesson of the CPU-bound workload, not a bug.
//!
//! ## Readiness, edge-triggered
//! Each socket is registered once, for both reading and writing, and mio
//! reports it when it *becomes* readable or writable (epoll's `EPOLLET`).
//! An event is a hint to try, never a promise: a read may still say
//! `WouldBlock`, and an event may come for a connection that is gone (its
//! token then finds nothing in the slab). What an edge does *not* do is
//! repeat: bytes already read, or a socket not read dry, raise no new
//! event. So the connection remembers where its input stands
//! (`connection::Input`) and `drive` always finishes what it started.

use std::io::{self, ErrorKind};
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use shared::protocol::response;
use shared::stats::Counters;

use crate::accept::{Acceptor, Room};
use crate::clock::Clock;
use crate::connection::{Connection, Status};
use crate::offload::{Done, Offload};
use crate::refuse;
use crate::service::Service;
use crate::slab::{ConnectionId, Slab};
use crate::timers::Timer;
use crate::Shared;

pub(crate) const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);
/// The precise timer of `clock.rs`: its only message is "a timer is due".
pub(crate) const CLOCK: Token = Token(2);

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
    poll: Poll,
    clock: Clock,
    /// Loop 0 only, and only until shutdown.
    pub(crate) acceptor: Option<Acceptor>,
    pub(crate) connections: Slab<Connection<TcpStream>>,
    /// Connections that used their turn's budget with requests left.
    again: Vec<ConnectionId>,
    /// Connections accepted for this loop, waiting to be set up.
    accepted: Vec<TcpStream>,
    handed_over: Receiver<TcpStream>,
    offloaded: Receiver<Done>,
    pub(crate) service: Service,
    /// Timer heap size at which the next stale-timer sweep runs.
    pub(crate) sweep_at: usize,
    phase: Phase,
}

impl EventLoop {
    pub(crate) fn new(
        index: usize,
        poll: Poll,
        listener: Option<TcpListener>,
        shared: Arc<Shared>,
        offload: Option<Arc<Offload>>,
        handed_over: Receiver<TcpStream>,
        offloaded: Receiver<Done>,
    ) -> io::Result<Self> {
        let acceptor = match listener {
            Some(mut listener) => {
                poll.registry()
                    .register(&mut listener, LISTENER, Interest::READABLE)?;
                Some(Acceptor::new(listener))
            }
            None => None,
        };
        Ok(EventLoop {
            clock: Clock::new(poll.registry(), CLOCK)?,
            poll,
            acceptor,
            connections: Slab::new(),
            again: Vec::new(),
            accepted: Vec::new(),
            handed_over,
            offloaded,
            service: Service::new(index, shared, offload),
            sweep_at: 0,
            phase: Phase::Serving,
        })
    }

    /// Runs until shutdown has drained every connection. Returns how many
    /// answers the drain sent.
    pub(crate) fn run(mut self) -> u64 {
        let mut events = Events::with_capacity(1024);
        loop {
            let next_timer = self.service.timers.next_deadline();
            let timeout = self.clock.poll_timeout(next_timer, !self.again.is_empty());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                eprintln!("event loop: poll failed, stopping: {e}");
                return 0;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.with_acceptor(Acceptor::accept_all),
                    token if token.0 >= refuse::FIRST_TOKEN => {
                        self.with_acceptor(|acceptor, room| {
                            let counters = &room.shared.loops[room.me].counters;
                            acceptor.refusals.readable(token, room.registry, counters);
                        });
                    }
                    CLOCK => {} // due timers fire below
                    WAKER => {
                        self.take_offloaded_answers();
                        self.take_handed_over_connections();
                        self.drain_if_asked();
                    }
                    token => {
                        let Some(id) = self.connections.id_of(token) else {
                            continue; // a connection already gone
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
            self.fire_due_timers();
            self.sweep_stale_timers();
            self.drive_left_over();
            if let Some(sent) = self.drained() {
                return sent;
            }
        }
    }

    /// Drives the connections that used up their turn's budget. One may
    /// have been queued by several events this turn; it gets one more
    /// drive, not one per event.
    fn drive_left_over(&mut self) {
        self.again
            .sort_unstable_by_key(|id| (id.slot, id.generation));
        self.again.dedup();
        for id in std::mem::take(&mut self.again) {
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
        for _ in self.handed_over.try_iter() {
            Counters::sub(&self.service.counters().open_connections, 1);
        }
        Some(self.answered() - answered_before)
    }

    /// Lets a connection do all it can now (`Connection::drive`), then acts
    /// on its status and counts the answers it sent.
    pub(crate) fn drive_connection(&mut self, id: ConnectionId) {
        let Some(conn) = self.connections.get_mut(id) else {
            return;
        };
        let service = &mut self.service;
        let before = conn.answered();
        let status = conn.drive(|seq, request| service.answer(id, seq, request));
        Counters::add(
            &service.counters().requests_answered,
            conn.answered() - before,
        );
        match status {
            Ok(Status::Waiting) => {}
            Ok(Status::MoreToDo) => self.again.push(id),
            Ok(Status::Finished) | Err(_) => self.close(id),
        }
    }

    pub(crate) fn close(&mut self, id: ConnectionId) {
        let Some(mut conn) = self.connections.remove(id) else {
            return;
        };
        let _ = self.poll.registry().deregister(&mut conn.socket);
        // Close so the last answers arrive: FIN after them, unread input
        // dropped (see `shared::linger`).
        let _ = conn.socket.shutdown(std::net::Shutdown::Write);
        shared::linger::discard_unread(&conn.socket);
        Counters::sub(&self.service.counters().open_connections, 1);
        self.with_acceptor(Acceptor::descriptor_freed);
    }

    /// One step of loop 0's acceptor, then the set-up of the connections
    /// it kept for this loop. Other loops have no acceptor.
    fn with_acceptor(&mut self, step: impl FnOnce(&mut Acceptor, &mut Room)) {
        let Some(acceptor) = &mut self.acceptor else {
            return;
        };
        let mut room = Room {
            shared: &self.service.shared,
            me: self.service.index,
            registry: self.poll.registry(),
            timers: &mut self.service.timers,
            mine: &mut self.accepted,
        };
        step(acceptor, &mut room);
        self.set_up_accepted();
    }

    fn take_handed_over_connections(&mut self) {
        self.accepted.extend(self.handed_over.try_iter());
        self.set_up_accepted();
    }

    /// Registers each new connection and gives it a first drive: bytes may
    /// have arrived before registration, and no edge would report them.
    fn set_up_accepted(&mut self) {
        for stream in std::mem::take(&mut self.accepted) {
            let id = self
                .connections
                .insert_with(|_| Connection::new(stream, Instant::now()));
            let Some(conn) = self.connections.get_mut(id) else {
                continue;
            };
            let interest = Interest::READABLE | Interest::WRITABLE;
            let registry = self.poll.registry();
            if registry
                .register(&mut conn.socket, id.token(), interest)
                .is_err()
            {
                self.connections.remove(id);
                Counters::sub(&self.service.counters().open_connections, 1);
                continue;
            }
            if self.phase != Phase::Serving {
                conn.stop_reading(); // arrived as the server stopped
            }
            self.arm_watchdog(id);
            self.again.push(id);
        }
    }

    fn take_offloaded_answers(&mut self) {
        while let Ok(done) = self.offloaded.try_recv() {
            if let Some(conn) = self.connections.get_mut(done.conn) {
                conn.fill(done.seq, done.line);
                self.drive_connection(done.conn);
            }
        }
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        while let Some((due, timer)) = self.service.timers.pop_due(now) {
            match timer {
                Timer::DbReply { conn, seq, id } => {
                    let lateness = &self.service.shared.loops[self.service.index].lateness;
                    lateness.record(due, Instant::now());
                    self.service.db_waiting_changed(-1);
                    if let Some(c) = self.connections.get_mut(conn) {
                        c.fill(seq, response::db(id, shared::db::value(id)));
                        self.drive_connection(conn);
                    }
                }
                Timer::Watchdog { conn } => self.check_watchdog(conn, now),
                Timer::RefusalDue { slot, generation } => {
                    self.with_acceptor(|acceptor, room| {
                        let counters = &room.shared.loops[room.me].counters;
                        acceptor
                            .refusals
                            .due(slot, generation, room.registry, counters);
                    });
                }
                Timer::RetryAccept => self.with_acceptor(Acceptor::retry),
            }
        }
    }

    /// Shutdown: no new connections, nothing more read; every request
    /// already read is still answered, then each connection closes.
    fn drain_if_asked(&mut self) {
        if self.phase != Phase::Serving || !self.service.shared.stop.load(Ordering::SeqCst) {
            return;
        }
        self.phase = Phase::Draining {
            answered_before: self.answered(),
        };
        if let Some(mut acceptor) = self.acceptor.take() {
            let _ = self.poll.registry().deregister(&mut acceptor.listener);
            let counters = self.service.counters();
            acceptor.refusals.finish_all(self.poll.registry(), counters);
        }
        for id in self.connections.ids() {
            if let Some(conn) = self.connections.get_mut(id) {
                conn.stop_reading();
            }
            self.drive_connection(id);
        }
    }

    fn answered(&self) -> u64 {
        Counters::get(&self.service.counters().requests_answered)
    }
}

/// Binds the listening socket with the shared backlog (`shared::listen`);
/// loop 0 registers it with its poll.
pub(crate) fn bind(addr: std::net::SocketAddr) -> io::Result<TcpListener> {
    let listener = shared::listen::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(TcpListener::from_std(listener))
}
