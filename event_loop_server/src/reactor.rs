//! The reactor: the loop's events turned into wakes, for connections
//! written as `async fn` (`--style async`).
//!
//! The loop (event_loop.rs) calls the same methods on this as on the state
//! machines (machines.rs). Where those *drive* a connection, this *wakes*
//! its task and leaves the polling to the executor at the end of the turn:
//! - a readiness event goes to the connection's [`Io`], which wakes the
//!   leaf future waiting on it (leaf.rs);
//! - a due `Timer::Wake` is woken by the loop itself (event_loop.rs);
//! - an offloaded image wakes its task from the worker's thread.
//!
//! A task cannot borrow the loop that polls it, so what a task needs from
//! its loop is in [`Env`], shared by `Rc`: the shared state, the image
//! scratch, and an inbox of timers that the executor moves into the loop's
//! heap after each poll.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use mio::event::Event;
use mio::net::TcpStream;
use mio::Interest;
use shared::image::ImageScratch;
use shared::panics::answer_caught;
use shared::protocol::{response, Request};
use shared::stats::{CloseReason, Counters};

use crate::connections::{close_socket, Connections};
use crate::context::Context;
use crate::executor::{ReadyQueue, Tasks};
use crate::leaf::{Io, OneShot};
use crate::offload::Offload;
use crate::session;
use crate::slab::ConnectionId;
use crate::state::{Done, Shared};
use crate::timers::Timer;
use crate::tokens::Target;

/// What a task can reach of its loop.
pub(crate) struct Env {
    pub(crate) shared: Arc<Shared>,
    index: usize,
    offload: Option<Arc<Offload>>,
    scratch: RefCell<ImageScratch>,
    /// Timers asked for during this poll, for the loop's heap.
    wake_at: RefCell<Vec<(Instant, Waker)>>,
    /// Database replies made during this poll (due, made), for the loop's
    /// per-second lateness (live.rs).
    late: RefCell<Vec<(Instant, Instant)>>,
    /// Turns of the loop so far: a connection's budget is per turn.
    pub(crate) turn: Cell<u64>,
    db_waiting: Cell<u64>,
}

impl Env {
    pub(crate) fn counters(&self) -> &Counters {
        &self.shared.loops[self.index].counters
    }

    /// `sleep_until`'s half: `waker` is woken once `at` has passed.
    pub(crate) fn wake_at(&self, at: Instant, waker: Waker) {
        self.wake_at.borrow_mut().push((at, waker));
    }

    /// A query on a timer: counted in `STATS db_waiting` until the guard
    /// drops, answered or cancelled with its connection.
    pub(crate) fn db_query(&self) -> DbWaiting<'_> {
        self.db_waiting_changed(1);
        DbWaiting(self)
    }

    pub(crate) fn db_replied(&self, due: Instant) {
        let now = Instant::now();
        self.shared.loops[self.index].lateness.record(due, now);
        self.late.borrow_mut().push((due, now));
    }

    fn db_waiting_changed(&self, by: i64) {
        let now = self.db_waiting.get().saturating_add_signed(by);
        self.db_waiting.set(now);
        self.shared.loops[self.index].db_waiting.set(now);
    }

    /// Hands an image job to the offload pool: where its answer will land,
    /// or `None` without a pool or with its queue full.
    pub(crate) fn offload(&self, job: shared::image::ImageJob) -> Option<Arc<OneShot>> {
        let offload = self.offload.as_ref()?;
        let slot = Arc::new(OneShot::default());
        offload
            .submit_for_task(self.index, Arc::clone(&slot), job)
            .then_some(slot)
    }

    pub(crate) fn has_offload(&self) -> bool {
        self.offload.is_some()
    }

    /// A request answered on the spot (inline images too: the whole loop
    /// waits for those, as with the state machines). A panic answers
    /// `ERR internal error` and is counted.
    pub(crate) fn answer_now(&self, request: Request) -> String {
        let mut scratch = self.scratch.borrow_mut();
        let counters = self.counters();
        answer_caught(&mut (&mut *scratch, counters), |(scratch, _)| {
            match request {
                Request::Ping => response::pong(),
                Request::Help => response::help(),
                Request::Quit => response::bye(),
                Request::Stats => self.shared.stats(),
                Request::Image(job) => response::run_image(scratch, &job, None),
                // session.rs awaits these; never sent here.
                Request::Db { id, .. } => response::db(id, shared::db::value(id)),
            }
        })
    }
}

/// A database query in flight; see [`Env::db_query`].
pub(crate) struct DbWaiting<'a>(&'a Env);

impl Drop for DbWaiting<'_> {
    fn drop(&mut self) {
        self.0.db_waiting_changed(-1);
    }
}

/// The connections of one loop as tasks.
pub(crate) struct Reactor {
    tasks: Tasks<io::Result<()>, Rc<Io>>,
    env: Rc<Env>,
    closed: usize,
}

impl Connections for Reactor {
    /// Built on the loop's own thread: wakes from any other thread also
    /// wake its poll.
    fn new(ctx: &Context) -> Self {
        let waker = Arc::clone(&ctx.mine().waker);
        Reactor {
            tasks: Tasks::new(Arc::new(ReadyQueue::new(waker))),
            env: Rc::new(Env {
                shared: Arc::clone(&ctx.shared),
                index: ctx.index,
                offload: ctx.offload.clone(),
                scratch: RefCell::new(ImageScratch::new()),
                wake_at: RefCell::new(Vec::new()),
                late: RefCell::new(Vec::new()),
                turn: Cell::new(0),
                db_waiting: Cell::new(0),
            }),
            closed: 0,
        }
    }

