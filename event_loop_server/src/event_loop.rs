//! The loop itself: one thread, one `mio::Poll`, every socket non-blocking.
//!
//! ```text
//!        ┌─────────────────────────── one turn ───────────────────────────┐
//!        │ poll(timeout = time to the earliest timer, or 0 if work is left)│
//!        │   LISTENER ready ─▶ accept until WouldBlock                    │
//!        │   WAKER          ─▶ shutdown asked: stop accepting, drain      │
//!        │   connection     ─▶ pump: read, answer, write (never waits)    │
//!        │ due timers       ─▶ database replies, watchdogs, accept retry  │
//!        │ connections with requests left over from their budget ─▶ pump │
//!        └────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Everything the server does happens on this thread, one step at a time,
//! so nothing needs a lock. The flip side: a step that takes long (an inline
//! `IMAGE` job) stalls *every* connection for its duration. That is the
//! lesson of the CPU-bound workload, not a bug.
//!
//! ## Running out of descriptors
//! When `accept` fails for lack of file descriptors (`EMFILE`, `ENFILE`),
//! the pending connection stays in the kernel's backlog. Retrying at once
//! would fail again and spin. So the loop stops accepting, arms a 100 ms
//! retry timer, and also retries as soon as one of its own connections
//! closes and frees a descriptor. The listener's readiness events are
//! ignored meanwhile; each is one new arrival, not a repeating alarm, so
//! they cannot make the loop spin either. `ECONNABORTED` (a client gave up
//! while queued) is simply skipped.

