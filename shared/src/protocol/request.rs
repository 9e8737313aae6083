//! Turning one line into a request, or into the reason it is not one.
//!
//! Parsing works on bytes, not `str`: a line that is not UTF-8 is just a line
//! whose command word matches nothing, so it gets `ERR unknown command` like
//! any other typo and never crashes or closes the connection.
//!
//! Errors are fixed strings. Echoing the client's bytes back would mean
//! escaping arbitrary input into a text protocol, and a reason such as
//! "width must be 1 to 4096" already tells a person what to fix.

use std::fmt;

use crate::image::{ImageJob, ImageOp};
use crate::limits::{MAX_DB_DELAY_MS, MAX_IMAGE_SIDE};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Ping,
    Help,
    Image(ImageJob),
    /// `delay_ms` is `None` when the client left it to the server's default.
    Db {
        id: u64,
        delay_ms: Option<u64>,
    },
    Stats,
    Quit,
}

/// Why a line is not a request. Its `Display` is the text after `ERR `.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    UnknownCommand,
    /// A known command with wrong arguments; the text says what is expected.
    BadArguments(&'static str),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::UnknownCommand => f.write_str("unknown command"),
            RequestError::BadArguments(reason) => f.write_str(reason),
        }
    }
}

const IMAGE_USAGE: &str = "usage: IMAGE <blur|edge> <width> <height> [seed]";
const DB_USAGE: &str = "usage: DB <id> [delay_ms]";

/// Parses one line (already without its terminator). `None` for a blank
/// line, which is no request and gets no response.
pub fn parse_request(line: &[u8]) -> Option<Result<Request, RequestError>> {
    let mut words = line
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|word| !word.is_empty());
    let command = words.next()?;
    let args: Vec<&[u8]> = words.collect();
    Some(parse_command(command, &args))
}

/// Parses a command word and its arguments: the one place the arguments of
/// every command are checked, whichever dialect the words came from (the
/// HTTP routes build the same words from a path and a query).
pub(crate) fn parse_command(command: &[u8], args: &[&[u8]]) -> Result<Request, RequestError> {
    let is = |name: &str| command.eq_ignore_ascii_case(name.as_bytes());
    let no_args = |request: Request, usage: &'static str| {
        if args.is_empty() {
            Ok(request)
        } else {
            Err(RequestError::BadArguments(usage))
        }
    };
    if is("PING") {
        no_args(Request::Ping, "usage: PING (no arguments)")
    } else if is("HELP") {
        no_args(Request::Help, "usage: HELP (no arguments)")
    } else if is("STATS") {
        no_args(Request::Stats, "usage: STATS (no arguments)")
    } else if is("QUIT") {
        no_args(Request::Quit, "usage: QUIT (no arguments)")
    } else if is("IMAGE") {
        parse_image(args)
    } else if is("DB") {
        parse_db(args)
    } else {
        Err(RequestError::UnknownCommand)
    }
}

fn parse_image(args: &[&[u8]]) -> Result<Request, RequestError> {
    let [op, width, height, rest @ ..] = args else {
        return Err(RequestError::BadArguments(IMAGE_USAGE));
    };
    if rest.len() > 1 {
        return Err(RequestError::BadArguments(IMAGE_USAGE));
    }
    let op = if op.eq_ignore_ascii_case(b"blur") {
        ImageOp::Blur
    } else if op.eq_ignore_ascii_case(b"edge") {
        ImageOp::Edge
    } else {
        return Err(RequestError::BadArguments(
            "unknown image op (expected blur or edge)",
        ));
    };
    let side = |word: &[u8], name_error: &'static str| match parse_u64(word) {
        Some(n @ 1..) if n <= u64::from(MAX_IMAGE_SIDE) => Ok(n as u32),
        _ => Err(RequestError::BadArguments(name_error)),
    };
    let width = side(width, "width must be a number from 1 to 4096")?;
    let height = side(height, "height must be a number from 1 to 4096")?;
    let seed = match rest.first() {
        None => 0,
        Some(word) => parse_u64(word).ok_or(RequestError::BadArguments(
            "seed must be a number from 0 to 18446744073709551615",
        ))?,
    };
    Ok(Request::Image(ImageJob {
        op,
        width,
        height,
        seed,
    }))
}

fn parse_db(args: &[&[u8]]) -> Result<Request, RequestError> {
    let (id, delay) = match args {
        [id] => (id, None),
        [id, delay] => (id, Some(delay)),
        _ => return Err(RequestError::BadArguments(DB_USAGE)),
    };
    let id = parse_u64(id).ok_or(RequestError::BadArguments(
        "id must be a number from 0 to 18446744073709551615",
    ))?;
    let delay_ms = match delay {
        None => None,
        Some(word) => match parse_u64(word) {
            Some(ms) if ms <= MAX_DB_DELAY_MS => Some(ms),
            _ => {
                return Err(RequestError::BadArguments(
                    "delay_ms must be a number from 0 to 10000",
                ))
            }
        },
    };
    Ok(Request::Db { id, delay_ms })
}

/// Unsigned decimal digits only. `str::parse` would also take a leading
/// `+`, which the contract does not allow.
fn parse_u64(word: &[u8]) -> Option<u64> {
    if word.is_empty() || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    word.iter().try_fold(0u64, |n, &digit| {
        n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Option<Result<Request, RequestError>> {
        parse_request(line.as_bytes())
    }

    #[test]
    fn commands_are_case_insensitive_and_words_split_on_spaces_and_tabs() {
        assert_eq!(parse("  PiNg \t"), Some(Ok(Request::Ping)));
        assert_eq!(
            parse("db\t7 \t 0"),
            Some(Ok(Request::Db {
                id: 7,
                delay_ms: Some(0)
            }))
        );
        let job = ImageJob {
            op: ImageOp::Edge,
            width: 8,
            height: 9,
            seed: 0,
        };
        assert_eq!(parse("image EDGE 8 9"), Some(Ok(Request::Image(job))));
    }

    #[test]
    fn blank_lines_are_no_request() {
        assert_eq!(parse(""), None);
        assert_eq!(parse(" \t "), None);
    }

    #[test]
    fn numbers_are_plain_unsigned_decimal_within_range() {
        assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
        for bad in ["18446744073709551616", "+5", "-1", "1e3", "0x10", ""] {
            assert_eq!(parse_u64(bad.as_bytes()), None, "{bad}");
        }
        assert!(matches!(
            parse("DB 1 10001"),
            Some(Err(RequestError::BadArguments(_)))
        ));
        assert!(matches!(
            parse("IMAGE blur 4097 1"),
            Some(Err(RequestError::BadArguments(_)))
        ));
        assert!(matches!(
            parse("IMAGE blur 1 1 2 3"),
            Some(Err(RequestError::BadArguments(_)))
        ));
    }

    #[test]
    fn non_utf8_is_an_unknown_command_or_a_bad_argument() {
        assert_eq!(
            parse_request(b"\xff\xfe"),
            Some(Err(RequestError::UnknownCommand))
        );
        assert!(matches!(
            parse_request(b"DB \xff"),
            Some(Err(RequestError::BadArguments(_)))
        ));
    }
}
