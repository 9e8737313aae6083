//! One connection as the event loop sees it: a state machine that is never
//! allowed to wait.
//!
//! [`Connection::drive`] does whatever can be done *right now* (take the
//! requests already read, read more if there is room, answer what can be
//! answered, write what the socket takes) and returns a [`Status`]. The loop
//! calls it again whenever something changes: a readiness event, a database
//! timer, an offloaded answer, or a turn that ran out of budget. Calling it
//! with nothing changed is harmless, which is what makes spurious wake-ups
//! safe.
//!
//! The socket is a type parameter, so the model test in `connection_model.rs`
//! drives this very code with a scripted socket instead of a real one.
//!
//! ## The input side is one state
//!
//! ```text
//!            read filled the buffer                 readable event
//!           ┌────────┐                       ┌──────────────────────┐
//!           ▼        │   short read or       │                      │
//!        Readable ───┴── WouldBlock ──────▶ Drained ────────────────┘
//!           │                                   │
//!           │ event reports FIN                 │ event reports FIN
//!           ▼                                   │
//!        Closing ◀──────────────────────────────┘
//!           │ (reads until 0, however short)
//!           │ read returned 0                 QUIT, line too long, HTTP close:
//!           ▼                                 from any state; shutdown: from
//!       PeerClosed                        any but PeerClosed ──▶ Stopped
//! ```
//!
//! In every state, requests already read and framed are still taken and
//! answered (after `QUIT` or a line too long the reader hands out no more).
//! Only `Readable` and `Closing` read from the socket. The connection is finished when
//! the input is `PeerClosed` or `Stopped`, the reader holds no further
//! request, and every answer has been written.
//!
//! ## Ordering
//! Every request takes a place in the answer queue, in arrival order. Quick
//! answers fill their place at once; a database query or an offloaded image
//! leaves it empty until its answer arrives through [`Connection::fill`].
//! Only the *front* is ever moved to the output, so `DB 1 300`, `PING`,
//! `DB 2 0` come back in that order.
//!
//! ## Backpressure, and what resumes it
//! A client may pipeline without reading. Past [`MAX_IN_FLIGHT`] unanswered
//! requests or [`MAX_UNSENT`] bytes of unsent output, the connection stops
//! taking requests and stops reading: the client's bytes wait in the kernel
//! and TCP flow control slows it down. Pressure lifts only when an answer
//! arrives or the socket takes output, and both of those call `drive`, which
//! picks up where it stopped: first the requests already framed (no
//! readiness event will ever come for bytes that were already read), then
//! the socket.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::time::{Duration, Instant};

use shared::protocol::framer::READ_CHUNK;
use shared::protocol::{Incoming, Reply, Request, RequestReader, Work};
use shared::socket::try_now;

// The unit tests use small limits, so that the model test reaches every
// limit in a few requests; the servers always use the large ones.

/// Unanswered requests one connection may have before it stops being read.
pub(crate) const MAX_IN_FLIGHT: usize = if cfg!(test) { 6 } else { 1024 };
/// Unsent output one connection may have before it stops being read.
pub(crate) const MAX_UNSENT: usize = if cfg!(test) { 64 } else { 256 * 1024 };
/// Requests taken plus reads made by one connection in one turn of the
/// loop, so a client with a huge pipeline cannot keep the loop from
/// everyone else.
pub(crate) const REQUESTS_PER_TURN: usize = if cfg!(test) { 4 } else { 64 };

/// Where the connection's input stands (see the module docs' diagram).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Input {
    /// The socket may hold unread bytes: read when there is room.
    Readable,
    /// The socket was read dry; the next readiness event makes it
    /// `Readable` again.
    Drained,
    /// The peer's FIN has been reported but not read yet: read until the
    /// end of stream, however short the reads, because no further edge
    /// will come for it.
    Closing,
    /// The client's FIN has been read: nothing more will arrive.
    PeerClosed,
    /// Nothing more is read: `QUIT`, a line too long, an HTTP close, or
    /// shutdown.
    Stopped,
}

/// How a connection stands after [`Connection::drive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// Waiting for the socket, a timer or an offloaded answer: each of
    /// those calls `drive` again.
    Waiting,
    /// Used its turn's budget with requests left: drive it again this turn.
    MoreToDo,
    /// Everything asked has been answered and written; close it.
    Finished,
}

