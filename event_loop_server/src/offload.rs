//! The hybrid: the event loop keeps every socket, and a pool of threads does
//! the computing.
//!
//! ```text
//!   event loop i ──(i, conn, seq, job)──▶ WorkerPool ──▶ a worker runs it
//!       ▲                                                    │
//!       └── loop i's Waker wakes its poll ◀── loop i's channel ◀┘
//! ```
//!
//! An inline `IMAGE` job stops the loop, and with it every other client, for
//! as long as the job runs. Here the loop only hands the job over and goes
//! on serving; when a worker finishes, it puts the answer on a channel and
//! wakes the loop's `poll` through a `mio::Waker`. The loop then drops the
//! answer into the request's place (`take_offloaded_answers` in
//! event_loop.rs), so answers still leave in request order.
//!
//! With several loops (`--loops`) they share the one pool, and each answer
//! goes back to the loop that owns its connection, through that loop's own
//! channel and waker.
//!
//! This is how production event loops run CPU work: libuv's thread pool
//! under Node.js, tokio's `spawn_blocking`. The pool is the very one the
//! thread-pool server is built on (the `worker_pool` crate).

use std::io;
use std::sync::Arc;

use shared::image::{ImageJob, ImageScratch};
use shared::panics::answer_caught;
use shared::protocol::response;
use worker_pool::{PoolLoad, WorkerPool};

use crate::leaf::OneShot;
use crate::slab::ConnectionId;
use crate::state::{Done, Shared};

/// Image jobs that may wait for a free worker before new ones get `ERR`.
const QUEUE: usize = 1024;

struct Job {
    /// The loop that owns the connection: the answer goes back to it.
    owner: usize,
    reply_to: ReplyTo,
    image: ImageJob,
}

/// Where the answer goes on that loop.
enum ReplyTo {
    /// A state machine's place in its answer queue: through the loop's
    /// channel, then its waker.
    Place { conn: ConnectionId, seq: u64 },
    /// An `async fn`'s `Offloaded` future: its slot, whose waker queues the
    /// task and wakes the loop (executor.rs).
    Task(Arc<OneShot>),
}

/// One pool for every loop of the server. Dropped with the last loop: the
/// pool then finishes its queue and joins.
pub(crate) struct Offload {
    pool: WorkerPool<Job>,
}

impl Offload {
    pub(crate) fn start(workers: usize, shared: Arc<Shared>) -> io::Result<Self> {
        let pool = WorkerPool::start(
            "offload-worker",
            workers,
            QUEUE,
            move |worker, scratch: &mut ImageScratch, job: Job| {
                let owner = &shared.loops[job.owner];
                // Caught here, not only by the pool, so the client still gets
                // its one answer and the connection does not wait for ever.
                let line = answer_caught(&mut (scratch, &owner.counters), |(scratch, _)| {
                    response::run_image(scratch, &job.image, Some(worker))
                });
                match job.reply_to {
                    ReplyTo::Place { conn, seq } => {
                        // If the loop is gone, so is the client: nothing to do.
                        if owner.done.send(Done { conn, seq, line }).is_ok() {
                            let _ = owner.waker.wake();
                        }
                    }
                    ReplyTo::Task(slot) => slot.fill(line),
                }
            },
        )?;
        Ok(Offload { pool })
    }

    /// The pool's queue and busy workers, for the live view.
    pub(crate) fn load(&self) -> PoolLoad {
        self.pool.load()
    }

    /// Hands a job to the pool; `false` if its queue is full.
    pub(crate) fn submit(
        &self,
        owner: usize,
        conn: ConnectionId,
        seq: u64,
        image: ImageJob,
    ) -> bool {
        let reply_to = ReplyTo::Place { conn, seq };
        self.try_submit(owner, reply_to, image)
    }

    /// The same for an `async fn` connection: the answer lands in `slot`.
    pub(crate) fn submit_for_task(
        &self,
        owner: usize,
        slot: Arc<OneShot>,
        image: ImageJob,
    ) -> bool {
        self.try_submit(owner, ReplyTo::Task(slot), image)
    }

    fn try_submit(&self, owner: usize, reply_to: ReplyTo, image: ImageJob) -> bool {
        let job = Job {
            owner,
            reply_to,
            image,
        };
        self.pool.try_submit(job).is_ok()
    }
}
