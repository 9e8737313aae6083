//! Framing one answer line as an HTTP/1.1 response.
//!
//! The servers make the same answer line for both dialects; this module
//! only wraps it. The body is exactly the line the line protocol would
//! send, and the status code is read off that line (see [`Status::of`]), so
//! that a server which has never heard of HTTP still gets a `503` for
//! `ERR busy: ...` and a `500` for a caught panic.
//!
//! The monitoring port's two pages (`/live`, `/stats.json`, monitor.rs) are
//! framed here too, with their own [`ContentType`].
//!
//! Every response carries `Content-Type`, `Content-Length` and `Date`;
//! `Connection` is added when it says something the client cannot assume
//! (that the connection closes, or that an HTTP/1.0 connection stays open).

use super::date;

/// The status codes this server sends, with their reason phrases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    BadRequest,
    NotFound,
    MethodNotAllowed,
    HeaderFieldsTooLarge,
    InternalError,
    Unavailable,
    VersionNotSupported,
}

impl Status {
    pub(crate) fn code(self) -> u16 {
        match self {
            Status::Ok => 200,
            Status::BadRequest => 400,
            Status::NotFound => 404,
            Status::MethodNotAllowed => 405,
            Status::HeaderFieldsTooLarge => 431,
            Status::InternalError => 500,
            Status::Unavailable => 503,
            Status::VersionNotSupported => 505,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::BadRequest => "Bad Request",
            Status::NotFound => "Not Found",
            Status::MethodNotAllowed => "Method Not Allowed",
            Status::HeaderFieldsTooLarge => "Request Header Fields Too Large",
            Status::InternalError => "Internal Server Error",
            Status::Unavailable => "Service Unavailable",
            Status::VersionNotSupported => "HTTP Version Not Supported",
        }
    }

    /// The status of an answer line the server made. Anything that is not
    /// an error succeeded; among errors, "busy" means try again later and
    /// "internal error" is our fault; every other error is the client's
    /// (bad arguments), because unknown commands cannot arrive over HTTP:
    /// an unknown path is answered 404 before any server sees it.
    pub(crate) fn of(answer: &str) -> Status {
        if !(answer == "ERR" || answer.starts_with("ERR ") || answer.starts_with("ERR\n")) {
            Status::Ok
        } else if answer.starts_with("ERR busy") {
            Status::Unavailable
        } else if answer.starts_with("ERR internal error") {
            Status::InternalError
        } else {
            Status::BadRequest
        }
    }
}

/// What a body is. Every answer of the two dialects is a line of text; the
/// monitoring port also sends a page and a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentType {
    Text,
    Html,
    Json,
}

impl ContentType {
    fn header(self) -> &'static [u8] {
        match self {
            ContentType::Text => b"text/plain; charset=utf-8",
            ContentType::Html => b"text/html; charset=utf-8",
            ContentType::Json => b"application/json",
        }
    }
}

/// Whether the connection stays open after a response, and how to say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Persistence {
    /// HTTP/1.1's default: nothing to say.
    KeepAlive,
    /// An HTTP/1.0 client asked for keep-alive; it must be told it got it.
    KeepAliveAnnounced,
    /// `Connection: close`, and the reader hands out nothing more.
    Close,
}

/// How to frame one answer: everything about the request that the
/// response depends on, decided when the request was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HttpFraming {
    /// `None`: read the status off the answer line ([`Status::of`]).
    pub(crate) status: Option<Status>,
    /// HEAD: the same head as GET, and no body.
    pub(crate) head_only: bool,
    pub(crate) persistence: Persistence,
}

impl HttpFraming {
    /// Appends the response for `answer` (one line, `\n` included) to `out`.
    pub(crate) fn encode(&self, answer: &str, out: &mut Vec<u8>) {
        let status = self.status.unwrap_or_else(|| Status::of(answer));
        self.encode_body(status, ContentType::Text, answer.as_bytes(), out);
    }

