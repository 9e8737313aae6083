//! Bytes in, requests out; answers in, bytes out: the one protocol interface
//! both servers use, whatever the client speaks.
//!
//! A [`RequestReader`] sits between a connection's socket and its server.
//! The server hands it whatever bytes arrived; it hands back [`Incoming`]
//! items, each a piece of work (a [`Request`] to serve, or an answer it
//! could make by itself, such as a parse error) and a [`Reply`] saying how
//! to frame that answer on the wire. The server never sees a line, a header
//! or a status code: it schedules requests, and that is all that differs
//! between a thread pool and an event loop.
//!
//! No socket appears here, which is the sans-I/O style: the same reader
//! serves a blocking worker, a non-blocking loop, and a test that feeds it
//! bytes split at random places.
//!
//! ## Dialects
//! Each connection speaks one dialect for its whole life, chosen from its
//! first complete non-blank line: a line shaped like an HTTP request line
//! (`GET /ping HTTP/1.1`) makes it [HTTP](crate::protocol::http), anything
//! else the line protocol. Both share the framer, so the line limit holds
//! for either; everything else about HTTP lives in its own module and plugs
//! in here and nowhere else.
//!
//! ## The end of a conversation
//! Some answers are the last on their connection: `BYE` after `QUIT`,
//! `ERR line too long` (after it there is no telling where the next request
//! starts), an HTTP response with `Connection: close`. [`Reply::ends_connection`] says so, and after such an item the
//! reader hands out nothing more.

use std::io::{self, Read};

use crate::protocol::http::{self, HttpFraming, HttpParser, Persistence};
use crate::protocol::{parse_request, response, LineFramer, LineTooLong, Request};

/// One thing a client asked, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub work: Work,
    pub reply: Reply,
}

/// What the server has to do for an [`Incoming`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Serve this request and frame its answer line with the [`Reply`].
    Serve(Request),
    /// The answer line is already known (a malformed request, `QUIT`).
    Answered(String),
}

/// How an answer line goes on the wire, and whether it is the last one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    framing: Framing,
    ends_connection: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Framing {
    /// The line itself, `\n` included.
    Line,
    /// An HTTP response whose body is the line.
    Http(HttpFraming),
}

impl Reply {
    fn line(ends_connection: bool) -> Self {
        Reply {
            framing: Framing::Line,
            ends_connection,
        }
    }

    pub(crate) fn http(framing: HttpFraming) -> Self {
        Reply {
            ends_connection: framing.persistence == Persistence::Close,
            framing: Framing::Http(framing),
        }
    }

    /// True when nothing after this answer is read or answered.
    pub fn ends_connection(&self) -> bool {
        self.ends_connection
    }

    /// Appends the answer, framed for the wire, to `out`. `answer` is one
    /// line of the line protocol, `\n` included.
    pub fn encode(&self, answer: &str, out: &mut Vec<u8>) {
        match self.framing {
            Framing::Line => out.extend_from_slice(answer.as_bytes()),
            Framing::Http(http) => http.encode(answer, out),
        }
    }
}

/// Which protocol this connection speaks.
#[derive(Debug, Default)]
enum Dialect {
    /// No complete non-blank line yet.
    #[default]
    Undecided,
    Line,
    Http(HttpParser),
}

/// One connection's incoming side: framing, dialect and parsing.
#[derive(Debug, Default)]
pub struct RequestReader {
    framer: LineFramer,
    dialect: Dialect,
    /// Set after an item whose reply ends the connection: nothing more is
    /// handed out, whatever arrives.
    ended: bool,
}

