//! What the loops of one server share, and what each loop shows the other
//! threads: its counters, its mailboxes, its waker.
//!
//! Everything else a loop has is its own and needs no lock (context.rs).
//! Here, each [`LoopShared`] is written on the request path by its own loop
//! only, so loops do not contend. The three exceptions are rare and
//! atomic: the acceptor raises another loop's open-connection count when it
//! hands that loop a connection, an offload worker counts a panicking job
//! against the loop that sent it, and `STATS` reads everyone's counters.

use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use mio::net::TcpStream;
use mio::Waker;
use shared::stats::{stats_line, Counter, Counters, Lateness};

use crate::config::Config;
use crate::live::Published;
use crate::slab::ConnectionId;

/// What every loop of one server shares, behind one `Arc`.
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// Set by `ServerHandle::shutdown` before it wakes every loop.
    pub(crate) stopping: AtomicBool,
    /// Loop `i`'s part is `loops[i]`.
    pub(crate) loops: Vec<LoopShared>,
    /// When the server started: uptime, and second 0 of every loop's
    /// per-second window (live.rs).
    pub(crate) started: Instant,
    /// The offload pool's queue and busy workers, for the live view; set
    /// once the pool exists (its workers need `Shared` first).
    pub(crate) offload_load: OnceLock<worker_pool::PoolLoad>,
}

/// One loop's mailboxes and numbers, as the other threads see them. Aligned
/// to its own cache lines, so that two loops counting their own requests
/// never write to the same line.
#[repr(align(128))]
pub(crate) struct LoopShared {
    /// Written by this loop; read by whichever loop answers `STATS`.
    /// `open_connections` is also raised by the acceptor when it hands this
    /// loop a connection.
    pub(crate) counters: Counters,
    /// Database queries waiting on this loop's timers.
    pub(crate) db_waiting: Counter,
    /// How late this loop's database replies left.
    pub(crate) lateness: Lateness,
    /// This loop's last whole second, for the live view (live.rs).
    pub(crate) live: Published,
    /// Interrupts this loop's `poll` from another thread: the only way into
    /// a thread that may be waiting for events with no timeout. Three
    /// reasons share it: shutdown, a connection handed over, an offloaded
    /// answer; the loop checks all three. Also shared with the loop's
    /// ready queue when connections are tasks (executor.rs).
    pub(crate) waker: Arc<Waker>,
    /// Connections the acceptor hands to this loop.
    pub(crate) handoff: Sender<TcpStream>,
    /// Offloaded image answers for this loop's connections.
    pub(crate) done: Sender<Done>,
}

/// An offloaded job's answer, on its way back to the loop that owns its
/// connection.
pub(crate) struct Done {
    pub(crate) conn: ConnectionId,
    pub(crate) seq: u64,
    pub(crate) line: String,
}

impl Shared {
    /// Open connections over every loop.
    pub(crate) fn open_connections(&self) -> u64 {
        let open = self.loops.iter();
        open.map(|l| l.counters.open_connections.get()).sum()
    }

    /// `STATS`: totals over every loop, then how the connections are spread.
    pub(crate) fn stats(&self) -> String {
        let loops = &self.loops;
        let db_waiting = loops.iter().map(|l| l.db_waiting.get()).sum();
        let names: Vec<String> = (0..loops.len())
            .map(|i| format!("loop{i}_connections"))
            .collect();
        let mut last = vec![("loops", loops.len() as u64)];
        for (name, each) in names.iter().zip(loops) {
            last.push((name, each.counters.open_connections.get()));
        }
        stats_line(
            loops.iter().map(|l| &l.counters),
            loops.iter().map(|l| &l.lateness),
            &[
                ("max_connections", self.config.max_connections as u64),
                ("db_waiting", db_waiting),
            ],
            &last,
        )
    }
}
