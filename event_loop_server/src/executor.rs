//! An executor by hand, on `std::task` alone: tasks in the loop's slab, a
//! ready queue, and a waker per task that puts the task on it.
//!
//! A future does nothing until it is polled, and a poll that cannot finish
//! returns `Pending` after handing the waker in its `Context` to whatever
//! it waits for. Whoever finishes that wait calls `wake`, and the task is
//! polled again. The whole runtime is that cycle:
//!
//! ```text
//!            ┌──────────── the loop's turn (event_loop.rs) ─────────────┐
//!            │                                                          │
//!   poll ──▶ readiness event ──▶ Io::event ──▶ waker.wake()  (reactor.rs)│
//!    ▲       due timer ────────▶ Timer::Wake ─▶ waker.wake() (timers.rs)│
//!    │       offload worker ──▶ OneShot::fill ▶ waker.wake() (leaf.rs,  │
//!    │             (another thread: also wakes the poll)     another    │
//!    │                                                       thread)    │
//!    │                            │                                     │
//!    │                            ▼                                     │
//!    │        TaskWaker::wake: first wake since its last poll?          │
//!    │        push its id on the ReadyQueue (else nothing: once is      │
//!    │        enough)                                                   │
//!    │                            │                                     │
//!    │                            ▼                                     │
//!    │        Tasks::run_ready: take the queue as it is; for each id    │
//!    │        still alive, clear its flag, then poll its future once    │
//!    │           Pending ─▶ its leaf futures kept the waker; wait       │
//!    │           Ready   ─▶ the connection is over; the loop closes it  │
//!    └────────────────────────────┘                                     │
//!            └──────────────────────────────────────────────────────────┘
//! ```
//!
//! Three rules make it correct:
//! - **No lost wake-up.** The flag is cleared *before* the poll, so a wake
//!   that comes during the poll (or on another thread meanwhile) queues the
//!   task again; one that came before is seen by the poll itself.
//! - **Polled once however often woken.** A task woken twice before it
//!   runs is on the queue once: only the wake that sets the flag pushes.
//! - **Fair.** `run_ready` polls only the ids queued when it began; a task
//!   that wakes itself (its budget spent, leaf.rs's `yield_now`) runs next
//!   turn, after `poll` has looked at every other socket.
//!
//! The queue is a `Mutex<Vec>` because wakers may fire on other threads
//! (an offload worker finishing an image). Such a wake must also interrupt
//! the loop if it is asleep in `poll`, so a push from any thread but the
//! loop's own calls the loop's `mio::Waker`, one `write` to an eventfd; a
//! push from the loop's own thread does not need it, since the loop looks
//! at the queue before it sleeps. `executor_model.rs` checks these rules
//! against generated orders of wakes and polls.
//!
//! What it leaves out, next to tokio: work stealing between threads, a
//! budget on the executor's own queue, `JoinHandle`s. Each task here is a
//! connection, and the loop (not the task) closes its socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};

use shared::sync::lock;

use crate::slab::{ConnectionId, Slab};

/// Ids of tasks to poll, pushed by wakers on any thread.
pub(crate) struct ReadyQueue {
    ids: Mutex<Vec<ConnectionId>>,
    /// The thread that runs the tasks: wakes from it need no poll waker.
    runner: ThreadId,
    /// Interrupts the loop's `poll` (shared with state.rs's `LoopShared`).
    poll_waker: Arc<mio::Waker>,
}

impl ReadyQueue {
    /// A queue whose tasks run on the calling thread.
    pub(crate) fn new(poll_waker: Arc<mio::Waker>) -> Self {
        ReadyQueue {
            ids: Mutex::new(Vec::new()),
            runner: thread::current().id(),
            poll_waker,
        }
    }

    fn push(&self, id: ConnectionId) {
        lock(&self.ids).push(id);
        if THIS_THREAD.with(|this| *this) != self.runner {
            // The loop may be asleep in `poll`, which knows nothing of this
            // queue. An error means the loop is gone, and the task with it.
            let _ = self.poll_waker.wake();
        }
    }

    /// Swaps the queue for `empty`, so neither side allocates per turn.
    fn take(&self, empty: &mut Vec<ConnectionId>) {
        std::mem::swap(&mut *lock(&self.ids), empty);
    }

    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.ids).is_empty()
    }
}

