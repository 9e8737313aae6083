//! Turning a client away when the server is full, in the client's own
//! dialect.
//!
//! A full server answers a new connection with one refusal and closes it:
//! `ERR busy` in the line protocol, a `503` with `Retry-After` in HTTP. To
//! know which, it must see the client's first line, and that line is often
//! not there yet: `curl` connects, and only then sends, tens of
//! microseconds after the loop has already accepted. Answering at once
//! would give such a client a line it cannot parse.
//!
//! So a refused connection may wait a little for its first bytes, without
//! holding up the loop: it is registered for readability, and answered at
//! its first readiness event or after [`WAIT_FOR_FIRST_BYTES`], whichever
//! comes first. The waiting is bounded in both count and time, because a
//! refused client must not be able to cost the server more than a refusal:
//! at most [`MAX_WAITING`] wait at once, and past that the rest are
//! answered at once with whatever they have sent.

use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use shared::stats::Counters;

use crate::timers::{Timer, Timers};

/// Tokens from here up belong to refused connections; connections' own
/// tokens stay far below.
pub(crate) const FIRST_TOKEN: usize = usize::MAX / 2;
/// Refused connections that may wait for their first bytes at once.
const MAX_WAITING: usize = 64;
/// How long one may wait.
const WAIT_FOR_FIRST_BYTES: Duration = Duration::from_millis(200);

/// One waiting refusal; `generation` tells its deadline from the deadline
/// of an earlier occupant of the same slot.
struct Waiting {
    stream: TcpStream,
    generation: u64,
}

#[derive(Default)]
pub(crate) struct Refusals {
    slots: Vec<Option<Waiting>>,
    generations: u64,
}

impl Refusals {
    /// Refuses `stream`: at once if its first bytes are already here or
    /// there is no room to wait, else when they come or the wait is over.
    pub(crate) fn refuse(
        &mut self,
        mut stream: TcpStream,
        registry: &Registry,
        timers: &mut Timers,
        counters: &Counters,
    ) {
        // A peek: the refusal itself reads the bytes when it answers.
        let arrived = stream.peek(&mut [0u8; 1]).unwrap_or(0) > 0;
        let free = (0..MAX_WAITING).find(|&i| self.slots.get(i).is_none_or(Option::is_none));
        let Some(slot) = free.filter(|_| !arrived) else {
            return at_once(stream, counters);
        };
        let token = Token(FIRST_TOKEN + slot);
        if registry
            .register(&mut stream, token, Interest::READABLE)
            .is_err()
        {
            return at_once(stream, counters);
        }
        self.generations += 1;
        let generation = self.generations;
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot] = Some(Waiting { stream, generation });
        let due = Timer::RefusalDue { slot, generation };
        timers.add(Instant::now() + WAIT_FOR_FIRST_BYTES, due);
    }

    /// A readiness event for a refused connection: its bytes (or its FIN)
    /// have come.
    pub(crate) fn readable(&mut self, token: Token, registry: &Registry, counters: &Counters) {
        if let Some(slot) = token.0.checked_sub(FIRST_TOKEN) {
            self.finish(slot, None, registry, counters);
        }
    }

    /// The wait of `slot`'s refusal is over, if it is still the same one.
    pub(crate) fn due(
        &mut self,
        slot: usize,
        generation: u64,
        registry: &Registry,
        counters: &Counters,
    ) {
        self.finish(slot, Some(generation), registry, counters);
    }

    /// Shutdown: every waiting refusal is answered now.
    pub(crate) fn finish_all(&mut self, registry: &Registry, counters: &Counters) {
        for slot in 0..self.slots.len() {
            self.finish(slot, None, registry, counters);
        }
    }

    fn finish(
        &mut self,
        slot: usize,
        generation: Option<u64>,
        registry: &Registry,
        counters: &Counters,
    ) {
        let Some(place) = self.slots.get_mut(slot) else {
            return;
        };
        if generation.is_some_and(|g| place.as_ref().is_some_and(|w| w.generation != g)) {
            return; // the deadline of an earlier occupant
        }
        if let Some(Waiting { mut stream, .. }) = place.take() {
            let _ = registry.deregister(&mut stream);
            at_once(stream, counters);
        }
    }
}

/// Refuses at once, with whatever the client has sent so far
/// (`shared::linger::refuse`), and closes.
pub(crate) fn at_once(stream: TcpStream, counters: &Counters) {
    shared::linger::refuse(&stream);
    Counters::add(&counters.busy_rejections, 1);
}
