//! Accepting connections: who gets each one, and what happens when the
//! process runs out of file descriptors.
//!
//! ## One acceptor, many loops
//! Loop 0 owns the listener and accepts for every loop, like netty's boss
//! group. Each new connection goes to the loop holding the fewest, over
//! that loop's channel, and its waker interrupts its `poll`; a connection
//! placed on loop 0 itself is simply kept. The alternatives, and why not (the
//! spread this design gives is measured in docs/RESULTS.md; the
//! alternatives were weighed, not built):
//! - every loop accepting from a clone of the listener: every loop wakes
//!   for every connection (mio cannot ask for `EPOLLEXCLUSIVE`), and the
//!   spread follows whichever loop is fastest to wake, not the load;
//! - `SO_REUSEPORT`: the kernel balances by hashing, but std cannot set
//!   the option, and a hash does not see how busy each loop is.
//!
//! With one loop, this is the classic loop that accepts for itself.
//!
//! Past `--max-connections`, a new connection is refused in its own
//! dialect (`refuse.rs`).
//!
//! ## Running out of descriptors
//! When `accept` fails for lack of file descriptors (`EMFILE`, `ENFILE`),
//! the pending connection stays in the kernel's backlog. Retrying at once
//! would fail again and spin. So the acceptor stops, arms a 100 ms retry
//! timer, and also retries as soon as a connection of loop 0 closes and
//! frees a descriptor. Readiness events on the listener are ignored
//! meanwhile; each is one new arrival, not a repeating alarm, so they cannot
//! make the loop spin either. `ECONNABORTED` (a client gave up while
//! queued) is simply skipped.

use std::io::ErrorKind;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::Registry;
use shared::stats::Counters;

use crate::refuse::{self, Refusals};
use crate::timers::{Timer, Timers};
use crate::Shared;

const ACCEPT_RETRY: Duration = Duration::from_millis(100);

#[derive(Debug, PartialEq, Eq)]
enum State {
    Accepting,
    /// `accept` failed for lack of descriptors; one retry timer is armed.
    OutOfDescriptors,
}

/// What one accepting step borrows from its loop.
pub(crate) struct Room<'a> {
    pub(crate) shared: &'a Shared,
    /// The accepting loop's index.
    pub(crate) me: usize,
    pub(crate) registry: &'a Registry,
    pub(crate) timers: &'a mut Timers,
    /// Connections accepted for this loop, for it to set up.
    pub(crate) mine: &'a mut Vec<TcpStream>,
}

pub(crate) struct Acceptor {
    pub(crate) listener: TcpListener,
    state: State,
    /// Where the search for the least-loaded loop starts, so that ties are
    /// broken round-robin rather than always in favour of loop 0.
    next: usize,
    /// Connections turned away while they wait for their first bytes.
    pub(crate) refusals: Refusals,
}

impl Acceptor {
    pub(crate) fn new(listener: TcpListener) -> Self {
        Acceptor {
            listener,
            state: State::Accepting,
            next: 0,
            refusals: Refusals::default(),
        }
    }

    /// Accepts until the backlog is empty. Connections for this loop are
    /// pushed onto `room.mine`; the others are handed to their loops.
    pub(crate) fn accept_all(&mut self, room: &mut Room) {
        loop {
            match self.listener.accept() {
                Ok((stream, _peer)) => {
                    self.state = State::Accepting;
                    self.place(stream, room);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                    ) => {}
                Err(_) => {
                    // Out of descriptors (or memory): see the module docs.
                    if self.state == State::Accepting {
                        let retry = Instant::now() + ACCEPT_RETRY;
                        room.timers.add(retry, Timer::RetryAccept);
                    }
                    self.state = State::OutOfDescriptors;
                    return;
                }
            }
        }
    }

    /// A descriptor came free (a connection of this loop closed): worth
    /// trying again only if accepting had stopped for lack of them.
    pub(crate) fn descriptor_freed(&mut self, room: &mut Room) {
        if self.state == State::OutOfDescriptors {
            self.accept_all(room);
        }
    }

    /// The retry timer fired.
    pub(crate) fn retry(&mut self, room: &mut Room) {
        self.state = State::Accepting;
        self.accept_all(room);
    }

    fn place(&mut self, stream: TcpStream, room: &mut Room) {
        let shared = room.shared;
        let counters = &shared.loops[room.me].counters;
        if shared.stop.load(Ordering::SeqCst) {
            // Shutting down: a loop may already have drained and gone, so
            // hand nothing over; this client gets a clear refusal.
            refuse::at_once(stream, counters);
            return;
        }
        if shared.open_connections() >= shared.config.max_connections as u64 {
            self.refusals
                .refuse(stream, room.registry, room.timers, counters);
            return;
        }
        let target = self.least_loaded(shared);
        let owner = &shared.loops[target];
        // Counted at once, so the next choice already sees it.
        Counters::add(&owner.counters.open_connections, 1);
        if target == room.me {
            room.mine.push(stream);
        } else if owner.handoff.send(stream).is_ok() {
            let _ = owner.waker.wake();
        } else {
            Counters::sub(&owner.counters.open_connections, 1); // that loop is gone
        }
    }

    fn least_loaded(&mut self, shared: &Shared) -> usize {
        let n = shared.loops.len();
        let load = |i: usize| Counters::get(&shared.loops[i].counters.open_connections);
        let start = self.next;
        let best = (0..n).map(|k| (start + k) % n).min_by_key(|&i| load(i));
        self.next = (start + 1) % n;
        best.unwrap_or(0)
    }
}