/// Why taking requests stopped.
#[derive(Debug, PartialEq, Eq)]
enum Pause {
    Budget,
    Backpressure,
    /// Nothing framed is left and the socket has nothing to give now.
    NoInput,
}

/// One request's place in the answer queue.
struct Place {
    reply: Reply,
    /// `None` until the answer exists.
    answer: Option<String>,
}

pub(crate) struct Connection<S> {
    pub(crate) socket: S,
    reader: RequestReader,
    input: Input,
    /// One place per request taken, in order.
    answers: VecDeque<Place>,
    /// The sequence number of `answers.front()`; fills name their place by it.
    first_seq: u64,
    /// Framed answers not yet taken by the socket.
    out: Vec<u8>,
    /// Idle time counts from here: the last *complete* request, so a line
    /// trickled a byte at a time does not keep a connection alive.
    last_request: Instant,
    /// A stalled reader is timed from here: when output last moved.
    last_write_progress: Instant,
}

impl<S: Read + Write> Connection<S> {
    pub(crate) fn new(socket: S, now: Instant) -> Self {
        Connection {
            socket,
            reader: RequestReader::new(),
            input: Input::Readable,
            answers: VecDeque::new(),
            first_seq: 0,
            out: Vec::new(),
            last_request: now,
            last_write_progress: now,
        }
    }

    /// Does everything that can be done now, within one turn's budget.
    /// `serve` answers a request at once (`Some`) or promises a later
    /// [`fill`](Self::fill) with the same sequence number (`None`).
    /// `count` hears how many answers were moved to the output, before any
    /// of their bytes are written: a client that reads an answer and then
    /// asks `STATS`, on this loop or another, must find it counted. An error
    /// means the socket is broken and the connection should be dropped.
    pub(crate) fn drive(
        &mut self,
        mut serve: impl FnMut(u64, Request) -> Option<String>,
        mut count: impl FnMut(u64),
    ) -> io::Result<Status> {
        let mut budget = REQUESTS_PER_TURN;
        loop {
            let pause = self.take_requests(&mut budget, &mut serve)?;
            let moved = self.move_ready_answers();
            if moved > 0 {
                count(moved);
            }
            self.write()?;
            // Writing may have lifted the pressure that paused us: go on,
            // because no event will come for requests already read.
            if pause != Pause::Backpressure || self.backpressured() {
                return Ok(self.status(pause));
            }
        }
    }

    /// A readiness event said the socket can be read; `fin` when it also
    /// said the peer has closed its side (mio's `is_read_closed`).
    pub(crate) fn readable(&mut self, fin: bool) {
        match self.input {
            Input::Readable | Input::Drained if fin => self.input = Input::Closing,
            Input::Drained => self.input = Input::Readable,
            _ => {}
        }
    }

    /// Shutdown: read nothing more, answer what has been read. After the
    /// client's FIN the input stays `PeerClosed`: a last line without its
    /// `\n` has been read too, and is still owed an answer.
    pub(crate) fn stop_reading(&mut self) {
        if self.input != Input::PeerClosed {
            self.input = Input::Stopped;
        }
    }

    /// Delivers a late answer (a database reply, an offloaded image).
    pub(crate) fn fill(&mut self, seq: u64, answer: String) {
        let index = seq.checked_sub(self.first_seq);
        if let Some(place) = index.and_then(|i| self.answers.get_mut(i as usize)) {
            place.answer = Some(answer);
        }
    }

    /// Answers moved to the output so far (the model test checks `drive`'s
    /// count against it).
    #[cfg(test)]
    pub(crate) fn answered(&self) -> u64 {
        self.first_seq
    }

    /// When this connection should be closed if nothing changes: a stalled
    /// reader after the write timeout, an idle one after the idle timeout.
    /// `None` while it is only waiting for its answers, which is not idle.
    pub(crate) fn deadline(&self, idle: Duration, write: Duration) -> Option<Instant> {
        if !self.out.is_empty() {
            Some(self.last_write_progress + write)
        } else if !self.answers.is_empty() {
            None
        } else {
            Some(self.last_request + idle)
        }
    }

