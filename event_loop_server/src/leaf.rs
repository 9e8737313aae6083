//! The leaf futures: the only places an `async fn` connection waits, each
//! written out by hand so you can see where `Pending` is returned and who
//! calls `wake` later.
//!
//! | future        | `Pending` when                 | woken by                            |
//! |---------------|--------------------------------|-------------------------------------|
//! | [`readable`]  | the socket was read dry        | a readiness event (reactor.rs)      |
//! | [`writable`]  | the socket's buffer was full   | a readiness event (reactor.rs)      |
//! | [`sleep_until`] | the deadline is ahead        | a `Timer::Wake` in the loop's heap  |
//! | [`yield_now`] | once, always                   | itself, at once: run again next turn|
//! | [`Offloaded`] | the image is still computing   | the offload worker, on its thread   |
//!
//! Each stores the waker from its `Context` where the waking side will
//! find it, *then* returns `Pending`. Every other future in session.rs is
//! made of these by `async`/`await`.
//!
//! The socket's readiness is kept in [`Io`], as the state machine keeps it
//! (connection.rs's `Input`): events are edge-triggered, so "read dry"
//! must be remembered until the next edge.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use mio::net::TcpStream;
use shared::sync::lock;

use crate::connection::Input;
use crate::reactor::Env;
use crate::watchdog::Activity;

/// One connection's socket and what the reactor knows of it. Shared (an
/// `Rc`) by the task's future, which reads and writes, and the loop, which
/// delivers events and asks the watchdog's questions.
pub(crate) struct Io {
    pub(crate) socket: TcpStream,
    input: Cell<Input>,
    /// False once a write said `WouldBlock`, until the next writable edge.
    writable: Cell<bool>,
    read_waker: Cell<Option<Waker>>,
    write_waker: Cell<Option<Waker>>,
    /// For the watchdog: as in connection.rs, kept up by session.rs.
    pub(crate) activity: Cell<Activity>,
    pub(crate) unsent: Cell<bool>,
    pub(crate) answers_owed: Cell<bool>,
}

impl Io {
    pub(crate) fn new(socket: TcpStream, now: Instant) -> Self {
        Io {
            socket,
            input: Cell::new(Input::Readable),
            writable: Cell::new(true),
            read_waker: Cell::new(None),
            write_waker: Cell::new(None),
            activity: Cell::new(Activity::new(now)),
            unsent: Cell::new(false),
            answers_owed: Cell::new(false),
        }
    }

    /// A readiness event (reactor.rs): note it, wake whoever waits on it.
    pub(crate) fn event(&self, readable: bool, writable: bool, fin: bool) {
        if readable || fin {
            match self.input.get() {
                Input::Readable | Input::Drained if fin => self.input.set(Input::Closing),
                Input::Drained => self.input.set(Input::Readable),
                _ => {}
            }
            wake_kept(&self.read_waker);
        }
        if writable {
            self.writable.set(true);
            wake(&self.write_waker);
        }
    }

    /// Shutdown: read nothing more (after the client's FIN the input stays
    /// `PeerClosed`: its last line is still owed an answer).
    pub(crate) fn stop_reading(&self) {
        if self.input.get() != Input::PeerClosed {
            self.input.set(Input::Stopped);
        }
        wake(&self.read_waker);
    }

    pub(crate) fn input(&self) -> Input {
        self.input.get()
    }

    pub(crate) fn set_input(&self, input: Input) {
        self.input.set(input);
    }

    /// A write said `WouldBlock`: wait for the next writable edge.
    pub(crate) fn write_blocked(&self) {
        self.writable.set(false);
    }
}

fn wake(slot: &Cell<Option<Waker>>) {
    if let Some(waker) = slot.take() {
        waker.wake();
    }
}

/// Wakes, keeping the waker for the next edge: a connection waits for
/// reading again and again, and a clone (a reference count up, then down)
/// per request shows in a profile. The price: an edge that comes while the
/// task waits on something else wakes it for nothing, which a poll
/// shrugs off.
fn wake_kept(slot: &Cell<Option<Waker>>) {
    let kept = slot.take();
    if let Some(waker) = &kept {
        waker.wake_by_ref();
    }
    slot.set(kept);
}

/// Keeps `cx`'s waker in `slot`, cloning only if it is a different one.
fn keep_waker(slot: &Cell<Option<Waker>>, cx: &Context<'_>) {
    let kept = slot.take();
    match kept {
        Some(waker) if waker.will_wake(cx.waker()) => slot.set(Some(waker)),
        _ => slot.set(Some(cx.waker().clone())),
    }
}

/// Ready when the socket may have bytes (or the input is over); `Pending`
/// while it was read dry and no readable edge has come since.
pub(crate) fn readable(io: &Io) -> Readable<'_> {
    Readable(io)
}

pub(crate) struct Readable<'a>(&'a Io);

impl Future for Readable<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.input.get() != Input::Drained {
            return Poll::Ready(());
        }
        keep_waker(&self.0.read_waker, cx); // Io::event wakes it
        Poll::Pending
    }
}

/// Ready when the socket may take output.
pub(crate) fn writable(io: &Io) -> Writable<'_> {
    Writable(io)
}

pub(crate) struct Writable<'a>(&'a Io);

impl Future for Writable<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.writable.get() {
            return Poll::Ready(());
        }
        keep_waker(&self.0.write_waker, cx); // Io::event wakes it
        Poll::Pending
    }
}

/// Ready at `deadline`. The first `Pending` puts the waker in the loop's
/// timer heap (through `Env`, since a future cannot reach the loop that
/// polls it); the loop wakes it once the deadline has passed.
pub(crate) fn sleep_until(env: &Env, deadline: Instant) -> Sleep<'_> {
    Sleep {
        env,
        deadline,
        asked: false,
    }
}

pub(crate) struct Sleep<'a> {
    env: &'a Env,
    deadline: Instant,
    /// A timer is in the heap already: a second poll before the deadline
    /// (the join polls every waiting answer when one wakes) adds none.
    asked: bool,
}

impl Future for Sleep<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            return Poll::Ready(());
        }
        if !self.asked {
            self.env.wake_at(self.deadline, cx.waker().clone());
            self.asked = true;
        }
        Poll::Pending
    }
}

/// `Pending` once, after waking its own task: the task goes to the back of
/// the ready queue and runs next turn, so one busy connection cannot keep
/// the loop from the others (tokio's cooperative budget does the same).
pub(crate) fn yield_now() -> YieldNow {
    YieldNow { yielded: false }
}

pub(crate) struct YieldNow {
    yielded: bool,
}

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Where an offload worker leaves one image answer: filled on the worker's
/// thread, taken on the loop's. The only state here another thread
/// touches, hence the `Mutex`.
#[derive(Default)]
pub(crate) struct OneShot {
    state: Mutex<(Option<String>, Option<Waker>)>,
}

impl OneShot {
    /// The worker's side: the answer, then a wake. The waker pushes onto
    /// the loop's ready queue and, from this thread, wakes its `poll`.
    pub(crate) fn fill(&self, line: String) {
        let waker = {
            let mut state = lock(&self.state);
            state.0 = Some(line);
            state.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The loop's side of a [`OneShot`]: ready with the answer.
pub(crate) struct Offloaded(pub(crate) Arc<OneShot>);

impl Future for Offloaded {
    type Output = String;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<String> {
        let mut state = lock(&self.0.state);
        if let Some(line) = state.0.take() {
            return Poll::Ready(line);
        }
        // Under the lock, so a `fill` now either came first (seen above)
        // or will find this waker.
        state.1 = Some(cx.waker().clone());
        Poll::Pending
    }
}