    /// Appends a response with this `status` and a `body` of any type.
    pub(crate) fn encode_body(
        &self,
        status: Status,
        content_type: ContentType,
        body: &[u8],
        out: &mut Vec<u8>,
    ) {
        // `write!` into a Vec cannot fail, but pushing pieces keeps this
        // free of any Result to ignore.
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.code().to_string().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.reason().as_bytes());
        out.extend_from_slice(b"\r\nDate: ");
        date::append_now(out);
        out.extend_from_slice(b"\r\nContent-Type: ");
        out.extend_from_slice(content_type.header());
        out.extend_from_slice(b"\r\nContent-Length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        match status {
            Status::MethodNotAllowed => out.extend_from_slice(b"Allow: GET, HEAD\r\n"),
            // The only busy answers are momentary (a full queue), so a
            // second is a fair guess; the client may do as it likes.
            Status::Unavailable => out.extend_from_slice(b"Retry-After: 1\r\n"),
            _ => {}
        }
        match self.persistence {
            Persistence::KeepAlive => {}
            Persistence::KeepAliveAnnounced => out.extend_from_slice(b"Connection: keep-alive\r\n"),
            Persistence::Close => out.extend_from_slice(b"Connection: close\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        if !self.head_only {
            out.extend_from_slice(body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(framing: HttpFraming, answer: &str) -> String {
        let mut out = Vec::new();
        framing.encode(answer, &mut out);
        String::from_utf8(out).unwrap()
    }

    const SERVED: HttpFraming = HttpFraming {
        status: None,
        head_only: false,
        persistence: Persistence::KeepAlive,
    };

    /// The response without its Date line, which changes every second.
    fn without_date(response: &str) -> String {
        response
            .split("\r\n")
            .filter(|line| !line.starts_with("Date: "))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    #[test]
    fn the_status_is_read_off_the_answer() {
        assert_eq!(Status::of("PONG\n"), Status::Ok);
        assert_eq!(Status::of("OK DB 1 value=00\n"), Status::Ok);
        assert_eq!(Status::of("BYE\n"), Status::Ok);
        assert_eq!(Status::of("ERRATIC\n"), Status::Ok);
        assert_eq!(Status::of("ERR busy\n"), Status::Unavailable);
        assert_eq!(
            Status::of("ERR busy: image queue full\n"),
            Status::Unavailable
        );
        assert_eq!(Status::of("ERR internal error\n"), Status::InternalError);
        assert_eq!(
            Status::of("ERR usage: DB <id> [delay_ms]\n"),
            Status::BadRequest
        );
    }

    #[test]
    fn a_served_answer_is_the_body_with_its_length() {
        let response = encode(SERVED, "OK DB 42 value=bdd732262feb6e95\n");
        assert!(
            response.starts_with("HTTP/1.1 200 OK\r\nDate: "),
            "{response}"
        );
        assert_eq!(
            without_date(&response),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 32\r\n\r\nOK DB 42 value=bdd732262feb6e95\n"
        );
    }

    #[test]
    fn busy_is_503_with_retry_after() {
        let response = encode(SERVED, "ERR busy: image queue full\n");
        assert_eq!(
            without_date(&response),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Length: 27\r\nRetry-After: 1\r\n\r\nERR busy: image queue full\n"
        );
    }

    #[test]
    fn a_panic_is_500() {
        let response = encode(SERVED, "ERR internal error\n");
        assert!(response.starts_with("HTTP/1.1 500 Internal Server Error\r\n"));
    }

    #[test]
    fn head_has_the_length_of_the_body_it_leaves_out() {
        let head = HttpFraming {
            head_only: true,
            ..SERVED
        };
        let response = encode(head, "PONG\n");
        assert!(
            response.ends_with("Content-Length: 5\r\n\r\n"),
            "{response}"
        );
    }

    #[test]
    fn a_fixed_status_wins_and_brings_its_headers() {
        let refused = HttpFraming {
            status: Some(Status::MethodNotAllowed),
            head_only: false,
            persistence: Persistence::Close,
        };
        let response = encode(refused, "ERR method not allowed\n");
        assert!(response.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(response.contains("\r\nAllow: GET, HEAD\r\nConnection: close\r\n\r\n"));
        let announced = HttpFraming {
            persistence: Persistence::KeepAliveAnnounced,
            ..SERVED
        };
        assert!(encode(announced, "PONG\n").contains("\r\nConnection: keep-alive\r\n\r\n"));
    }
}
