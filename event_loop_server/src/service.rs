//! How a loop answers each request without ever waiting for it.
//!
//! A quick request (`PING`, `HELP`, `STATS`) is answered on the spot. A
//! database query becomes a timer: the answer is made when the timer fires,
//! and until then the request is an empty place in its connection's answer
//! queue. An image job either runs right here, stalling the whole loop for
//! its duration (the lesson of the CPU-bound workload), or goes to the
//! offload pool and comes back through the loop's waker.
//!
//! A panic while answering (a bug) must not take the loop, and with it
//! every connection, down: it answers `ERR internal error` and is counted.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::image::ImageScratch;
use shared::protocol::{response, Request};
use shared::stats::{Counters, Lateness};

use crate::offload::Offload;
use crate::slab::ConnectionId;
use crate::timers::{Timer, Timers};
use crate::Shared;

pub(crate) struct Service {
    /// Which loop this is: offloaded answers come back to it.
    pub(crate) index: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) timers: Timers,
    /// Database queries on `timers`, mirrored into this loop's `db_waiting`.
    pub(crate) db_waiting: u64,
    scratch: ImageScratch,
    /// `--offload-workers` above 0: where image jobs go instead of inline.
    offload: Option<Arc<Offload>>,
}

impl Service {
    pub(crate) fn new(index: usize, shared: Arc<Shared>, offload: Option<Arc<Offload>>) -> Self {
        Service {
            index,
            shared,
            timers: Timers::default(),
            db_waiting: 0,
            scratch: ImageScratch::new(),
            offload,
        }
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.loops[self.index].counters
    }

    /// The answer now, or `None` when it will come through
    /// `Connection::fill` with the same `seq`.
    pub(crate) fn answer(
        &mut self,
        conn: ConnectionId,
        seq: u64,
        request: Request,
    ) -> Option<String> {
        match catch_unwind(AssertUnwindSafe(|| {
            self.answer_uncaught(conn, seq, request)
        })) {
            Ok(answer) => answer,
            Err(_) => {
                // The scratch buffers may be half-written: start afresh.
                self.scratch = ImageScratch::new();
                Counters::add(&self.counters().panics, 1);
                Some(response::internal_error())
            }
        }
    }

    /// Counts database queries in and out of the timer heap.
    pub(crate) fn db_waiting_changed(&mut self, by: i64) {
        self.db_waiting = self.db_waiting.saturating_add_signed(by);
        let mirror = &self.shared.loops[self.index].db_waiting;
        mirror.store(self.db_waiting, Ordering::Relaxed);
    }

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
            Request::Stats => stats(&self.shared),
            Request::Image(job) => match &self.offload {
                Some(offload) if offload.submit(self.index, conn, seq, job) => {
                    return None; // the answer comes back through the waker
                }
                Some(_) => response::busy_image_queue(),
                // Inline: the whole loop, every connection, waits for this.
                None => response::run_image(&mut self.scratch, &job, None),
            },
            Request::Db { id, delay_ms } => {
                let default = self.shared.config.common.default_db_delay;
                let delay = delay_ms.map_or(default, Duration::from_millis);
                // Timed from now, not from the start of this turn, so the
                // reply can never leave before the delay has passed.
                let timer = Timer::DbReply { conn, seq, id };
                self.timers.add(Instant::now() + delay, timer);
                self.db_waiting_changed(1);
                return None;
            }
        })
    }
}

/// `STATS`: totals over every loop, then how the connections are spread.
fn stats(shared: &Shared) -> String {
    let loops = &shared.loops;
    let sum = |pick: fn(&Counters) -> &std::sync::atomic::AtomicU64| -> u64 {
        loops.iter().map(|l| Counters::get(pick(&l.counters))).sum()
    };
    let lateness = |q| Lateness::quantile_micros(loops.iter().map(|l| &l.lateness), q);
    let mut extra = vec![
        ("max_connections", shared.config.max_connections as u64),
        (
            "db_waiting",
            loops
                .iter()
                .map(|l| l.db_waiting.load(Ordering::Relaxed))
                .sum(),
        ),
        ("busy_rejections", sum(|c| &c.busy_rejections)),
        ("idle_closes", sum(|c| &c.idle_closes)),
        ("panics", sum(|c| &c.panics)),
        ("timer_late_p50_us", lateness(0.5).unwrap_or(0)),
        ("timer_late_p99_us", lateness(0.99).unwrap_or(0)),
        ("loops", loops.len() as u64),
    ];
    let names: Vec<String> = (0..loops.len())
        .map(|i| format!("loop{i}_connections"))
        .collect();
    for (name, each) in names.iter().zip(loops) {
        extra.push((name, Counters::get(&each.counters.open_connections)));
    }
    response::stats(
        sum(|c| &c.open_connections),
        sum(|c| &c.requests_answered),
        &extra,
    )
}
