//! What the loop asks of its connections, however they are written.
//!
//! The loop (event_loop.rs) owns the poll, the timer heap, the acceptor and
//! the drain, and turns each into a call here. Two ways of writing a
//! connection answer those calls:
//!
//! - [`Machines`](crate::machines::Machines): each connection is a
//!   hand-written state machine (connection.rs) that the loop drives;
//! - [`Executor`](crate::executor::Executor): each connection is an
//!   `async fn` (session.rs), a task that the loop's events wake and a small
//!   executor polls.
//!
//! Both keep their connections in the loop's slab, so a `ConnectionId`
//! means the same in either, and the timers, watchdogs and acceptor work
//! unchanged. The choice is `--style`; the loop is generic over it, so the
//! state-machine loop pays nothing for the other.

use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::event::Event;
use mio::net::TcpStream;
use mio::unix::SourceFd;
use shared::linger;
use shared::stats::CloseReason;

use crate::context::Context;
use crate::slab::ConnectionId;
use crate::state::Done;

pub(crate) trait Connections {
    /// None yet; made on the loop's own thread.
    fn new(ctx: &Context) -> Self;

    /// A new connection of this loop (already counted open): registered
    /// with the poll and queued to run this turn, since bytes that came
    /// before registration raise no event. Dropped, and counted out, if it
    /// cannot be registered. `draining`: the server is stopping, so it is
    /// only closed politely.
    fn add(&mut self, ctx: &mut Context, stream: TcpStream, draining: bool)
        -> Option<ConnectionId>;

    /// A readiness event for the connection in `slot`.
    fn event(&mut self, ctx: &mut Context, slot: usize, event: &Event);

    /// A database query's timer fired (state machines only: an `async fn`
    /// sleeps on a `Timer::Wake`).
    fn db_reply(&mut self, ctx: &mut Context, due: Instant, conn: ConnectionId, seq: u64, id: u64);

    /// Offloaded answers that came back through the loop's channel.
    fn offloaded(&mut self, ctx: &mut Context, done: Done);

    /// When the watchdog should close `id` (`Some(None)`: not while it
    /// waits for its answers); `None` if `id` is gone.
    fn deadline(&self, ctx: &Context, id: ConnectionId) -> Option<Option<Instant>>;

    /// Closes `id` (`close_socket`) if it is still open.
    fn close(&mut self, ctx: &mut Context, id: ConnectionId, reason: CloseReason);

    /// Runs what was left for the end of this turn: connections out of
    /// budget, new ones, tasks woken.
    fn run_queued(&mut self, ctx: &mut Context);

    /// Whether `run_queued` has work, so `poll` must not wait.
    fn work_left(&self) -> bool;

    /// Shutdown: nothing more is read; what was read is answered.
    fn stop_reading(&mut self, ctx: &mut Context);

    fn len(&self) -> usize;

    fn contains(&self, id: ConnectionId) -> bool;

    /// How many connections closed since last asked: each freed a
    /// descriptor that a stopped acceptor may use.
    fn take_closed(&mut self) -> usize;
}

/// The end of every connection, both styles: out of the poll, closed so the
/// last answers arrive (`shared::linger::close`), counted by reason. The
/// caller drops the socket before `take_closed` reports the close: the
/// descriptor must really be closed before a stopped acceptor retries,
/// since that retry is what it was waiting for.
pub(crate) fn close_socket(ctx: &mut Context, socket: &TcpStream, reason: CloseReason) {
    // Through its descriptor: a task's socket is shared (an `Rc`), and
    // mio's own `deregister` wants it `&mut`.
    let _ = ctx
        .registry()
        .deregister(&mut SourceFd(&socket.as_raw_fd()));
    let closed = linger::close(socket, TcpStream::shutdown);
    let counters = &ctx.mine().counters;
    counters.count_close(reason.then_closed(closed));
    counters.open_connections.sub(1);
}
