//! What one loop's steps work with, besides its connections: its poll, its
//! timers, its counters, its scratch buffers, the server's config. One
//! struct per loop, built once, passed by `&mut` to every step (accepting,
//! refusing, answering, the watchdogs).
//!
//! ## Why the connections live apart from it
//! A connection is driven with a closure that answers its requests:
//! `conn.drive(|seq, request| service::answer(ctx, id, seq, request))`.
//! For that call the connection is borrowed, mutably, from the slab, and
//! answering needs the timers and the scratch buffers, mutably too. Rust
//! allows two mutable borrows at once only of two different things. So
//! three of `EventLoop`'s fields are kept apart: its connections (the
//! slab), its acceptor (whose steps need `&mut Context` too), and this
//! context; a step borrows the ones it needs, and nothing reaches one
//! through another.
//!
//! Nothing here is shared with another thread except through `shared`
//! (state.rs), so nothing here needs a lock.

use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::{Poll, Registry};
use shared::image::ImageScratch;
use shared::panics::Answerer;
use shared::stats::Counters;

use crate::config::Config;
use crate::live::Window;
use crate::offload::Offload;
use crate::state::{LoopShared, Shared};
use crate::timers::Timers;

pub(crate) struct Context {
    /// Which loop this is: its part of `shared` is `shared.loops[index]`,
    /// and offloaded answers come back to it.
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) poll: Poll,
    pub(crate) timers: Timers,
    /// Connections accepted for this loop (by its own acceptor, or handed
    /// over by loop 0's), waiting to be registered and served.
    pub(crate) accepted: Vec<TcpStream>,
    /// `--offload-workers` above 0: where image jobs go instead of inline.
    pub(crate) offload: Option<Arc<Offload>>,
    pub(crate) scratch: ImageScratch,
    /// This loop's current second of utilisation and lateness (live.rs).
    pub(crate) window: Window,
    /// Database queries on `timers`, mirrored into this loop's
    /// `db_waiting` for `STATS`.
    db_waiting: u64,
}

impl Context {
    pub(crate) fn new(
        index: usize,
        shared: Arc<Shared>,
        poll: Poll,
        offload: Option<Arc<Offload>>,
    ) -> Self {
        Context {
            window: Window::new(shared.started),
            index,
            shared,
            poll,
            timers: Timers::default(),
            accepted: Vec::new(),
            offload,
            scratch: ImageScratch::new(),
            db_waiting: 0,
        }
    }

    pub(crate) fn registry(&self) -> &Registry {
        self.poll.registry()
    }

    pub(crate) fn config(&self) -> &Config {
        &self.shared.config
    }

    /// This loop's part of the shared state.
    pub(crate) fn mine(&self) -> &LoopShared {
        &self.shared.loops[self.index]
    }

    /// The loop is about to wait in `poll` (live.rs).
    pub(crate) fn entering_poll(&mut self, now: Instant) {
        let published = &self.shared.loops[self.index].live;
        self.window.entering_poll(now, published);
    }

    /// `poll` returned (live.rs).
    pub(crate) fn left_poll(&mut self, now: Instant) {
        let published = &self.shared.loops[self.index].live;
        self.window.left_poll(now, published);
    }

    /// Counts database queries in and out of the timer heap.
    pub(crate) fn db_waiting_changed(&mut self, by: i64) {
        self.db_waiting = self.db_waiting.saturating_add_signed(by);
        self.mine().db_waiting.set(self.db_waiting);
    }
}

/// A panic while answering is counted in this loop's counters.
impl Answerer for Context {
    fn scratch(&mut self) -> &mut ImageScratch {
        &mut self.scratch
    }

    fn counters(&self) -> &Counters {
        &self.mine().counters
    }
}