use std::io::{self, ErrorKind, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use shared::db;
use shared::image::ImageScratch;
use shared::protocol::{response, Request};
use shared::stats::Counters;

use crate::connection::{Answerer, Connection, Progress};
use crate::offload::Offload;
use crate::slab::{ConnectionId, Slab};
use crate::timers::{Timer, Timers};
use crate::Config;

pub(crate) const LISTENER: Token = Token(0);
pub(crate) const WAKER: Token = Token(1);

const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// Below this many timers the heap is never swept.
const MIN_TIMER_SWEEP: usize = 1024;

pub(crate) struct EventLoop {
    pub(crate) poll: Poll,
    /// `None` once shutdown has begun: no new connections.
    pub(crate) listener: Option<TcpListener>,
    /// Set by `ServerHandle::shutdown` before it wakes the loop.
    pub(crate) stop: Arc<AtomicBool>,
    connections: Slab<Connection>,
    /// Connections that used their turn's budget with requests left.
    again: Vec<ConnectionId>,
    accept_paused: bool,
    retry_armed: bool,
    /// Heap size past which stale timers are swept out (see
    /// `drop_stale_timers`).
    sweep_timers_at: usize,
    /// The same counters `work` holds, reachable while `work` is lent out.
    counters: Arc<Counters>,
    work: Work,
}

/// What requests are answered with: the clock, the image buffers, counters.
/// Kept apart from the connections so a connection can borrow it mutably
/// while the loop holds the connection.
struct Work {
    config: Config,
    timers: Timers,
    scratch: ImageScratch,
    counters: Arc<Counters>,
    /// Database queries waiting on their timers.
    db_waiting: u64,
    /// `--offload-workers` above 0: where image jobs go instead of inline.
    offload: Option<Offload>,
}

impl EventLoop {
    pub(crate) fn new(
        poll: Poll,
        listener: TcpListener,
        config: Config,
        counters: Arc<Counters>,
        stop: Arc<AtomicBool>,
        offload: Option<Offload>,
    ) -> Self {
        EventLoop {
            poll,
            listener: Some(listener),
            stop,
            connections: Slab::new(),
            again: Vec::new(),
            accept_paused: false,
            retry_armed: false,
            sweep_timers_at: MIN_TIMER_SWEEP,
            counters: Arc::clone(&counters),
            work: Work {
                config,
                timers: Timers::default(),
                scratch: ImageScratch::new(),
                counters,
                db_waiting: 0,
                offload,
            },
        }
    }

    /// Runs until shutdown has drained every connection. Returns how many
    /// responses the drain sent.
    pub(crate) fn run(mut self) -> u64 {
        let mut events = Events::with_capacity(1024);
        let mut answered_at_stop = None;
        loop {
            let timeout = if self.again.is_empty() {
                self.work
                    .timers
                    .next_deadline()
                    .map(|at| at.saturating_duration_since(Instant::now()))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                eprintln!("event loop: poll failed, stopping: {e}");
                return 0;
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {
                        // Woken by a finished offloaded job, by shutdown,
                        // or both: check each.
                        self.deliver_offloaded();
                        if self.stop.load(Ordering::SeqCst) && answered_at_stop.is_none() {
                            answered_at_stop =
                                Some(Counters::get(&self.work.counters.requests_answered));
                            self.begin_drain();
                        }
                    }
                    token => {
                        if let Some(id) = self.connections.id_of(token) {
                            if let Some(conn) = self.connections.get_mut(id) {
                                // Readable, closed or failed: a read will
                                // tell which. Writable needs no flag: every
                                // pump writes if output is waiting.
                                if event.is_readable() || event.is_read_closed() || event.is_error()
                                {
                                    conn.may_read = true;
                                }
                            }
                            self.pump(id);
                        }
                    }
                }
            }
            self.fire_due_timers();
            self.drop_stale_timers();
            for id in std::mem::take(&mut self.again) {
                self.pump(id);
            }
            if let Some(before) = answered_at_stop {
                if self.connections.len() == 0 {
                    return Counters::get(&self.work.counters.requests_answered) - before;
                }
            }
        }
    }

    fn accept_all(&mut self) {
        if self.accept_paused {
            return;
        }
        loop {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, _peer)) => self.add_connection(stream),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                    ) => {}
                Err(_) => {
                    // Out of descriptors (or memory): see the module docs.
                    self.accept_paused = true;
                    if !self.retry_armed {
                        self.retry_armed = true;
                        self.work
                            .timers
                            .add(Instant::now() + ACCEPT_RETRY, Timer::RetryAccept);
                    }
                    return;
                }
            }
        }
    }

    fn add_connection(&mut self, mut stream: mio::net::TcpStream) {
        let counters = &self.work.counters;
        if self.connections.len() >= self.work.config.max_connections {
            // A new socket's send buffer is empty, so this cannot block.
            let _ = stream.write(response::BUSY);
            Counters::add(&counters.busy_rejections, 1);
            return;
        }
        let now = Instant::now();
        let id = self
            .connections
            .insert_with(|_| Connection::new(stream, now));
        let Some(conn) = self.connections.get_mut(id) else {
            return;
        };
        if self
            .poll
            .registry()
            .register(&mut conn.stream, id.token(), Interest::READABLE)
            .is_err()
        {
            self.connections.remove(id);
            return;
        }
        Counters::add(&counters.open_connections, 1);
        let first_check = now + self.work.config.common.watchdog_period();
        self.work
            .timers
            .add(first_check, Timer::Watchdog { conn: id });
        // Bytes may have arrived before registration; look now.
        self.again.push(id);
    }

    fn pump(&mut self, id: ConnectionId) {
        let Some(conn) = self.connections.get_mut(id) else {
            return;
        };
        let result = conn
            .pump(id, &mut self.work, &self.counters)
            .and_then(|progress| {
                conn.sync_interest(self.poll.registry(), id)
                    .map(|()| progress)
            });
        match result {
            Ok(Progress::Waiting) => {}
            Ok(Progress::MoreToDo) => self.again.push(id),
            Ok(Progress::Finished) | Err(_) => self.close(id),
        }
    }

    fn close(&mut self, id: ConnectionId) {
        if let Some(mut conn) = self.connections.remove(id) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            // Close so the last answers arrive: FIN after them, unread
            // input dropped (see `shared::linger`).
            let _ = conn.stream.shutdown(std::net::Shutdown::Write);
            shared::linger::discard_unread(&conn.stream);
            Counters::sub(&self.work.counters.open_connections, 1);
            // A descriptor just came free: if accepting was paused for lack
            // of them, this is the moment to try again.
            if self.accept_paused {
                self.accept_paused = false;
                self.accept_all();
            }
        }
    }

    fn fire_due_timers(&mut self) {
        let now = Instant::now();
        while let Some(timer) = self.work.timers.pop_due(now) {
            match timer {
                Timer::DbReply { conn, seq, id } => {
                    self.work.db_waiting -= 1;
                    if let Some(c) = self.connections.get_mut(conn) {
                        c.fill(seq, response::db(id, db::value(id)));
                        self.pump(conn);
                    }
                }
                Timer::Watchdog { conn } => self.check_watchdog(conn, now),
                Timer::RetryAccept => {
                    self.retry_armed = false;
                    self.accept_paused = false;
                    self.accept_all();
                }
            }
        }
    }

    fn deliver_offloaded(&mut self) {
        let Some(offload) = &self.work.offload else {
            return;
        };
        for done in offload.take_done() {
            if let Some(conn) = self.connections.get_mut(done.conn) {
                conn.fill(done.seq, done.line);
                self.pump(done.conn);
            }
        }
    }

    /// Timers of closed connections are left in the heap (nothing is
    /// cancelled) and each would only go when it fires: with many short
    /// connections, that is thousands of dead watchdogs waiting out their
    /// period. So once the heap has doubled since the last sweep, keep only
    /// the timers of live connections. Each sweep is O(n) and halves the
    /// heap at least, so its cost is spread over the pushes that grew it.
    fn drop_stale_timers(&mut self) {
        if self.work.timers.len() < self.sweep_timers_at {
            return;
        }
        let connections = &self.connections;
        let mut dropped_queries = 0;
        self.work.timers.retain(|timer| match timer {
            Timer::DbReply { conn, .. } => {
                let live = connections.contains(*conn);
                dropped_queries += u64::from(!live);
                live
            }
            Timer::Watchdog { conn } => connections.contains(*conn),
            Timer::RetryAccept => true,
        });
        self.work.db_waiting -= dropped_queries;
        self.sweep_timers_at = (2 * self.work.timers.len()).max(MIN_TIMER_SWEEP);
    }

    /// Closes the connection if it has been idle (or stalled) too long,
    /// otherwise sets its watchdog again. A connection's deadline can move
    /// earlier between checks (it starts a stalled write while it was only
    /// idle), so no check is set further away than the shorter timeout: a
    /// stall is caught at most one write timeout late.
    fn check_watchdog(&mut self, id: ConnectionId, now: Instant) {
        let Some(conn) = self.connections.get_mut(id) else {
            return;
        };
        let common = &self.work.config.common;
        let next_check = now + common.watchdog_period();
        match conn.deadline(common.idle_timeout, common.write_timeout) {
            Some(deadline) if deadline <= now => {
                Counters::add(&self.work.counters.idle_closes, 1);
                self.close(id);
            }
            Some(deadline) => self
                .work
                .timers
                .add(deadline.min(next_check), Timer::Watchdog { conn: id }),
            None => self
                .work
                .timers
                .add(next_check, Timer::Watchdog { conn: id }),
        }
    }

    /// Shutdown: no new connections, nothing more read; every request
    /// already received is still answered, then each connection closes.
    fn begin_drain(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        for id in self.connections.ids() {
            if let Some(conn) = self.connections.get_mut(id) {
                conn.stop_reading();
            }
            self.pump(id);
        }
    }
}

