//! One connection as the event loop sees it: a state machine that is never
//! allowed to wait.
//!
//! Nothing here blocks. Each call to [`Connection::pump`] does whatever can
//! be done *right now* (read what has arrived, answer what can be answered,
//! write what the socket will take) and returns; the loop calls it again
//! when something changes: the socket becomes readable or writable, a
//! database timer fires, or the connection used up its turn.
//!
//! ## Ordering
//! Every request takes a place in `answers`, in arrival order. Quick answers
//! fill their place at once; a database query leaves its place empty until
//! its timer fires. Only the *front* of the queue is ever moved to the
//! output, so a later request that finishes first waits behind an earlier
//! one: `DB 1 300`, `PING`, `DB 2 0` come back in that order.
//!
//! ## Backpressure
//! A client may pipeline without reading. Past [`MAX_IN_FLIGHT`] unanswered
//! requests or [`MAX_UNSENT`] bytes of unsent output, the connection stops
//! reading: the client's bytes wait in the kernel, TCP flow control slows
//! the client down, and this server's memory stays flat.
//!
//! ## Readiness is a hint, and edge-triggered
//! mio reports a socket once when it *becomes* readable. So `may_read`
//! remembers that a read may succeed until one returns `WouldBlock`; a
//! connection that stopped reading for backpressure or for fairness resumes
//! from that flag, not from a new event (none would come).

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Write};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry};
use shared::protocol::{parse_request, response, LineFramer, LineTooLong, Request, RequestError};
use shared::stats::Counters;

use crate::slab::ConnectionId;

/// Unanswered requests one connection may have before it stops being read.
pub(crate) const MAX_IN_FLIGHT: usize = 1024;
/// Unsent output one connection may have before it stops being read.
pub(crate) const MAX_UNSENT: usize = 256 * 1024;
/// Requests one connection may start in one turn of the loop, so a client
/// with a huge pipeline cannot keep the loop from everyone else.
pub(crate) const REQUESTS_PER_TURN: usize = 64;

/// Answers the requests a connection cannot answer by itself.
pub(crate) trait Answerer {
    /// The answer line now, or `None` if it will be delivered later through
    /// [`Connection::fill`] with the same `seq`.
    fn answer(&mut self, conn: ConnectionId, seq: u64, request: Request) -> Option<String>;
}

/// How a connection stands after a turn.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Waiting for the socket or a timer.
    Waiting,
    /// Used its turn's budget with requests left: pump it again soon.
    MoreToDo,
    /// Everything asked has been answered and sent, and no more will come.
    Finished,
}

pub(crate) struct Connection {
    pub(crate) stream: TcpStream,
    framer: LineFramer,
    /// One place per request, in order; `None` until its answer exists.
    answers: VecDeque<Option<String>>,
    /// The sequence number of `answers.front()`.
    first_seq: u64,
    out: Vec<u8>,
    /// A read may succeed: set by readiness events, cleared by `WouldBlock`.
    pub(crate) may_read: bool,
    /// False once nothing more will be read: end of stream, `QUIT`, a line
    /// too long, or shutdown.
    reading: bool,
    /// False once later lines are to be ignored (`QUIT`, a line too long).
    parsing: bool,
    /// Set once every complete line received has been taken.
    input_done: bool,
    /// Whether WRITABLE is part of the registered interest.
    wants_writable: bool,
    /// Idle time counts from here: the last *complete* request, so a line
    /// trickled a byte at a time does not keep a connection alive.
    last_request: Instant,
    /// A stalled reader is timed from here: when output last moved.
    last_write_progress: Instant,
}

impl Connection {
    pub(crate) fn new(stream: TcpStream, now: Instant) -> Self {
        Connection {
            stream,
            framer: LineFramer::new(),
            answers: VecDeque::new(),
            first_seq: 0,
            out: Vec::new(),
            may_read: true,
            reading: true,
            parsing: true,
            input_done: false,
            wants_writable: false,
            last_request: now,
            last_write_progress: now,
        }
    }

    /// Does everything that can be done now, within this turn's budget.
    /// An error means the connection is broken and should be dropped.
    pub(crate) fn pump(
        &mut self,
        id: ConnectionId,
        answerer: &mut impl Answerer,
        counters: &Counters,
    ) -> io::Result<Progress> {
        let mut budget = REQUESTS_PER_TURN;
        let mut more_to_do = false;
        while self.parsing && !self.backpressured() {
            if budget == 0 {
                more_to_do = true;
                break;
            }
            // Parse to an owned value at once, ending the framer's borrow.
            let next = self.framer.next_line().map(parse);
            match next {
                Some(line) => {
                    budget -= 1;
                    self.take(line, id, answerer);
                }
                None if self.reading && self.may_read => {
                    if let Some(last_line) = self.read()? {
                        self.take(last_line, id, answerer);
                    }
                }
                None => {
                    self.input_done = true;
                    break;
                }
            }
        }
        self.move_ready_answers(counters);
        self.write()?;
        let nothing_left = !self.reading
            && (self.input_done || !self.parsing)
            && self.answers.is_empty()
            && self.out.is_empty();
        Ok(if nothing_left {
            Progress::Finished
        } else if more_to_do {
            Progress::MoreToDo
        } else {
            Progress::Waiting
        })
    }

