//! What the acceptor, the workers and the server's handle share: the
//! config, the `STATS` counters, every open connection, and what each
//! worker is doing (for the live view).
//!
//! One `Arc<Shared>` for the whole server. The counters are atomics and the
//! map of open connections is behind a lock taken once per connection
//! (never per request), so the workers do not contend on it.

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use shared::stats::{Counters, Lateness};
use shared::sync::lock;

use crate::config::Config;
use crate::live::WorkerStates;

/// A connection accepted and remembered, on its way to a worker.
pub(crate) struct Accepted {
    pub(crate) id: u64,
    pub(crate) stream: TcpStream,
}

pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) counters: Counters,
    /// How late each worker's `thread::sleep` for a database query returns:
    /// the sleeping thread's clock, to set beside the event loop's timers.
    pub(crate) lateness: Lateness,
    /// Set by `ServerHandle::shutdown`: the acceptor stops.
    pub(crate) stopping: AtomicBool,
    /// A second handle on every open connection, by id, so `shutdown` can
    /// end the blocking reads of the workers serving them.
    open: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
    /// The pool's count of waiting connections, for `STATS`; set once the
    /// pool exists (the pool's workers need `Shared` first).
    queued: OnceLock<Arc<AtomicUsize>>,
    /// What each worker is doing, for the live view (live.rs).
    pub(crate) worker_states: WorkerStates,
    /// When the server started: `/stats.json`'s uptime.
    pub(crate) started: Instant,
}

impl Shared {
    pub(crate) fn new(config: Config) -> Self {
        Shared {
            worker_states: WorkerStates::new(config.workers),
            config,
            counters: Counters::default(),
            lateness: Lateness::default(),
            stopping: AtomicBool::new(false),
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            queued: OnceLock::new(),
            started: Instant::now(),
        }
    }

    pub(crate) fn set_queued_counter(&self, queued: Arc<AtomicUsize>) {
        let _ = self.queued.set(queued);
    }

    pub(crate) fn queued(&self) -> usize {
        self.queued
            .get()
            .map_or(0, |queued| queued.load(Ordering::Relaxed))
    }

    /// Registers a new connection, or hands it back if its second handle
    /// cannot be made (no descriptor free).
    pub(crate) fn remember(&self, stream: TcpStream) -> Result<Accepted, TcpStream> {
        let Ok(spare) = stream.try_clone() else {
            return Err(stream);
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.open).insert(id, spare);
        self.counters.open_connections.add(1);
        Ok(Accepted { id, stream })
    }

    pub(crate) fn forget(&self, id: u64) {
        if lock(&self.open).remove(&id).is_some() {
            self.counters.open_connections.sub(1);
        }
    }

    /// Shutdown: every open connection's reading half is shut, so a worker
    /// blocked in `read` gets end-of-stream once what was sent is read.
    pub(crate) fn stop_reading_all(&self) {
        for stream in lock(&self.open).values() {
            let _ = stream.shutdown(std::net::Shutdown::Read);
        }
    }
}
