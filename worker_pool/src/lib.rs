//! A fixed pool of worker threads fed by a bounded queue: the thread pool
//! server's parallelism is this crate, and the event loop server's offload
//! mode runs its image jobs on it too. (The event loop's `--loops N` is the
//! other way to use every core: a loop per core, no queue between them.)
//!
//! ```text
//!   submitter ──try_submit──▶ [ bounded queue ] ──▶ worker 0 ─ job, job, ...
//!                                   │           ──▶ worker 1 ─ job, ...
//!                                   │           ──▶ worker N-1
//!                         full? the job comes back to the submitter
//! ```
//!
//! - The number of threads is fixed when the pool starts. For computing,
//!   parallelism is bounded by cores, so more threads than cores only adds
//!   switching; threads that mostly block (a thread per connection, asleep
//!   on a database) are the other case, paid for in memory and switches. A
//!   fixed count bounds memory, whatever the load.
//! - The queue is bounded too, and [`WorkerPool::try_submit`] never blocks:
//!   when every worker is busy and the queue is full, the caller gets its job
//!   back and decides what to do (the server answers `ERR busy`). An
//!   unbounded queue would turn overload into unbounded memory and latency.
//! - "Busy" is counted, not guessed from the queue: `try_submit` accepts a
//!   job while fewer than `workers + queue` jobs are running or waiting.
//!   The queue's length alone would mislead: idle workers take jobs one at
//!   a time, each after a thread wake-up, so 128 connections arriving at
//!   once could fill a queue of 64 before any of 128 idle workers woke.
//! - The queue is a `VecDeque` under a `Mutex`, and idle workers wait on a
//!   `Condvar`: a job wakes at most one of them (none, if a worker just
//!   done with its last job takes it first). (The Rust Book's pool
//!   shares an `mpsc::Receiver` under a mutex instead. There, one idle
//!   worker waits in `recv` holding the lock and the others wait for the
//!   lock, so every job costs two wake-ups: the worker that takes it, and
//!   the next one that takes the lock to wait. For a connection served for
//!   seconds that is nothing; for a job of a millisecond, such as an
//!   offloaded image, the second wake-up is a cost of the same order.)
//! - Each worker owns a state `S` (its scratch buffers) for its whole life, so jobs
//!   reuse memory and no lock is held while a job runs. The lock is held
//!   only to push or pop a job, or to mark the queue closed.
//! - A job that panics is caught: the panic hook prints its one line and
//!   the worker takes the next job, so a bug in one request never shrinks
//!   the pool.

use std::collections::VecDeque;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};

use shared::sync;

pub struct WorkerPool<J> {
    shared: Arc<Shared<J>>,
    workers: Vec<JoinHandle<()>>,
    /// Jobs submitted and not yet picked up by a worker.
    queued: Arc<AtomicUsize>,
    /// Workers plus queue: how many jobs may be unfinished at once.
    room: usize,
}

/// What the submitter and the workers share.
struct Shared<J> {
    queue: Mutex<Queue<J>>,
    /// Signalled once per job pushed, and to every worker at shutdown.
    job_ready: Condvar,
    /// Jobs submitted and not yet finished (running or queued): admission
    /// is decided on this alone. Shared with [`PoolLoad`] readers.
    unfinished: Arc<AtomicUsize>,
}

/// How loaded a pool is now, for a monitor: two counters the pool keeps
/// anyway, read with relaxed loads, so watching costs the pool nothing.
#[derive(Clone)]
pub struct PoolLoad {
    queued: Arc<AtomicUsize>,
    unfinished: Arc<AtomicUsize>,
}

impl PoolLoad {
    /// Jobs waiting for a worker.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Workers running a job: unfinished jobs that are not queued. The two
    /// loads are not one instant, so this may be off by a job in flight.
    pub fn busy(&self) -> usize {
        let unfinished = self.unfinished.load(Ordering::Relaxed);
        unfinished.saturating_sub(self.queued())
    }
}

struct Queue<J> {
    jobs: VecDeque<J>,
    /// Set at shutdown: no job comes any more, and a worker that finds the
    /// queue empty returns.
    closed: bool,
}

impl<J> Shared<J> {
    /// The queue, locked. No code panics while holding this lock, so it is
    /// never poisoned; if it were, the queue inside would still be whole.
    fn lock(&self) -> MutexGuard<'_, Queue<J>> {
        sync::lock(&self.queue)
    }
}