    /// Reads once. Returns the final unterminated line at end of stream.
    fn read(&mut self) -> io::Result<Option<Parsed>> {
        match self.framer.read_from(&mut self.stream) {
            Ok(0) => {
                self.reading = false;
                Ok(self.framer.finish().map(parse))
            }
            Ok(_) => Ok(None),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.may_read = false;
                // Quiet for now: keep only the partial line, not a buffer.
                self.framer.shrink();
                Ok(None)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn take(&mut self, line: Parsed, id: ConnectionId, answerer: &mut impl Answerer) {
        let answer = match line {
            Parsed::Blank => return,
            Parsed::TooLong => self.last_answer(response::line_too_long()),
            Parsed::Request(Err(e)) => Some(response::error(&e)),
            Parsed::Request(Ok(Request::Quit)) => self.last_answer(response::bye()),
            Parsed::Request(Ok(request)) => {
                let seq = self.first_seq + self.answers.len() as u64;
                answerer.answer(id, seq, request)
            }
        };
        self.answers.push_back(answer);
        self.last_request = Instant::now();
    }

    /// After `QUIT` or a too-long line: nothing more is read or answered.
    fn last_answer(&mut self, line: String) -> Option<String> {
        self.reading = false;
        self.parsing = false;
        Some(line)
    }

    /// Delivers a late answer (a database reply) to its place.
    pub(crate) fn fill(&mut self, seq: u64, answer: String) {
        if let Some(index) = seq.checked_sub(self.first_seq) {
            if let Some(place) = self.answers.get_mut(index as usize) {
                *place = Some(answer);
            }
        }
    }

    /// Shutdown: answer what has been received, read nothing more.
    pub(crate) fn stop_reading(&mut self) {
        self.reading = false;
    }

    fn backpressured(&self) -> bool {
        self.answers.len() >= MAX_IN_FLIGHT || self.out.len() >= MAX_UNSENT
    }

    fn move_ready_answers(&mut self, counters: &Counters) {
        if self.out.is_empty() && matches!(self.answers.front(), Some(Some(_))) {
            self.last_write_progress = Instant::now();
        }
        while let Some(Some(_)) = self.answers.front() {
            if let Some(Some(line)) = self.answers.pop_front() {
                self.out.extend_from_slice(line.as_bytes());
            }
            self.first_seq += 1;
            Counters::add(&counters.requests_answered, 1);
        }
        if self.answers.is_empty() && self.answers.capacity() > 64 {
            self.answers = VecDeque::new();
        }
    }

    /// Writes as much as the socket takes without blocking.
    fn write(&mut self) -> io::Result<()> {
        let mut written = 0;
        while written < self.out.len() {
            match self.stream.write(&self.out[written..]) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    written += n;
                    self.last_write_progress = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.out.drain(..written);
        if self.out.is_empty() && self.out.capacity() > 4096 {
            self.out = Vec::new(); // an idle connection keeps no big buffer
        }
        Ok(())
    }

    /// Asks for WRITABLE events only while output is waiting: otherwise
    /// every turn would report a socket that is (almost always) writable.
    pub(crate) fn sync_interest(
        &mut self,
        registry: &Registry,
        id: ConnectionId,
    ) -> io::Result<()> {
        let wants_writable = !self.out.is_empty();
        if wants_writable != self.wants_writable {
            let interest = if wants_writable {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(&mut self.stream, id.token(), interest)?;
            self.wants_writable = wants_writable;
        }
        Ok(())
    }

    /// When this connection should be closed if nothing changes: a stalled
    /// reader after the write timeout, an idle one after the idle timeout.
    /// `None` while it is only waiting for the database, which is not idle.
    pub(crate) fn deadline(
        &self,
        idle_timeout: Duration,
        write_timeout: Duration,
    ) -> Option<Instant> {
        if !self.out.is_empty() {
            Some(self.last_write_progress + write_timeout)
        } else if !self.answers.is_empty() {
            None
        } else {
            Some(self.last_request + idle_timeout)
        }
    }
}

/// A framed line, parsed and owned.
enum Parsed {
    Blank,
    TooLong,
    Request(Result<Request, RequestError>),
}

fn parse(line: Result<&[u8], LineTooLong>) -> Parsed {
    match line {
        Err(LineTooLong) => Parsed::TooLong,
        Ok(line) => parse_request(line).map_or(Parsed::Blank, Parsed::Request),
    }
}