    fn take_requests(
        &mut self,
        budget: &mut usize,
        serve: &mut impl FnMut(u64, Request) -> Option<String>,
    ) -> io::Result<Pause> {
        loop {
            if self.backpressured() {
                return Ok(Pause::Backpressure);
            }
            if *budget == 0 {
                return Ok(Pause::Budget);
            }
            // Requests already read come first; the socket only when none is
            // left. At end of stream the last line may lack its `\n`.
            let item = match self.input {
                Input::PeerClosed => self.reader.next().or_else(|| self.reader.finish()),
                _ => self.reader.next(),
            };
            match item {
                Some(item) => {
                    *budget -= 1;
                    self.take(item, serve);
                }
                // A read costs a unit of the turn too: a client sending
                // nothing but blank lines asks nothing, yet must not keep
                // the loop reading for ever.
                None if matches!(self.input, Input::Readable | Input::Closing) => {
                    *budget -= 1;
                    self.read()?;
                }
                None => return Ok(Pause::NoInput),
            }
        }
    }

    fn take(&mut self, item: Incoming, serve: &mut impl FnMut(u64, Request) -> Option<String>) {
        if item.reply.ends_connection() {
            self.input = Input::Stopped;
        }
        let seq = self.first_seq + self.answers.len() as u64;
        let answer = match item.work {
            Work::Answered(line) => Some(line),
            Work::Serve(request) => serve(seq, request),
        };
        self.answers.push_back(Place {
            reply: item.reply,
            answer,
        });
        self.last_request = Instant::now();
    }

    /// Reads once (`try_now`: again if a signal interrupted it).
    fn read(&mut self) -> io::Result<()> {
        match try_now(|| self.reader.read_from(&mut self.socket))? {
            Some(0) => self.input = Input::PeerClosed,
            // On epoll and kqueue, a read that returns less than asked has
            // emptied the socket, and any later arrival raises a new edge:
            // stop here and save the read that would say `WouldBlock`.
            Some(got) if got < READ_CHUNK && SHORT_READ_DRAINS && self.input == Input::Readable => {
                self.went_quiet()
            }
            Some(_) => {}
            None => self.went_quiet(), // `WouldBlock`: read dry
        }
        Ok(())
    }

    fn went_quiet(&mut self) {
        self.input = Input::Drained;
        // Quiet for now: keep only the partial line, not a buffer.
        self.reader.shrink();
    }

    fn backpressured(&self) -> bool {
        self.answers.len() >= MAX_IN_FLIGHT || self.out.len() >= MAX_UNSENT
    }

    /// Moves the answers that are ready, in order, to the output; returns
    /// how many.
    fn move_ready_answers(&mut self) -> u64 {
        let before = self.first_seq;
        if self.out.is_empty() && self.answers.front().is_some_and(|p| p.answer.is_some()) {
            // Output starts moving now: a stall is timed from here.
            self.last_write_progress = Instant::now();
        }
        while self.answers.front().is_some_and(|p| p.answer.is_some()) {
            if let Some(Place {
                reply,
                answer: Some(line),
            }) = self.answers.pop_front()
            {
                reply.encode(&line, &mut self.out);
            }
            self.first_seq += 1;
        }
        if self.answers.is_empty() && self.answers.capacity() > 64 {
            self.answers = VecDeque::new();
        }
        self.first_seq - before
    }

    /// Writes as much as the socket takes without blocking.
    fn write(&mut self) -> io::Result<()> {
        let mut written = 0;
        while written < self.out.len() {
            match try_now(|| self.socket.write(&self.out[written..]))? {
                Some(0) => return Err(ErrorKind::WriteZero.into()),
                Some(n) => {
                    written += n;
                    self.last_write_progress = Instant::now();
                }
                None => break, // `WouldBlock`: the socket's buffer is full
            }
        }
        self.out.drain(..written);
        if self.out.is_empty() && self.out.capacity() > 4096 {
            self.out = Vec::new(); // an idle connection keeps no big buffer
        }
        Ok(())
    }

    fn status(&self, pause: Pause) -> Status {
        let input_over = matches!(self.input, Input::PeerClosed | Input::Stopped);
        if pause == Pause::Budget {
            Status::MoreToDo
        } else if input_over
            && pause == Pause::NoInput
            && self.answers.is_empty()
            && self.out.is_empty()
        {
            Status::Finished
        } else {
            Status::Waiting
        }
    }
}

/// Whether a short read proves the socket empty, so the loop may stop
/// reading before `WouldBlock`. True for epoll and kqueue; elsewhere read
/// until `WouldBlock`, the rule that is always safe.
const SHORT_READ_DRAINS: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "openbsd",
    target_os = "dragonfly",
));