    fn add(
        &mut self,
        ctx: &mut Context,
        stream: TcpStream,
        draining: bool,
    ) -> Option<ConnectionId> {
        let mut stream = stream;
        // Registered as the task is made, under the slot it is given.
        let env = &self.env;
        let mut registered = Ok(());
        let id = self.tasks.spawn(|id| {
            let token = Target::Connection(id.slot).token();
            let interest = Interest::READABLE | Interest::WRITABLE;
            registered = ctx.registry().register(&mut stream, token, interest);
            let io = Rc::new(Io::new(stream, Instant::now()));
            if draining {
                io.stop_reading(); // arrived as the server stopped
            }
            let future = Box::pin(session::serve(Rc::clone(&io), Rc::clone(env)));
            (future, io)
        });
        if registered.is_err() {
            self.tasks.remove(id);
            ctx.mine().counters.open_connections.sub(1);
            return None;
        }
        Some(id)
    }

    fn event(&mut self, _ctx: &mut Context, slot: usize, event: &Event) {
        let Some(io) = self.tasks.id_at(slot).and_then(|id| self.tasks.get(id)) else {
            return; // a connection already gone
        };
        let fin = event.is_read_closed() || event.is_error();
        io.event(event.is_readable(), event.is_writable(), fin);
    }

    fn db_reply(&mut self, _: &mut Context, _: Instant, _: ConnectionId, _: u64, _: u64) {
        // Never armed: an `async fn` sleeps on `Timer::Wake` instead.
    }

    fn offloaded(&mut self, _: &mut Context, _: Done) {
        // Never sent: an offloaded job wakes its task (`OneShot`).
    }

    fn deadline(&self, ctx: &Context, id: ConnectionId) -> Option<Option<Instant>> {
        let common = &ctx.config().common;
        let io = self.tasks.get(id)?;
        Some(io.activity.get().deadline(
            io.unsent.get(),
            io.answers_owed.get(),
            common.idle_timeout,
            common.write_timeout,
        ))
    }

    fn close(&mut self, ctx: &mut Context, id: ConnectionId, reason: CloseReason) {
        // Dropping the task drops its future: its sleeps and offloads are
        // cancelled (their timers lapse, their answers find no one).
        if let Some(io) = self.tasks.remove(id) {
            close_socket(ctx, &io.socket, reason);
            self.closed += 1;
        }
    }

    /// The executor's half of the turn (executor.rs): poll every task
    /// woken, file the timers each asked for, close the finished.
    fn run_queued(&mut self, ctx: &mut Context) {
        let env = &self.env;
        env.turn.set(env.turn.get() + 1);
        let finished = self.tasks.run_ready(|id| {
            for (at, waker) in env.wake_at.borrow_mut().drain(..) {
                ctx.timers.add(at, Timer::Wake { conn: id, waker });
            }
            for (due, made) in env.late.borrow_mut().drain(..) {
                ctx.window.record_late(due, made);
            }
        });
        for (id, ending) in finished {
            let reason = match ending {
                Ok(()) => CloseReason::Finished,
                Err(_) => CloseReason::Failed,
            };
            self.close(ctx, id, reason);
        }
    }

    fn work_left(&self) -> bool {
        self.tasks.has_ready()
    }

    fn stop_reading(&mut self, _ctx: &mut Context) {
        for id in self.tasks.ids() {
            if let Some(io) = self.tasks.get(id) {
                io.stop_reading();
            }
            self.tasks.wake(id);
        }
    }

    fn len(&self) -> usize {
        self.tasks.len()
    }

    fn contains(&self, id: ConnectionId) -> bool {
        self.tasks.contains(id)
    }

    fn take_closed(&mut self) -> usize {
        std::mem::take(&mut self.closed)
    }
}

#[cfg(test)]
impl Env {
    /// An `Env` of a one-loop server that never runs, for tests that only
    /// build futures.
    pub(crate) fn for_test() -> Self {
        use crate::config::Config;
        use crate::state::LoopShared;
        use shared::stats::{Counter, Lateness};
        use std::sync::atomic::AtomicBool;
        use std::sync::mpsc;

        let poll = mio::Poll::new().expect("a poll");
        let waker = mio::Waker::new(poll.registry(), Target::Waker.token()).expect("a waker");
        let shared = Arc::new(Shared {
            config: Config::new("127.0.0.1:0".parse().expect("an address")),
            stopping: AtomicBool::new(false),
            loops: vec![LoopShared {
                counters: Counters::default(),
                db_waiting: Counter::default(),
                lateness: Lateness::default(),
                live: crate::live::Published::default(),
                waker: Arc::new(waker),
                handoff: mpsc::channel().0,
                done: mpsc::channel().0,
            }],
            started: Instant::now(),
            offload_load: std::sync::OnceLock::new(),
        });
        Env {
            shared,
            index: 0,
            offload: None,
            scratch: RefCell::new(ImageScratch::new()),
            wake_at: RefCell::new(Vec::new()),
            late: RefCell::new(Vec::new()),
            turn: Cell::new(0),
            db_waiting: Cell::new(0),
        }
    }
}
