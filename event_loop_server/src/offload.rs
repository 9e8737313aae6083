//! The hybrid: the event loop keeps every socket, and a pool of threads does
//! the computing.
//!
//! ```text
//!   event loop ──(conn, seq, job)──▶ WorkerPool ──▶ worker runs the image job
//!       ▲                                              │
//!       └── Waker wakes poll ◀── results channel ◀─────┘
//! ```
//!
//! An inline `IMAGE` job stops the loop, and with it every other client, for
//! as long as the job runs. Here the loop only hands the job over and goes
//! on serving; when a worker finishes, it puts the answer on a channel and
//! wakes the loop's `poll` through a `mio::Waker`. The loop then drops the
//! answer into the request's place, so answers still leave in request order.
//!
//! This is how production event loops run CPU work: libuv's thread pool
//! under Node.js, tokio's `spawn_blocking`. The pool is the very one the
//! thread-pool server is built on.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

use mio::Waker;
use shared::image::{ImageJob, ImageScratch};
use shared::protocol::response;
use shared::stats::Counters;
use thread_pool_server::pool::WorkerPool;

use crate::slab::ConnectionId;

/// Image jobs that may wait for a free worker before new ones get `ERR`.
const QUEUE: usize = 1024;

struct Job {
    conn: ConnectionId,
    seq: u64,
    image: ImageJob,
}

/// A finished job, on its way back to the loop.
pub(crate) struct Done {
    pub(crate) conn: ConnectionId,
    pub(crate) seq: u64,
    pub(crate) line: String,
}

pub(crate) struct Offload {
    /// Dropped with the loop: the pool then finishes its queue and joins.
    pool: WorkerPool<Job>,
    /// Unbounded, but never holds more than the pool's queue plus one
    /// answer per worker, because only submitted jobs produce answers.
    done: Receiver<Done>,
}

impl Offload {
    pub(crate) fn start(
        workers: usize,
        waker: Arc<Waker>,
        counters: Arc<Counters>,
    ) -> io::Result<Self> {
        let (send_done, done) = mpsc::channel();
        let pool = WorkerPool::start(
            "offload-worker",
            workers,
            QUEUE,
            move |worker, scratch: &mut ImageScratch, job: Job| {
                // Caught here, not only by the pool, so the client still gets its
                // one answer and the connection does not wait for ever.
                let line = match catch_unwind(AssertUnwindSafe(|| {
                    response::run_image(scratch, &job.image, Some(worker))
                })) {
                    Ok(line) => line,
                    Err(_) => {
                        *scratch = ImageScratch::new();
                        Counters::add(&counters.panics, 1);
                        response::internal_error()
                    }
                };
                // If the loop is gone, so is the client: nothing to do.
                if send_done
                    .send(Done {
                        conn: job.conn,
                        seq: job.seq,
                        line,
                    })
                    .is_ok()
                {
                    let _ = waker.wake();
                }
            },
        )?;
        Ok(Offload { pool, done })
    }

    /// Hands a job to the pool; `false` if its queue is full.
    pub(crate) fn submit(&self, conn: ConnectionId, seq: u64, image: ImageJob) -> bool {
        self.pool.try_submit(Job { conn, seq, image }).is_ok()
    }

    /// Answers finished since the last call.
    pub(crate) fn take_done(&self) -> Vec<Done> {
        self.done.try_iter().collect()
    }
}