impl<J: Send + 'static> WorkerPool<J> {
    /// Starts `workers` threads named `{name}-{i}`, each running
    /// `run(i, &mut its_state, job)` for every job it takes off the queue.
    /// Fails, with every started thread joined again, if a thread cannot be
    /// spawned.
    pub fn start<S, F>(name: &str, workers: usize, queue: usize, run: F) -> io::Result<Self>
    where
        S: Default,
        F: Fn(usize, &mut S, J) + Send + Sync + 'static,
    {
        let room = workers.saturating_add(queue);
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                closed: false,
            }),
            job_ready: Condvar::new(),
            unfinished: Arc::new(AtomicUsize::new(0)),
        });
        let run = Arc::new(run);
        let mut pool = WorkerPool {
            shared,
            workers: Vec::with_capacity(workers),
            queued: Arc::new(AtomicUsize::new(0)),
            room,
        };
        for index in 0..workers {
            let shared = Arc::clone(&pool.shared);
            let queued = Arc::clone(&pool.queued);
            let run = Arc::clone(&run);
            let spawned = thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || worker_loop(index, &shared, &queued, &*run));
            match spawned {
                Ok(handle) => pool.workers.push(handle),
                Err(e) => {
                    drop(pool); // joins the workers already started
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot start worker thread {index}: {e}"),
                    ));
                }
            }
        }
        Ok(pool)
    }

    /// Queues `job` unless every worker is busy and the queue is full, in
    /// which case the job comes back unrun. (No job can arrive during
    /// shutdown: `shutdown` and `drop` take the pool itself.)
    pub fn try_submit(&self, job: J) -> Result<(), J> {
        let room = self.room;
        let admitted =
            self.shared
                .unfinished
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < room).then_some(n + 1)
                });
        if admitted.is_err() {
            return Err(job);
        }
        let mut queue = self.shared.lock();
        queue.jobs.push_back(job);
        self.queued.fetch_add(1, Ordering::Relaxed);
        drop(queue);
        self.shared.job_ready.notify_one();
        Ok(())
    }

    /// The live count of jobs waiting in the queue.
    pub fn queued_counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.queued)
    }

    /// Queued and running jobs, readable from any thread.
    pub fn load(&self) -> PoolLoad {
        PoolLoad {
            queued: Arc::clone(&self.queued),
            unfinished: Arc::clone(&self.shared.unfinished),
        }
    }

    /// Closes the queue, lets the workers finish every job already queued,
    /// and joins them.
    pub fn shutdown(self) {
        drop(self);
    }
}

/// Dropping a pool is shutting it down, so an early return or a panic on
/// the submitting side never leaves worker threads behind.
impl<J> Drop for WorkerPool<J> {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.job_ready.notify_all();
        for worker in self.workers.drain(..) {
            // A worker only ends by returning; its jobs' panics are caught.
            let _ = worker.join();
        }
    }
}

fn worker_loop<J, S: Default>(
    index: usize,
    shared: &Shared<J>,
    queued: &AtomicUsize,
    run: &(impl Fn(usize, &mut S, J) + ?Sized),
) {
    let mut state = S::default();
    while let Some(job) = next_job(shared) {
        queued.fetch_sub(1, Ordering::Relaxed);
        let outcome = catch_unwind(AssertUnwindSafe(|| run(index, &mut state, job)));
        // Finished, panicked or not: its room is free for the next job.
        shared.unfinished.fetch_sub(1, Ordering::AcqRel);
        if outcome.is_err() {
            // The panic hook already printed the cause. The state may be
            // half-updated, so start again from a fresh one.
            state = S::default();
        }
    }
}

/// The next job, waiting for one while the queue is empty; `None` once the
/// pool is shutting down and nothing is left (shutdown finishes the queue).
fn next_job<J>(shared: &Shared<J>) -> Option<J> {
    let mut queue = shared.lock();
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            return Some(job);
        }
        if queue.closed {
            return None;
        }
        // Spurious wake-ups happen: the loop looks again either way.
        queue = sync::wait(&shared.job_ready, queue);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    /// A burst as large as the pool is taken whole, even before any worker
    /// has woken up: admission counts free workers, it does not wait for
    /// them to reach the queue. One job more than workers plus queue is
    /// refused, and a finished job makes room again.
    #[test]
    fn busy_means_every_worker_busy_and_the_queue_full() {
        let (started_tx, started) = channel::<usize>();
        let (release_tx, release) = channel::<()>();
        let release = Mutex::new(release);
        let pool = WorkerPool::start("test-worker", 8, 2, move |_, _: &mut (), job: usize| {
            let _ = started_tx.send(job);
            let _ = release.lock().map(|r| r.recv());
        })
        .expect("a pool");
        // Declared after the pool, so dropped before it: a failing assert
        // releases the workers instead of joining them forever.
        let release_tx = release_tx;
        for job in 0..10 {
            assert!(pool.try_submit(job).is_ok(), "job {job} refused");
        }
        assert_eq!(pool.try_submit(10), Err(10));
        // One worker is running and waiting for the release; others queue
        // on the release lock. Finish one job: there is room for one more.
        let first = started.recv_timeout(Duration::from_secs(10));
        assert!(first.is_ok());
        release_tx.send(()).expect("workers alive");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut job = 11;
        loop {
            match pool.try_submit(job) {
                Ok(()) => break,
                Err(back) => job = back,
            }
            assert!(std::time::Instant::now() < deadline, "room never freed");
            thread::yield_now();
        }
        assert_eq!(pool.try_submit(12), Err(12));
        for _ in 0..11 {
            let _ = release_tx.send(());
        }
        pool.shutdown();
    }
}

#[cfg(test)]
mod model;