impl Answerer for Work {
    /// A panic while answering (a bug) must not take the loop, and with it
    /// every connection, down: it answers `ERR internal error` and is
    /// counted. The scratch buffers may be half-written, so they start afresh.
    fn answer(&mut self, conn: ConnectionId, seq: u64, request: Request) -> Option<String> {
        match catch_unwind(AssertUnwindSafe(|| {
            self.answer_uncaught(conn, seq, request)
        })) {
            Ok(answer) => answer,
            Err(_) => {
                self.scratch = ImageScratch::new();
                Counters::add(&self.counters.panics, 1);
                Some(response::internal_error())
            }
        }
    }
}

impl Work {
    fn answer_uncaught(
        &mut self,
        conn: ConnectionId,
        seq: u64,
        request: Request,
    ) -> Option<String> {
        Some(match request {
            Request::Ping => response::pong(),
            Request::Help => response::help(),
            Request::Quit => response::bye(),
            Request::Stats => response::stats(
                Counters::get(&self.counters.open_connections),
                Counters::get(&self.counters.requests_answered),
                &[
                    ("max_connections", self.config.max_connections as u64),
                    ("db_waiting", self.db_waiting),
                    (
                        "busy_rejections",
                        Counters::get(&self.counters.busy_rejections),
                    ),
                    ("idle_closes", Counters::get(&self.counters.idle_closes)),
                    ("panics", Counters::get(&self.counters.panics)),
                ],
            ),
            Request::Image(job) if self.offload.is_some() => {
                let queued = self
                    .offload
                    .as_ref()
                    .is_some_and(|offload| offload.submit(conn, seq, job));
                if queued {
                    return None; // the answer comes back through the waker
                }
                response::busy_image_queue()
            }
            Request::Image(job) => {
                // Inline: the whole loop, every connection, waits for this.
                response::run_image(&mut self.scratch, &job, None)
            }
            Request::Db { id, delay_ms } => {
                let delay =
                    delay_ms.map_or(self.config.common.default_db_delay, Duration::from_millis);
                // Timed from now, not from the start of this turn, so the
                // reply can never leave before the delay has passed.
                self.timers
                    .add(Instant::now() + delay, Timer::DbReply { conn, seq, id });
                self.db_waiting += 1;
                return None;
            }
        })
    }
}

/// Binds and registers; the caller runs the loop on its own thread.
pub(crate) fn bind(addr: std::net::SocketAddr) -> io::Result<(Poll, TcpListener)> {
    let poll = Poll::new()?;
    let mut listener = TcpListener::bind(addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    Ok((poll, listener))
}
