//! A model test of the executor (executor.rs): generated orders of wakes
//! and polls, checked against what the executor promises.
//!
//! The tasks are scripted futures that count their polls, keep the waker
//! they were given, and may wake themselves while being polled. The model
//! is one bit per task, "owed a poll": set by every wake, cleared when a
//! poll starts. After each `run_ready`:
//! - every task owed a poll when it began was polled, exactly once, however
//!   many times it was woken (no lost wake-up, no double poll);
//! - no task that was not owed one was polled;
//! - a task that woke itself during its poll is owed again, and the queue
//!   says there is work (`has_ready`), so the loop will not sleep on it.
//!
//! A wake from another thread that queues its task must also wake the
//! loop's `poll`: each is followed by a zero-timeout `poll` that must see
//! the waker's event. (A task already queued needs no such wake: the loop
//! looks at its queue before it sleeps.)

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mio::{Events, Token};
use proptest::prelude::*;

use crate::executor::{ReadyQueue, Tasks};
use crate::slab::ConnectionId;

const TASKS: usize = 4;
const WAKER: Token = Token(1);

#[derive(Debug, Clone)]
enum Op {
    /// Wake task `i` through the waker its last poll was given (or, if it
    /// has never been polled, as the loop does: `Tasks::wake`).
    Wake(usize),
    /// The same, from another thread.
    WakeFromThread(usize),
    /// Task `i` will wake itself during its next poll.
    WakeDuringNextPoll(usize),
    /// One executor turn.
    Run,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..TASKS).prop_map(Op::Wake),
        1 => (0..TASKS).prop_map(Op::WakeFromThread),
        1 => (0..TASKS).prop_map(Op::WakeDuringNextPoll),
        3 => Just(Op::Run),
    ]
}

/// What a scripted task shares with the test.
#[derive(Default)]
struct Script {
    polls: Cell<u32>,
    waker: RefCell<Option<Waker>>,
    wake_during_poll: Cell<bool>,
}

struct Scripted(Rc<Script>);

impl Future for Scripted {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let script = &self.0;
        script.polls.set(script.polls.get() + 1);
        *script.waker.borrow_mut() = Some(cx.waker().clone());
        if script.wake_during_poll.replace(false) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

fn wake(tasks: &Tasks<(), ()>, id: ConnectionId, script: &Script) {
    match &*script.waker.borrow() {
        Some(waker) => waker.wake_by_ref(),
        None => tasks.wake(id),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn no_lost_wake_up_and_one_poll_per_wake(ops in prop::collection::vec(op(), 1..60)) {
        let mut poll = mio::Poll::new().expect("a poll");
        let waker = Arc::new(mio::Waker::new(poll.registry(), WAKER).expect("a waker"));
        let mut events = Events::with_capacity(8);
        let mut tasks: Tasks<(), ()> = Tasks::new(Arc::new(ReadyQueue::new(waker)));
        let scripts: Vec<Rc<Script>> = (0..TASKS).map(|_| Rc::new(Script::default())).collect();
        let ids: Vec<ConnectionId> = scripts
            .iter()
            .map(|script| {
                let future = Scripted(Rc::clone(script));
                tasks.spawn(|_| (Box::pin(future), ()))
            })
            .collect();
        // Spawning queues a first poll.
        let mut owed = [true; TASKS];
        for op in ops {
            match op {
                Op::Wake(i) => {
                    wake(&tasks, ids[i], &scripts[i]);
                    owed[i] = true;
                }
                Op::WakeFromThread(i) => {
                    let Some(waker) = scripts[i].waker.borrow().clone() else {
                        continue; // never polled: nothing to send yet
                    };
                    std::thread::spawn(move || waker.wake()).join().expect("the waking thread");
                    let queued_now = !owed[i];
                    owed[i] = true;
                    poll.poll(&mut events, Some(Duration::ZERO)).expect("poll");
                    // Already queued, the loop will see it before it sleeps.
                    if queued_now {
                        prop_assert!(
                            events.iter().any(|e| e.token() == WAKER),
                            "a wake from another thread must wake the poll"
                        );
                    }
                }
                Op::WakeDuringNextPoll(i) => scripts[i].wake_during_poll.set(true),
                Op::Run => {
                    let before: Vec<u32> = scripts.iter().map(|s| s.polls.get()).collect();
                    let woke_itself: Vec<bool> =
                        scripts.iter().map(|s| s.wake_during_poll.get()).collect();
                    let finished = tasks.run_ready(|_| {});
                    prop_assert!(finished.is_empty());
                    for i in 0..TASKS {
                        let polled = scripts[i].polls.get() - before[i];
                        prop_assert_eq!(polled, u32::from(owed[i]), "task {} polled {} times", i, polled);
                        // Owed again only if it woke itself while polled.
                        owed[i] = owed[i] && woke_itself[i];
                    }
                    prop_assert_eq!(tasks.has_ready(), owed.iter().any(|&o| o));
                }
            }
        }
    }
}
