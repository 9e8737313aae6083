//! Just enough HTTP/1.1 for the load generator: a keep-alive GET, and a
//! response framed by its status line, its headers and a `Content-Length`
//! body.
//!
//! The parser is incremental in the simplest way: it looks at everything
//! received so far and either finds one whole response at the front or
//! says "not yet". Headers are small, so parsing them again when more bytes
//! arrive costs little, and the parser keeps no state that a split read
//! could corrupt. A response it cannot frame (no `Content-Length`, chunked,
//! a bad status line) is an error: the load generator drops the connection
//! and counts what was outstanding, rather than guess where the next
//! response starts.

/// The longest status line plus headers accepted before giving up.
const MAX_HEAD: usize = 64 * 1024;
/// The largest body accepted: answers here are a line or two.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// What follows the path in every request the generator sends.
pub const GET_TAIL: &str = " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// A keep-alive GET of `path`.
pub fn get(path: &str) -> String {
    format!("GET {path}{GET_TAIL}")
}

/// One response, its body borrowed from the bytes it was parsed from: the
/// generator checks it where it lies and copies nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
}

impl Response<'_> {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    BadStatusLine,
    BadHeader,
    /// No `Content-Length` (or chunked): the body's end cannot be found.
    NoLength,
    TooLarge,
}

/// Parses one response from the front of `buf`: `Ok(None)` until it is all
/// there, then the response and how many bytes it took.
pub fn parse_response(buf: &[u8]) -> Result<Option<(Response<'_>, usize)>, HttpError> {
    let Some(head_end) = find(buf, b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD {
            Err(HttpError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| HttpError::BadHeader)?;
    let mut lines = head.split("\r\n");
    let status = parse_status_line(lines.next().unwrap_or(""))?;
    let mut length: Option<usize> = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(HttpError::BadHeader)?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| HttpError::BadHeader)?;
            if length.is_some_and(|old| old != n) {
                return Err(HttpError::BadHeader);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(HttpError::NoLength);
        }
    }
    // Responses to GET that have no body by definition.
    let length = match (status, length) {
        (100..=199 | 204 | 304, _) => 0,
        (_, Some(n)) => n,
        (_, None) => return Err(HttpError::NoLength),
    };
    if length > MAX_BODY {
        return Err(HttpError::TooLarge);
    }
    let body_start = head_end + 4;
    if buf.len() < body_start + length {
        return Ok(None);
    }
    let body = &buf[body_start..body_start + length];
    Ok(Some((Response { status, body }, body_start + length)))
}

/// `HTTP/1.x NNN reason`; the reason may be empty or missing.
fn parse_status_line(line: &str) -> Result<u16, HttpError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") || code.len() != 3 {
        return Err(HttpError::BadStatusLine);
    }
    code.parse().map_err(|_| HttpError::BadStatusLine)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nPONG\n\
HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nCONTENT-LENGTH:  29 \r\n\r\nOK DB 7 value=00000000000007\n\
HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9\r\nConnection: close\r\n\r\nERR busy\n\
HTTP/1.1 204 No Content\r\n\r\n";

    /// Feeds `chunks` in order, taking every whole response as soon as it
    /// can, as the load generator does.
    fn feed(chunks: &[&[u8]]) -> Result<Vec<(u16, Vec<u8>)>, HttpError> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some((response, used)) = parse_response(&buf)? {
                out.push((response.status, response.body.to_vec()));
                buf.drain(..used);
            }
        }
        assert!(buf.is_empty(), "bytes left over: {buf:?}");
        Ok(out)
    }

    #[test]
    fn a_stream_parses_the_same_split_at_every_position() {
        let whole = feed(&[STREAM]).expect("parses");
        assert_eq!(
            whole.iter().map(|r| r.0).collect::<Vec<_>>(),
            [200, 200, 503, 204]
        );
        assert_eq!(whole[0].1, b"PONG\n");
        assert_eq!(whole[1].1, b"OK DB 7 value=00000000000007\n");
        let ok = |status| Response { status, body: b"" }.is_success();
        assert!(ok(200) && !ok(503));
        for split in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(split);
            assert_eq!(feed(&[a, b]).expect("parses"), whole, "split at {split}");
        }
        // And a byte at a time.
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(feed(&bytes).expect("parses"), whole);
    }

    #[test]
    fn a_response_without_its_length_is_an_error() {
        let cases: [(&[u8], HttpError); 5] = [
            (b"HTTP/1.1 200 OK\r\n\r\nPONG\n", HttpError::NoLength),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                HttpError::NoLength,
            ),
            (b"HTTP/1.1 20 OK\r\n\r\n", HttpError::BadStatusLine),
            (b"PONG\n\r\n\r\n", HttpError::BadStatusLine),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                HttpError::BadHeader,
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(parse_response(bytes), Err(error), "{bytes:?}");
        }
    }

    #[test]
    fn an_endless_head_is_cut_off() {
        let mut head = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        head.resize(MAX_HEAD + 1, b'a');
        assert_eq!(parse_response(&head), Err(HttpError::TooLarge));
    }

    #[test]
    fn a_request_is_a_keep_alive_get() {
        assert_eq!(
            get("/db/3?delay_ms=10"),
            "GET /db/3?delay_ms=10 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        );
    }
}
