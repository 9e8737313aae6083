//! A model test of the connection state machine: random orders of events,
//! checked against what a correct server must do, with no socket at all.
//!
//! Example tests pick one order of events; the bugs that lose answers live
//! in the orders nobody picked (a pipeline that outlasts backpressure, a
//! drain that starts while the turn's budget is spent). So this test lets
//! proptest generate the orders. A scripted socket stands in for TCP and
//! behaves as epoll promises, no better: a read returns what has arrived,
//! up to the buffer; a write takes what the send window allows, then says
//! `WouldBlock`; an edge (a call to `drive`) comes only when something
//! changes: bytes or FIN arrive, the window opens after a `WouldBlock`, a
//! late answer is filled, or the loop re-drives a connection that said
//! `MoreToDo`.
//!
//! After every step:
//! - `Waiting` must be true: driving again with nothing changed (a spurious
//!   wake-up) makes no progress. Otherwise work was left that no future
//!   event would start: a lost wake-up.
//! - `Finished` comes only when everything read has been answered and
//!   written.
//!
//! At the end every event still due is delivered (late answers, an open
//! window, FIN). The connection must then be finished, and what it wrote
//! must be exactly one answer per complete request it read, in order, as a
//! reference reader computes from the bytes read; after `QUIT` or a line
//! too long, nothing more.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Instant;

use proptest::prelude::*;
use shared::protocol::{Request, RequestReader, Work};

use crate::connection::{Connection, Status};

/// A socket that does what the test says, as a kernel would.
#[derive(Default)]
struct ScriptedSocket {
    /// Arrived and not yet read.
    inbox: VecDeque<u8>,
    /// The client sent FIN after the inbox.
    fin: bool,
    /// Bytes the connection has read, all told; and whether it saw the FIN.
    read_total: usize,
    read_fin: bool,
    /// Bytes the send window takes before `WouldBlock`.
    window: usize,
    /// A write said `WouldBlock`: the next opening of the window is an edge.
    blocked: bool,
    written: Vec<u8>,
}

impl Read for ScriptedSocket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inbox.is_empty() {
            if self.fin {
                self.read_fin = true;
                return Ok(0);
            }
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.inbox.len());
        for (slot, byte) in buf.iter_mut().zip(self.inbox.drain(..n)) {
            *slot = byte;
        }
        self.read_total += n;
        Ok(n)
    }
}

impl Write for ScriptedSocket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.window == 0 {
            self.blocked = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.window);
        self.window -= n;
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Event {
    /// The next `n` bytes of the client's input arrive.
    Arrive(usize),
    /// One late answer (chosen by index) is ready.
    Fill(usize),
    /// The send window opens by `n` bytes.
    Window(usize),
    /// The client half-closes.
    Fin,
    /// The loop gets round to a connection that said `MoreToDo`.
    Again,
    /// Shutdown begins.
    Drain,
}

/// The answer both the model and the reference give a request; database
/// queries and image jobs are answered late.
fn answer_of(request: &Request) -> (String, bool) {
    match request {
        Request::Db { id, .. } => (format!("OK DB {id}\n"), true),
        Request::Image(job) => (format!("OK IMAGE {}\n", job.seed), true),
        other => (format!("{other:?}\n"), false),
    }
}

/// What a correct server writes for `input`: one answer per complete
/// request, in order, until an answer that ends the connection.
fn reference(input: &[u8], fin_read: bool) -> Vec<u8> {
    let mut reader = RequestReader::new();
    reader.push(input);
    let mut out = Vec::new();
    let mut items = Vec::new();
    while let Some(item) = reader.next() {
        items.push(item);
    }
    if fin_read {
        items.extend(reader.finish());
    }
    for item in items {
        let line = match &item.work {
            Work::Answered(line) => line.clone(),
            Work::Serve(request) => answer_of(request).0,
        };
        item.reply.encode(&line, &mut out);
    }
    out
}

struct Model {
    conn: Connection<ScriptedSocket>,
    input: Vec<u8>,
    /// How much of `input` has arrived.
    sent: usize,
    /// Promised answers: (sequence number, answer).
    late: Vec<(u64, String)>,
    /// Answers the connection reported through `drive`'s count, which
    /// must always equal those it moved to the output.
    counted: u64,
    status: Status,
}

impl Model {
    fn new(input: Vec<u8>, window: usize) -> Self {
        let socket = ScriptedSocket {
            window,
            ..ScriptedSocket::default()
        };
        Model {
            conn: Connection::new(socket, Instant::now()),
            input,
            sent: 0,
            late: Vec::new(),
            counted: 0,
            status: Status::Waiting,
        }
    }

    fn drive(&mut self) -> Result<(), TestCaseError> {
        prop_assert_ne!(self.status, Status::Finished, "driven after it finished");
        let (late, counted) = (&mut self.late, &mut self.counted);
        let status = self.conn.drive(
            |seq, request| {
                let (line, is_late) = answer_of(&request);
                if is_late {
                    late.push((seq, line));
                    None
                } else {
                    Some(line)
                }
            },
            |moved| *counted += moved,
        );
        self.status = status.map_err(|e| TestCaseError::fail(format!("drive failed: {e}")))?;
        prop_assert_eq!(
            self.counted,
            self.conn.answered(),
            "every answer counted once"
        );
        self.check()
    }

    fn progress(&self) -> (usize, usize, usize, u64) {
        let socket = &self.conn.socket;
        let answered = self.conn.answered();
        (
            socket.read_total,
            socket.written.len(),
            self.late.len(),
            answered,
        )
    }

