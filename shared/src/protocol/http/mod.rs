//! HTTP/1.1, the second dialect: the same requests as the line protocol,
//! asked as `GET /db/42` instead of `DB 42`.
//!
//! This module exists to show that a wire protocol and a concurrency model
//! are separate choices. A dialect is bytes in, requests out (and answers
//! in, bytes out); whether a thread blocks on the socket or an event loop
//! polls it is none of its business. So HTTP is added here, inside the
//! sans-I/O [`RequestReader`](crate::protocol::RequestReader), and both
//! servers speak it without a line of their scheduling code changing.
//!
//! The reader's [`LineFramer`](crate::protocol::LineFramer) still cuts the
//! bytes into lines, so the request line and each header line are held to
//! the same 1024-byte limit as a line-protocol request. This parser takes
//! those lines one at a time, through two states: waiting for a request
//! line, then reading header lines until the empty line that ends the
//! request. Only a complete request is handed out, which keeps the
//! servers' idle deadline honest: it counts from the last complete
//! request, so a client trickling header lines for ever is closed like one
//! trickling a single line.
//!
//! Nothing of a header is kept once its line has been looked at: the
//! parser remembers a handful of flags and the work the target asks for,
//! so a request's memory is bounded whatever the client sends.
//! [`MAX_HEADER_LINES`] and [`MAX_HEADER_BYTES`] bound how much parsing a
//! request may demand before it is complete.
//!
//! Requests that carry a body are refused: this server takes none, and
//! guessing where a body ends is how request smuggling starts. Every
//! refusal of a malformed request closes the connection, since after one
//! there is no trusting where the next request begins; a well-formed
//! request for something that does not exist (404, 405, bad arguments)
//! leaves the connection open.

mod date;
mod monitor;
mod response;
mod route;
#[cfg(test)]
mod tests;

pub use monitor::{monitor_answer, MONITOR_INDEX};
pub(crate) use response::{HttpFraming, Persistence, Status};

use crate::limits::{MAX_HEADER_BYTES, MAX_HEADER_LINES};
use crate::protocol::{Incoming, LineTooLong, Reply, Work};

/// The parser of one HTTP connection.
#[derive(Debug, Default)]
pub(crate) struct HttpParser {
    state: State,
}

#[derive(Debug, Default)]
enum State {
    /// Between requests. Empty lines here are skipped, as RFC 9112 asks.
    #[default]
    AwaitingRequestLine,
    /// The request line was fine; reading its header lines.
    Headers(Head),
}

/// What a request's header block has told so far, and what it will be
/// answered once the block is complete.
#[derive(Debug)]
struct Head {
    version: Version,
    head_only: bool,
    /// Decided from the method and target when the request line arrived,
    /// so the target need not be kept.
    work: Work,
    status: Option<Status>,
    lines: usize,
    bytes: usize,
    hosts: usize,
    close: bool,
    keep_alive: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Http10,
    Http11,
}

impl HttpParser {
    /// Takes one line from the framer. `Some` when it completes a request
    /// or makes one impossible.
    pub(crate) fn take_line(&mut self, line: Result<&[u8], LineTooLong>) -> Option<Incoming> {
        match (&mut self.state, line) {
            (State::AwaitingRequestLine, Err(LineTooLong)) => {
                Some(too_large("ERR line too long\n", false))
            }
            (State::AwaitingRequestLine, Ok(b"")) => None,
            (State::AwaitingRequestLine, Ok(line)) => match request_line(line) {
                Ok(head) => {
                    self.state = State::Headers(head);
                    None
                }
                Err(refusal) => Some(refusal),
            },
            (State::Headers(head), Err(LineTooLong)) => {
                Some(too_large("ERR line too long\n", head.head_only))
            }
            (State::Headers(_), Ok(b"")) => {
                let State::Headers(head) = std::mem::take(&mut self.state) else {
                    return None; // matched just above
                };
                Some(head.complete())
            }
            (State::Headers(head), Ok(line)) => head.header_line(line).err(),
        }
    }
}

/// True when `line` is shaped like an HTTP request line: a method, one
/// space, a target without spaces, one space, `HTTP/` digit `.` digit.
/// The first such line makes a connection HTTP for good.
pub fn is_request_line(line: &[u8]) -> bool {
    split_request_line(line).is_some()
}

fn split_request_line(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let shaped = parts.next().is_none()
        && !method.is_empty()
        && method.iter().all(|&b| is_token(b))
        && !target.is_empty()
        && matches!(version, [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit());
    shaped.then_some((method, target, version))
}

/// Reads a request line; a refusal if it cannot start a request.
fn request_line(line: &[u8]) -> Result<Head, Incoming> {
    let Some((method, target, version)) = split_request_line(line) else {
        return Err(refuse(
            Status::BadRequest,
            "ERR malformed request line\n",
            false,
        ));
    };
    let head_only = method == b"HEAD";
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        _ => {
            return Err(refuse(
                Status::VersionNotSupported,
                "ERR HTTP version not supported\n",
                head_only,
            ))
        }
    };
    // Visible ASCII only: a control byte in a target is no URI at all.
    if !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(refuse(
            Status::BadRequest,
            "ERR malformed request target\n",
            head_only,
        ));
    }
    // Methods are case-sensitive (RFC 9110): `get` is some other method.
    let (work, status) = if method == b"GET" || head_only {
        route::route(target)
    } else {
        (
            Work::Answered("ERR method not allowed\n".to_string()),
            Some(Status::MethodNotAllowed),
        )
    };
    Ok(Head {
        version,
        head_only,
        work,
        status,
        lines: 0,
        bytes: 0,
        hosts: 0,
        close: false,
        keep_alive: false,
    })
}

