//! The ordered join: one connection's answers in flight, run at once,
//! handed out in request order. What `FuturesOrdered` is to a tokio server.
//!
//! This is where `async` code stops looking sequential. Written the
//! obvious way, a session awaits each answer before reading the next
//! request:
//!
//! ```text
//!   loop { let request = read().await; let answer = serve(request).await; write(answer).await }
//! ```
//!
//! and three pipelined `DB x 300` take 900 ms, because a Rust future is
//! lazy: the second query's timer is not even set until the first answer
//! is written. To wait for all three at once, the session must hold several
//! unfinished futures and poll each of them, which no single `.await` does.
//! So it pushes each answer future here and takes from here the oldest
//! answer once that one is ready; the three timers run together, and the
//! answers still leave in order.
//!
//! Polling every waiting answer on every poll of the task would cost a
//! pass over up to `MAX_IN_FLIGHT` futures per request read. So the join
//! gives its futures a waker of its own ([`JoinWaker`]): it wakes the task
//! *and* notes that an answer moved, and the join polls its futures only
//! after such a wake, or when a new one has been pushed. (`FuturesOrdered`
//! goes one step further, a waker per future, to poll only the one woken.)
//!
//! It is bounded by the session, not here: the session stops reading
//! requests while `MAX_IN_FLIGHT` answers are owed, as the state machine
//! does.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

use shared::protocol::Reply;

/// One answer's future, boxed: each request's answer is its own future, and
/// a queue needs them at fixed addresses (a future may point into itself).
pub(crate) type AnswerFuture = Pin<Box<dyn Future<Output = String>>>;

enum Answer {
    Waiting(AnswerFuture),
    Ready(String),
}

struct Place {
    reply: Reply,
    answer: Answer,
}

/// What the join's futures are handed as their waker.
struct JoinWaker {
    /// An answer's leaf future woke us: poll the waiting ones again.
    moved: AtomicBool,
    /// The task's own waker; its executor gives a task one for life, so it
    /// is kept the first time the join is polled.
    task: OnceLock<Waker>,
}

impl Wake for JoinWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.moved.store(true, Ordering::Release);
        if let Some(task) = self.task.get() {
            task.wake_by_ref();
        }
    }
}

pub(crate) struct InOrder {
    places: VecDeque<Place>,
    flag: Arc<JoinWaker>,
    waker: Waker,
}

impl InOrder {
    pub(crate) fn new() -> Self {
        let flag = Arc::new(JoinWaker {
            moved: AtomicBool::new(false),
            task: OnceLock::new(),
        });
        InOrder {
            waker: Waker::from(Arc::clone(&flag)),
            flag,
            places: VecDeque::new(),
        }
    }

    /// Queues an answer behind the others. It does not run yet: the next
    /// [`poll_front`](Self::poll_front) polls it for the first time.
    pub(crate) fn push(&mut self, reply: Reply, answer: AnswerFuture) {
        self.places.push_back(Place {
            reply,
            answer: Answer::Waiting(answer),
        });
        self.flag.moved.store(true, Ordering::Release);
    }

    pub(crate) fn len(&self) -> usize {
        self.places.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// Polls the waiting answers (if any may have moved), then hands out the
    /// oldest answer if it is ready; `Pending` otherwise, with every waiting
    /// answer's leaf future holding the join's waker.
    pub(crate) fn poll_front(&mut self, cx: &mut Context<'_>) -> Poll<(Reply, String)> {
        if self.flag.task.get().is_none() {
            let _ = self.flag.task.set(cx.waker().clone());
        }
        if self.flag.moved.swap(false, Ordering::AcqRel) {
            let mut join_cx = Context::from_waker(&self.waker);
            for place in &mut self.places {
                if let Answer::Waiting(future) = &mut place.answer {
                    if let Poll::Ready(line) = future.as_mut().poll(&mut join_cx) {
                        place.answer = Answer::Ready(line);
                    }
                }
            }
        }
        if !matches!(
            self.places.front(),
            Some(Place {
                answer: Answer::Ready(_),
                ..
            })
        ) {
            return Poll::Pending;
        }
        match self.places.pop_front() {
            Some(Place {
                reply,
                answer: Answer::Ready(line),
            }) => {
                if self.places.is_empty() && self.places.capacity() > 64 {
                    self.places = VecDeque::new(); // an idle connection keeps no big queue
                }
                Poll::Ready((reply, line))
            }
            _ => Poll::Pending,
        }
    }
}