impl RequestReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.ended {
            self.framer.push(bytes);
        }
    }

    /// Reads once from `source`; see [`LineFramer::read_from`]. 0 means end
    /// of stream.
    pub fn read_from(&mut self, source: &mut impl Read) -> io::Result<usize> {
        if self.ended {
            // Nothing after the end is framed: read into nothing, so a
            // caller that keeps reading cannot make the reader grow.
            let mut sink = [0u8; 4096];
            return source.read(&mut sink);
        }
        self.framer.read_from(source)
    }

    /// The next complete item, or `None` until more bytes arrive (or for
    /// ever, once an item ended the connection).
    #[allow(clippy::should_implement_trait)] // not an Iterator: None is "not yet"
    pub fn next(&mut self) -> Option<Incoming> {
        while !self.ended {
            let line = self.framer.next_line()?;
            if let Some(item) = take_line(&mut self.dialect, line) {
                return Some(self.mark_end(item));
            }
        }
        None
    }

    /// At end of stream: the last item, if the bytes left make one (a final
    /// line without `\n` counts in the line protocol).
    pub fn finish(&mut self) -> Option<Incoming> {
        if self.ended {
            return None;
        }
        let line = self.framer.finish()?;
        let item = take_line(&mut self.dialect, line)?;
        Some(self.mark_end(item))
    }

    /// True once an item has ended the connection.
    pub fn has_ended(&self) -> bool {
        self.ended
    }

    /// Gives back buffer memory beyond the partial line; see
    /// [`LineFramer::shrink`].
    pub fn shrink(&mut self) {
        self.framer.shrink();
    }

    /// Bytes received and not yet handed out.
    pub fn buffered(&self) -> usize {
        self.framer.buffered()
    }

    fn mark_end(&mut self, item: Incoming) -> Incoming {
        if item.reply.ends_connection() {
            self.ended = true;
            self.framer = LineFramer::new();
        }
        item
    }
}

/// One framed line in the connection's dialect; `None` for a line that
/// asks nothing (a blank one). A free function so that it can borrow the
/// dialect while the line still borrows the framer.
fn take_line(dialect: &mut Dialect, line: Result<&[u8], LineTooLong>) -> Option<Incoming> {
    if let (Dialect::Undecided, Ok(text)) = (&*dialect, &line) {
        if text.iter().all(|b| b.is_ascii_whitespace()) {
            return None;
        }
        *dialect = if http::is_request_line(text) {
            Dialect::Http(HttpParser::default())
        } else {
            Dialect::Line
        };
    }
    match dialect {
        // A first line too long to look at is no HTTP request line we can
        // recognise: it is refused the line protocol's way.
        Dialect::Undecided | Dialect::Line => line_item(line),
        Dialect::Http(parser) => parser.take_line(line),
    }
}

/// What a server that has no room for a new connection sends before closing
/// it, given whatever it could read from it without waiting (maybe
/// nothing): an HTTP 503 with `Retry-After` if the bytes begin with an HTTP
/// request line, `ERR busy` otherwise.
pub fn busy_answer(received: &[u8]) -> Vec<u8> {
    http::busy_response(received).unwrap_or_else(|| response::BUSY.to_vec())
}

/// The line protocol: one line, one request.
fn line_item(line: Result<&[u8], LineTooLong>) -> Option<Incoming> {
    let (work, last) = match line {
        Err(LineTooLong) => (Work::Answered(response::line_too_long()), true),
        Ok(line) => match parse_request(line)? {
            Err(e) => (Work::Answered(response::error(&e)), false),
            Ok(Request::Quit) => (Work::Answered(response::bye()), true),
            Ok(request) => (Work::Serve(request), false),
        },
    };
    Some(Incoming {
        work,
        reply: Reply::line(last),
    })
}

/// Everything `input` asks for, then whatever its end of stream adds: the
/// unit tests' view of a whole conversation.
#[cfg(test)]
pub(crate) fn items(input: &[u8]) -> Vec<Incoming> {
    let mut reader = RequestReader::new();
    reader.push(input);
    let mut out = Vec::new();
    while let Some(item) = reader.next() {
        out.push(item);
    }
    out.extend(reader.finish());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_requests_come_out_in_order_and_blank_lines_ask_nothing() {
        let got = items(b"\r\n\nPING\nFROB\n\nDB 1 0");
        let work: Vec<Work> = got.into_iter().map(|i| i.work).collect();
        assert_eq!(
            work,
            vec![
                Work::Serve(Request::Ping),
                Work::Answered("ERR unknown command\n".into()),
                Work::Serve(Request::Db {
                    id: 1,
                    delay_ms: Some(0)
                }),
            ]
        );
    }

    #[test]
    fn quit_ends_the_conversation() {
        let got = items(b"PING\nQUIT\nPING\n");
        assert_eq!(got.len(), 2);
        assert!(got[1].reply.ends_connection());
        assert_eq!(got[1].work, Work::Answered("BYE\n".into()));
    }

    #[test]
    fn a_line_answer_is_the_line_itself() {
        let mut out = Vec::new();
        Reply::line(false).encode("PONG\n", &mut out);
        assert_eq!(out, b"PONG\n");
    }
}