    fn check(&mut self) -> Result<(), TestCaseError> {
        match self.status {
            Status::Waiting => {
                // A spurious wake-up must find nothing to do.
                let before = self.progress();
                let (late, counted) = (&mut self.late, &mut self.counted);
                let again = self.conn.drive(
                    |seq, request| {
                        let (line, is_late) = answer_of(&request);
                        is_late.then(|| late.push((seq, line.clone())));
                        (!is_late).then_some(line)
                    },
                    |moved| *counted += moved,
                );
                prop_assert!(again.is_ok());
                prop_assert_eq!(
                    before,
                    self.progress(),
                    "said Waiting with work it could do"
                );
            }
            Status::Finished => {
                let socket = &self.conn.socket;
                let read = &self.input[..socket.read_total];
                let expected = reference(read, socket.read_fin);
                prop_assert!(self.late.is_empty(), "finished with answers still owed");
                prop_assert_eq!(
                    String::from_utf8_lossy(&socket.written),
                    String::from_utf8_lossy(&expected)
                );
            }
            Status::MoreToDo => {}
        }
        Ok(())
    }

    fn apply(&mut self, event: Event) -> Result<(), TestCaseError> {
        if self.status == Status::Finished {
            return Ok(());
        }
        let socket = &mut self.conn.socket;
        match event {
            Event::Arrive(n) => {
                let n = n.min(self.input.len() - self.sent);
                if n == 0 || socket.fin {
                    return Ok(());
                }
                socket.inbox.extend(&self.input[self.sent..self.sent + n]);
                self.sent += n;
                self.conn.readable(false);
            }
            Event::Fill(k) => {
                if self.late.is_empty() {
                    return Ok(());
                }
                let (seq, line) = self.late.swap_remove(k % self.late.len());
                self.conn.fill(seq, line);
            }
            Event::Window(n) => {
                socket.window += n;
                if !std::mem::take(&mut socket.blocked) {
                    return Ok(()); // no edge: the window was not the limit
                }
            }
            Event::Fin => {
                if socket.fin {
                    return Ok(());
                }
                socket.fin = true;
                self.conn.readable(true);
            }
            Event::Again => {
                if self.status != Status::MoreToDo {
                    return Ok(());
                }
            }
            Event::Drain => self.conn.stop_reading(),
        }
        self.drive()
    }

    /// Delivers every event still due, then checks the outcome.
    fn settle(&mut self) -> Result<(), TestCaseError> {
        self.apply(Event::Fin)?;
        for _ in 0..10_000 {
            if self.status == Status::Finished {
                return Ok(());
            }
            let event = if self.status == Status::MoreToDo {
                Event::Again
            } else if !self.late.is_empty() {
                Event::Fill(0)
            } else if self.conn.socket.blocked {
                Event::Window(1 << 20)
            } else {
                break;
            };
            self.apply(event)?;
        }
        let socket = &self.conn.socket;
        let expected = reference(&self.input[..socket.read_total], socket.read_fin);
        prop_assert_eq!(
            String::from_utf8_lossy(&socket.written),
            String::from_utf8_lossy(&expected),
            "every request read, answered once, in order"
        );
        prop_assert_eq!(
            self.status,
            Status::Finished,
            "stalled with no event to come"
        );
        Ok(())
    }
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("PING".to_string()),
        4 => (0u64..100).prop_map(|id| format!("DB {id} 5")),
        2 => (0u64..100).prop_map(|seed| format!("IMAGE blur 2 2 {seed}")),
        1 => Just("HELP".to_string()),
        1 => Just("FROB".to_string()),
        1 => Just(String::new()),
        1 => Just("QUIT".to_string()),
        1 => Just("x".repeat(1100)),
    ]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((line(), any::<bool>()), 0..40),
        any::<bool>(),
        // Some clients ask only quick things: then a connection's answer
        // queue empties at every turn, the case where "nothing owed" and
        // "nothing left to read" are easiest to confuse.
        prop::bool::weighted(0.3),
    )
        .prop_map(|(lines, unterminated_last, quick_only)| {
            let mut bytes = Vec::new();
            for (text, crlf) in &lines {
                let slow = text.starts_with("DB") || text.starts_with("IMAGE");
                let text = if quick_only && slow { "PING" } else { text };
                bytes.extend_from_slice(text.as_bytes());
                bytes.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            if unterminated_last {
                bytes.extend_from_slice(b"DB 9 1");
            }
            bytes
        })
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        6 => (1usize..80).prop_map(Event::Arrive),
        4 => any::<usize>().prop_map(Event::Fill),
        3 => (0usize..40).prop_map(Event::Window),
        3 => Just(Event::Again),
        1 => Just(Event::Fin),
        2 => Just(Event::Drain),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn every_request_read_is_answered_once_in_order(
        input in input(),
        window in prop_oneof![Just(0usize), 1usize..64, Just(1 << 20)],
        events in prop::collection::vec(event(), 0..150),
        drain_last in prop::bool::weighted(0.3),
    ) {
        let mut model = Model::new(input, window);
        model.drive()?; // the loop drives every new connection once
        for event in events {
            model.apply(event)?;
        }
        if drain_last {
            // Shutdown after everything arrived: the case where the most
            // requests sit read but not yet taken.
            model.apply(Event::Drain)?;
        }
        model.settle()?;
    }
}
