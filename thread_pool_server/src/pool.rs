//! A fixed pool of worker threads fed by a bounded queue: the whole of
//! "parallelism" in this project is this file.
//!
//! ```text
//!   submitter ──try_submit──▶ [ bounded queue ] ──▶ worker 0 ─ job, job, ...
//!                                   │           ──▶ worker 1 ─ job, ...
//!                                   │           ──▶ worker N-1
//!                         full? the job comes back to the submitter
//! ```
//!
//! - The number of threads is fixed when the pool starts. Parallelism is
//!   bounded by cores, so more threads than cores only adds switching; a
//!   fixed count also bounds memory, whatever the load.
//! - The queue is bounded too, and [`WorkerPool::try_submit`] never blocks:
//!   when every worker is busy and the queue is full, the caller gets its job
//!   back and decides what to do (the server answers `ERR busy`). An
//!   unbounded queue would turn overload into unbounded memory and latency.
//! - Each worker owns a `S` (its scratch buffers) for its whole life, so jobs
//!   reuse memory and no lock is held while a job runs. The only lock is on
//!   the queue's receiving end, held while an idle worker waits for a job.
//! - A job that panics is caught: the worker logs one line and takes the
//!   next job, so a bug in one request never shrinks the pool.
//!
//! The event loop server reuses this pool for its offload mode.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

pub struct WorkerPool<J> {
    /// Dropping the last sender is the shutdown signal: once the queue is
    /// empty, every worker's `recv` fails and the worker returns.
    sender: Option<SyncSender<J>>,
    workers: Vec<JoinHandle<()>>,
    /// Jobs submitted and not yet picked up by a worker.
    queued: Arc<AtomicUsize>,
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
        let (sender, receiver) = mpsc::sync_channel::<J>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        let queued = Arc::new(AtomicUsize::new(0));
        let run = Arc::new(run);
        let mut pool = WorkerPool {
            sender: Some(sender),
            workers: Vec::with_capacity(workers),
            queued,
        };
        for index in 0..workers {
            let receiver = Arc::clone(&receiver);
            let queued = Arc::clone(&pool.queued);
            let run = Arc::clone(&run);
            let spawned = thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || worker_loop(index, &receiver, &queued, &*run));
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

    /// Queues `job` unless the queue is full (or the pool is shutting
    /// down), in which case the job comes back unrun.
    pub fn try_submit(&self, job: J) -> Result<(), J> {
        let Some(sender) = &self.sender else {
            return Err(job);
        };
        // Count first, so a worker that takes the job at once never sees
        // the counter go below zero.
        self.queued.fetch_add(1, Ordering::Relaxed);
        match sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                Err(job)
            }
        }
    }

    /// The live count of jobs waiting in the queue.
    pub fn queued_counter(&self) -> Arc<AtomicUsize> {
        Arc::clone(&self.queued)
    }

    pub fn size(&self) -> usize {
        self.workers.len()
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
        self.sender = None;
        for worker in self.workers.drain(..) {
            // A worker only ends by returning; its jobs' panics are caught.
            let _ = worker.join();
        }
    }
}

fn worker_loop<J, S: Default>(
    index: usize,
    receiver: &Mutex<Receiver<J>>,
    queued: &AtomicUsize,
    run: &(impl Fn(usize, &mut S, J) + ?Sized),
) {
    let mut state = S::default();
    loop {
        // The lock is held only while this worker waits for a job; it is
        // released before the job runs. A poisoned lock cannot happen (no
        // code panics while holding it) but would be harmless: the receiver
        // inside is still valid.
        let next = {
            let receiver = receiver
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            receiver.recv()
        };
        let Ok(job) = next else {
            return; // queue closed and empty: shutdown
        };
        queued.fetch_sub(1, Ordering::Relaxed);
        if catch_unwind(AssertUnwindSafe(|| run(index, &mut state, job))).is_err() {
            // The panic hook already printed the cause. The state may be
            // half-updated, so start again from a fresh one.
            state = S::default();
        }
    }
}
