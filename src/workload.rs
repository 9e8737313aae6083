//! What the load generator asks, and how it knows an answer is right.
//!
//! The comparison's own workloads check every answer exactly (a DB answer
//! must carry the value of the id asked for), so a server that answers the
//! wrong request is caught. The command line can also send any line or any
//! HTTP path; those are checked only as far as the protocol allows: a line
//! that is not `ERR ...`, a status in 2xx.

use std::io::Write as _;

use crate::http::{self, Response};

/// What each request asks for; `{i}` is a counter shared by all
/// connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workload {
    /// `PING`
    Ping,
    /// `DB {i} {delay_ms}`
    Db { delay_ms: u64 },
    /// `IMAGE blur {side} {side} {i}`
    Blur { side: u32 },
    /// Any line protocol request, `{i}` replaced by the counter.
    Line { template: String },
    /// `GET {path}` over HTTP/1.1 keep-alive, `{i}` replaced in the path.
    Http { path: String },
}

/// How answers are framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Lines,
    Http,
}

/// One framed answer, borrowed from the bytes it arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    Line(&'a str),
    Http(Response<'a>),
}

impl Workload {
    /// A line protocol request from a template: the comparison's own
    /// workloads where it is one of them (so answers are checked exactly),
    /// any line otherwise.
    pub fn from_template(template: &str) -> Workload {
        let words: Vec<&str> = template.split_whitespace().collect();
        match words.as_slice() {
            ["PING"] => Workload::Ping,
            ["DB", "{i}", delay] if delay.parse::<u64>().is_ok() => Workload::Db {
                delay_ms: delay.parse().unwrap_or(0),
            },
            _ => Workload::Line {
                template: template.to_string(),
            },
        }
    }

    pub fn framing(&self) -> Framing {
        match self {
            Workload::Http { .. } => Framing::Http,
            _ => Framing::Lines,
        }
    }

    pub fn request(&self, i: u64) -> String {
        let mut out = Vec::new();
        self.write_request(i, &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Appends request `i` to `out`, allocating nothing of its own: the
    /// generator writes millions of these.
    pub fn write_request(&self, i: u64, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        let _ = match self {
            Workload::Ping => out.write_all(b"PING\n"),
            Workload::Db { delay_ms } => writeln!(out, "DB {i} {delay_ms}"),
            Workload::Blur { side } => writeln!(out, "IMAGE blur {side} {side} {i}"),
            Workload::Line { template } => {
                fill(template, i, out);
                out.write_all(b"\n")
            }
            Workload::Http { path } => {
                let _ = out.write_all(b"GET ");
                fill(path, i, out);
                out.write_all(http::GET_TAIL.as_bytes())
            }
        };
    }

    /// Is `answer` the right answer to request `i`? (Image checksums are
    /// not recomputed here: that would cost the client what it costs the
    /// server.)
    pub fn is_answer(&self, i: u64, answer: &Answer) -> bool {
        let line = match *answer {
            Answer::Http(response) => {
                return matches!(self, Workload::Http { .. }) && response.is_success()
            }
            Answer::Line(line) => line,
        };
        let expected = match self {
            Workload::Ping => return line == "PONG",
            Workload::Db { .. } => format!("OK DB {i} value={:016x}", shared::db::value(i)),
            Workload::Blur { side } => format!("OK IMAGE blur {side}x{side} seed={i} checksum="),
            Workload::Line { .. } => return !line.starts_with("ERR"),
            Workload::Http { .. } => return false,
        };
        let Some(rest) = line.strip_prefix(&expected) else {
            return false;
        };
        match self {
            Workload::Blur { .. } => {
                rest.len() >= 16 && rest[..16].bytes().all(|b| b.is_ascii_hexdigit())
            }
            _ => rest.is_empty() || rest.starts_with(' '),
        }
    }
}

/// Appends `template` with every `{i}` replaced by `i`.
fn fill(template: &str, i: u64, out: &mut Vec<u8>) {
    let mut parts = template.split("{i}");
    if let Some(first) = parts.next() {
        out.extend_from_slice(first.as_bytes());
    }
    for part in parts {
        let _ = write!(out, "{i}");
        out.extend_from_slice(part.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_of_known_requests_are_checked_exactly() {
        assert_eq!(Workload::from_template("PING"), Workload::Ping);
        assert_eq!(
            Workload::from_template("DB {i} 10"),
            Workload::Db { delay_ms: 10 }
        );
        let other = Workload::from_template("IMAGE edge 8 8 {i}");
        assert_eq!(other.request(3), "IMAGE edge 8 8 3\n");
        assert!(other.is_answer(3, &Answer::Line("OK IMAGE")));
        assert!(!other.is_answer(3, &Answer::Line("ERR busy")));
    }

    #[test]
    fn http_answers_count_by_status() {
        let workload = Workload::Http {
            path: "/db/{i}?delay_ms=10".into(),
        };
        assert!(workload
            .request(5)
            .starts_with("GET /db/5?delay_ms=10 HTTP/1.1\r\n"));
        let answer = |status| Answer::Http(Response { status, body: b"" });
        assert!(workload.is_answer(5, &answer(200)));
        assert!(!workload.is_answer(5, &answer(503)));
        assert!(!Workload::Ping.is_answer(5, &answer(200)));
    }
}