impl Head {
    /// Looks at one header line; a refusal if the request cannot go on.
    fn header_line(&mut self, line: &[u8]) -> Result<(), Incoming> {
        self.lines += 1;
        self.bytes += line.len() + 2;
        if self.lines > MAX_HEADER_LINES {
            return Err(too_large("ERR too many header lines\n", self.head_only));
        }
        if self.bytes > MAX_HEADER_BYTES {
            return Err(too_large("ERR header block too large\n", self.head_only));
        }
        let bad = |answer: &str| refuse(Status::BadRequest, answer, self.head_only);
        // A line starting with white space continues the previous one
        // (obs-fold). RFC 9112 lets a server refuse it, and we do: joining
        // lines would mean keeping them.
        if matches!(line.first(), Some(b' ' | b'\t')) {
            return Err(bad("ERR obsolete line folding\n"));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(bad("ERR malformed header line\n"));
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        // `Host : x` must be refused (RFC 9112, section 5.1): proxies have
        // been fooled by names that differ only by trailing white space.
        if matches!(name.last(), Some(b' ' | b'\t')) {
            return Err(bad("ERR white space before a header colon\n"));
        }
        if name.is_empty() || !name.iter().all(|&b| is_token(b)) {
            return Err(bad("ERR malformed header line\n"));
        }
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(bad("ERR malformed header line\n"));
        }
        let is = |wanted: &str| name.eq_ignore_ascii_case(wanted.as_bytes());
        if is("host") {
            self.hosts += 1;
        } else if is("connection") {
            for option in value.split(|&b| b == b',').map(trim) {
                self.close |= option.eq_ignore_ascii_case(b"close");
                self.keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if is("transfer-encoding") || (is("content-length") && !is_zero_length(value)) {
            return Err(bad("ERR request bodies are not accepted\n"));
        }
        Ok(())
    }

    /// The header block is complete: the request, or why it is refused.
    fn complete(self) -> Incoming {
        // RFC 9112, section 3.2: an HTTP/1.1 request without Host, or any
        // request with two, is a 400.
        if self.hosts > 1 || (self.hosts == 0 && self.version == Version::Http11) {
            let answer = if self.hosts > 1 {
                "ERR more than one Host header\n"
            } else {
                "ERR missing Host header\n"
            };
            return refuse(Status::BadRequest, answer, self.head_only);
        }
        let persistence = match self.version {
            _ if self.close => Persistence::Close,
            Version::Http11 => Persistence::KeepAlive,
            Version::Http10 if self.keep_alive => Persistence::KeepAliveAnnounced,
            Version::Http10 => Persistence::Close,
        };
        Incoming {
            work: self.work,
            reply: Reply::http(HttpFraming {
                status: self.status,
                head_only: self.head_only,
                persistence,
            }),
        }
    }
}

/// What a server with no room sends before closing: see
/// [`busy_answer`](crate::protocol::dialect::busy_answer). `Some` when
/// `received` starts with an HTTP request line.
pub(crate) fn busy_response(received: &[u8]) -> Option<Vec<u8>> {
    let start = received.iter().position(|&b| b != b'\r' && b != b'\n')?;
    let rest = &received[start..];
    let line = match rest.iter().position(|&b| b == b'\n') {
        Some(end) => &rest[..end],
        None => rest,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let (method, _, _) = split_request_line(line)?;
    let framing = HttpFraming {
        status: None,
        head_only: method == b"HEAD",
        persistence: Persistence::Close,
    };
    let mut out = Vec::new();
    framing.encode("ERR busy\n", &mut out);
    Some(out)
}

/// A refused request: answered with `status`, and the connection closed.
fn refuse(status: Status, answer: &str, head_only: bool) -> Incoming {
    Incoming {
        work: Work::Answered(answer.to_string()),
        reply: Reply::http(HttpFraming {
            status: Some(status),
            head_only,
            persistence: Persistence::Close,
        }),
    }
}

fn too_large(answer: &str, head_only: bool) -> Incoming {
    refuse(Status::HeaderFieldsTooLarge, answer, head_only)
}

/// `Content-Length` that promises no body: `0`, or a list of zeros (a
/// list of equal values is allowed by RFC 9112). Anything else, valid or
/// not, means a body or a broken framing, and is refused either way.
fn is_zero_length(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .map(trim)
        .all(|v| !v.is_empty() && v.iter().all(|&b| b == b'0'))
}

/// The characters of a method or a header name (RFC 9110 `tchar`).
fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}