thread_local! {
    /// Read on every wake: cheaper than asking for `thread::current()`.
    static THIS_THREAD: ThreadId = thread::current().id();
}

/// What a task's `Waker` is: the task's id and whether it is queued.
struct TaskWaker {
    id: ConnectionId,
    /// True from the wake that queued the task until just before its poll.
    queued: AtomicBool,
    queue: Arc<ReadyQueue>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Only the wake that finds the flag clear queues the task.
        if !self.queued.swap(true, Ordering::AcqRel) {
            self.queue.push(self.id);
        }
    }
}

/// A task's future: the connection's `async fn`, boxed so every task has
/// one type, whatever the future's.
pub(crate) type TaskFuture<T> = Pin<Box<dyn Future<Output = T>>>;

struct Task<T, X> {
    future: TaskFuture<T>,
    /// Made once, handed to every poll: cloning it is one reference count.
    waker: Waker,
    flag: Arc<TaskWaker>,
    /// What the loop keeps beside the future (the connection's socket).
    extra: X,
}

/// The tasks of one loop: futures with output `T`, each with an `X`.
pub(crate) struct Tasks<T, X> {
    slab: Slab<Task<T, X>>,
    queue: Arc<ReadyQueue>,
    /// The ids being run this turn; swapped with the queue's, and kept
    /// (empty) between turns.
    running: Vec<ConnectionId>,
}

impl<T, X> Tasks<T, X> {
    pub(crate) fn new(queue: Arc<ReadyQueue>) -> Self {
        Tasks {
            slab: Slab::new(),
            queue,
            running: Vec::new(),
        }
    }

    /// Adds the task `make` returns, told its id, and queues its first poll.
    pub(crate) fn spawn(
        &mut self,
        make: impl FnOnce(ConnectionId) -> (TaskFuture<T>, X),
    ) -> ConnectionId {
        let queue = &self.queue;
        let id = self.slab.insert_with(|id| {
            let (future, extra) = make(id);
            let flag = Arc::new(TaskWaker {
                id,
                queued: AtomicBool::new(false),
                queue: Arc::clone(queue),
            });
            let waker = Waker::from(Arc::clone(&flag));
            Task {
                future,
                waker,
                flag,
                extra,
            }
        });
        self.wake(id);
        id
    }

    /// Queues `id` as its own waker would.
    pub(crate) fn wake(&self, id: ConnectionId) {
        if let Some(task) = self.slab.get(id) {
            task.waker.wake_by_ref();
        }
    }

    /// Polls, once each, the tasks queued when this began, and returns
    /// those that finished, with their outputs (they stay in the slab until
    /// `remove`). `after` runs after each poll: the loop's bookkeeping.
    pub(crate) fn run_ready(
        &mut self,
        mut after: impl FnMut(ConnectionId),
    ) -> Vec<(ConnectionId, T)> {
        let mut finished = Vec::new();
        let mut running = std::mem::take(&mut self.running);
        self.queue.take(&mut running);
        for &id in &running {
            // A task closed since its wake (by the watchdog) is skipped:
            // its id's generation no longer matches.
            let Some(task) = self.slab.get_mut(id) else {
                continue;
            };
            // Cleared before the poll, so a wake during it queues again.
            task.flag.queued.store(false, Ordering::Release);
            let mut cx = Context::from_waker(&task.waker);
            if let Poll::Ready(output) = task.future.as_mut().poll(&mut cx) {
                finished.push((id, output));
            }
            after(id);
        }
        running.clear();
        self.running = running;
        finished
    }

    /// Whether a poll is owed: `poll` must not sleep.
    pub(crate) fn has_ready(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Drops the task (its future with it: whatever it awaited is
    /// cancelled) and gives back its `X`.
    pub(crate) fn remove(&mut self, id: ConnectionId) -> Option<X> {
        self.slab.remove(id).map(|task| task.extra)
    }

    pub(crate) fn get(&self, id: ConnectionId) -> Option<&X> {
        self.slab.get(id).map(|task| &task.extra)
    }

    pub(crate) fn id_at(&self, slot: usize) -> Option<ConnectionId> {
        self.slab.id_at(slot)
    }

    pub(crate) fn ids(&self) -> Vec<ConnectionId> {
        self.slab.ids()
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(crate) fn contains(&self, id: ConnectionId) -> bool {
        self.slab.contains(id)
    }
}
