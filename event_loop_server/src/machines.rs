//! The loop's connections as hand-written state machines (connection.rs):
//! the loop calls `drive` on one whenever something it waits for changed.
//!
//! Nothing here waits or wakes: a readiness event marks the input
//! readable and drives; a database timer or an offloaded answer fills its
//! place in the answer queue and drives; a connection that used its turn's
//! budget goes on `again`, driven once more at the end of the turn.
//! Compare executor.rs, where the same calls wake tasks instead.

use std::sync::Arc;
use std::time::Instant;

use mio::event::Event;
use mio::net::TcpStream;
use mio::Interest;
use shared::stats::CloseReason;

use crate::connection::{Connection, Status};
use crate::connections::{close_socket, Connections};
use crate::context::Context;
use crate::service;
use crate::slab::{ConnectionId, Slab};
use crate::state::{Done, Shared};
use crate::tokens::Target;

pub(crate) struct Machines {
    /// The same shared state as `ctx.shared`, a second handle taken once:
    /// a connection counts its answers here while `ctx` is lent to it.
    stats: Arc<Shared>,
    connections: Slab<Connection<TcpStream>>,
    /// Connections to drive once more at the end of this turn: new ones,
    /// and ones that used their turn's budget with requests left.
    again: Vec<ConnectionId>,
    closed: usize,
}

impl Machines {
    /// Lets a connection do all it can now (`Connection::drive`), then acts
    /// on its status and counts the answers it sent.
    fn drive(&mut self, ctx: &mut Context, id: ConnectionId) {
        let Some(conn) = self.connections.get_mut(id) else {
            return;
        };
        // The connection is borrowed from the slab while `ctx` answers its
        // requests: two borrows of two things (context.rs says why).
        let answered = &self.stats.loops[ctx.index].counters.requests_answered;
        let status = conn.drive(
            |seq, request| service::answer(ctx, id, seq, request),
            |moved| answered.add(moved),
        );
        match status {
            Ok(Status::Waiting) => {}
            Ok(Status::MoreToDo) => self.again.push(id),
            Ok(Status::Finished) => self.close(ctx, id, CloseReason::Finished),
            Err(_) => self.close(ctx, id, CloseReason::Failed),
        }
    }
}

impl Connections for Machines {
    fn new(ctx: &Context) -> Self {
        Machines {
            stats: Arc::clone(&ctx.shared),
            connections: Slab::new(),
            again: Vec::new(),
            closed: 0,
        }
    }

    fn add(
        &mut self,
        ctx: &mut Context,
        stream: TcpStream,
        draining: bool,
    ) -> Option<ConnectionId> {
        let id = self
            .connections
            .insert_with(|_| Connection::new(stream, Instant::now()));
        let conn = self.connections.get_mut(id)?;
        let interest = Interest::READABLE | Interest::WRITABLE;
        let token = Target::Connection(id.slot).token();
        if ctx
            .registry()
            .register(&mut conn.socket, token, interest)
            .is_err()
        {
            self.connections.remove(id);
            ctx.mine().counters.open_connections.sub(1);
            return None;
        }
        if draining {
            conn.stop_reading(); // arrived as the server stopped
        }
        self.again.push(id);
        Some(id)
    }

    fn event(&mut self, ctx: &mut Context, slot: usize, event: &Event) {
        let Some(id) = self.connections.id_at(slot) else {
            return; // a connection already gone
        };
        let fin = event.is_read_closed() || event.is_error();
        if event.is_readable() || fin {
            if let Some(conn) = self.connections.get_mut(id) {
                conn.readable(fin);
            }
        }
        self.drive(ctx, id);
    }

    fn db_reply(&mut self, ctx: &mut Context, due: Instant, conn: ConnectionId, seq: u64, id: u64) {
        let reply = service::db_reply(ctx, due, id);
        if let Some(c) = self.connections.get_mut(conn) {
            c.fill(seq, reply);
            self.drive(ctx, conn);
        }
    }

    fn offloaded(&mut self, ctx: &mut Context, done: Done) {
        if let Some(conn) = self.connections.get_mut(done.conn) {
            conn.fill(done.seq, done.line);
            self.drive(ctx, done.conn);
        }
    }

    fn deadline(&self, ctx: &Context, id: ConnectionId) -> Option<Option<Instant>> {
        let common = &ctx.config().common;
        let conn = self.connections.get(id)?;
        Some(conn.deadline(common.idle_timeout, common.write_timeout))
    }

    fn close(&mut self, ctx: &mut Context, id: ConnectionId, reason: CloseReason) {
        if let Some(conn) = self.connections.remove(id) {
            close_socket(ctx, &conn.socket, reason);
            self.closed += 1;
        }
    }

    /// One may have been queued by several events this turn; it gets one
    /// more drive, not one per event.
    fn run_queued(&mut self, ctx: &mut Context) {
        self.again
            .sort_unstable_by_key(|id| (id.slot, id.generation));
        self.again.dedup();
        for id in std::mem::take(&mut self.again) {
            self.drive(ctx, id);
        }
    }

    fn work_left(&self) -> bool {
        !self.again.is_empty()
    }

    fn stop_reading(&mut self, ctx: &mut Context) {
        for id in self.connections.ids() {
            if let Some(conn) = self.connections.get_mut(id) {
                conn.stop_reading();
            }
            self.drive(ctx, id);
        }
    }

    fn len(&self) -> usize {
        self.connections.len()
    }

    fn contains(&self, id: ConnectionId) -> bool {
        self.connections.contains(id)
    }

    fn take_closed(&mut self) -> usize {
        std::mem::take(&mut self.closed)
    }
}
