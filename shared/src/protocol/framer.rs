//! Incremental line framing: TCP is a byte stream, not a message stream.
//!
//! One `read` may return half a line, many lines, or the end of one line and
//! the start of the next; a line may arrive one byte at a time. The framer
//! keeps whatever has arrived but not yet been handed out, and hands out one
//! complete line at a time.
//!
//! Its memory is bounded by design. It only holds *unparsed* bytes: the
//! caller reads more only after [`LineFramer::next_line`] has returned
//! `None`, which leaves at most one partial line behind, and a partial line
//! longer than the limit is reported at once instead of waiting for a `\n`
//! that may never come. So a framer never holds more than one read's worth
//! of bytes plus [`MAX_LINE`] + 1.

use std::cell::RefCell;
use std::io::{self, Read};

use crate::limits::MAX_LINE;

/// How much a single read asks the socket for.
pub const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Every read of a thread goes through this one buffer, zeroed once
    /// when the thread first reads: a fresh `[0u8; READ_CHUNK]` per read
    /// would spend a 16 KiB memset on every request.
    /// Made by `vec!`, which asks the allocator for zeroed memory at once:
    /// `Box::new([0; N])` may build the array on the stack first and copy
    /// it, touching 16 KiB of stack in every thread for nothing.
    static READ_BUFFER: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK].into_boxed_slice());
}

/// The one framing error: a line longer than [`MAX_LINE`] bytes. After it
/// the connection is answered `ERR line too long` and closed, because there
/// is no telling where the next request would start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

#[derive(Debug, Default)]
pub struct LineFramer {
    /// Bytes received and not yet handed out start at `buf[consumed]`.
    buf: Vec<u8>,
    consumed: usize,
    /// Set after a too-long line: nothing after it is framed.
    failed: bool,
}

impl LineFramer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes (dropped after a too-long line).
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Reads once from `source` and keeps what arrived. Returns what `read`
    /// returned: 0 means end of stream.
    ///
    /// The read goes into a buffer of the thread's (`READ_BUFFER`) and only
    /// the bytes that arrived are copied in, so the framer's own buffer grows with the
    /// data, not with the read size: a connection that sends 5-byte
    /// requests never holds a 16 KiB buffer.
    pub fn read_from(&mut self, source: &mut impl Read) -> io::Result<usize> {
        READ_BUFFER.with(|chunk| {
            let mut chunk = chunk.borrow_mut();
            let got = source.read(&mut chunk[..])?;
            self.push(&chunk[..got]);
            Ok(got)
        })
    }

    /// The next complete line, without its `\n` or `\r\n`; `None` when only
    /// a partial line (or nothing) is left.
    pub fn next_line(&mut self) -> Option<Result<&[u8], LineTooLong>> {
        if self.failed {
            return None;
        }
        let pending = &self.buf[self.consumed..];
        match pending.iter().position(|&b| b == b'\n') {
            Some(newline) => {
                let start = self.consumed;
                self.consumed += newline + 1;
                self.checked_line(start, start + newline)
            }
            None => {
                if partial_line_cannot_fit(pending) {
                    return self.fail();
                }
                // Everything before the partial line has been handed out:
                // drop it now, so the buffer never grows with consumed bytes.
                self.buf.drain(..self.consumed);
                self.consumed = 0;
                None
            }
        }
    }

    /// At end of stream: the last line, if the client sent one without a
    /// final `\n`. The contract counts it as a request.
    pub fn finish(&mut self) -> Option<Result<&[u8], LineTooLong>> {
        if self.failed || self.consumed == self.buf.len() {
            return None;
        }
        let (start, end) = (self.consumed, self.buf.len());
        self.consumed = end;
        self.checked_line(start, end)
    }

    /// Gives back buffer memory beyond what the partial line needs. An event
    /// loop calls this when a connection goes quiet, so thousands of idle
    /// connections do not each keep a read-sized buffer.
    pub fn shrink(&mut self) {
        self.buf.drain(..self.consumed);
        self.consumed = 0;
        self.buf.shrink_to_fit();
    }

    /// Bytes held that have not been handed out yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.consumed
    }

    fn checked_line(&mut self, start: usize, end: usize) -> Option<Result<&[u8], LineTooLong>> {
        let end = if end > start && self.buf[end - 1] == b'\r' {
            end - 1
        } else {
            end
        };
        if end - start > MAX_LINE {
            return self.fail();
        }
        Some(Ok(&self.buf[start..end]))
    }

    /// A line too long: nothing after it is framed, so nothing is kept.
    fn fail(&mut self) -> Option<Result<&[u8], LineTooLong>> {
        self.failed = true;
        self.buf = Vec::new();
        self.consumed = 0;
        Some(Err(LineTooLong))
    }
}

/// True when no `\n` can still arrive in time: the line already has more
/// than [`MAX_LINE`] bytes, not counting a `\r` that a `\n` may follow.
fn partial_line_cannot_fit(partial: &[u8]) -> bool {
    match partial {
        [body @ .., b'\r'] => body.len() > MAX_LINE,
        _ => partial.len() > MAX_LINE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames `input` cut into pieces of `piece` bytes, then ends the stream.
    fn frame(input: &[u8], piece: usize) -> Vec<Result<Vec<u8>, LineTooLong>> {
        let mut framer = LineFramer::new();
        let mut lines = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            framer.push(chunk);
            while let Some(line) = framer.next_line() {
                lines.push(line.map(<[u8]>::to_vec));
            }
            assert!(framer.buffered() <= MAX_LINE + 1 + piece);
        }
        if let Some(line) = framer.finish() {
            lines.push(line.map(<[u8]>::to_vec));
        }
        lines
    }

    fn ok(lines: &[&str]) -> Vec<Result<Vec<u8>, LineTooLong>> {
        lines.iter().map(|l| Ok(l.as_bytes().to_vec())).collect()
    }

    #[test]
    fn splits_lines_whatever_the_read_sizes() {
        let input = b"PING\r\nDB 1\n\nIMAGE blur 2 2\nlast";
        for piece in 1..input.len() + 1 {
            assert_eq!(
                frame(input, piece),
                ok(&["PING", "DB 1", "", "IMAGE blur 2 2", "last"])
            );
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted_with_either_terminator() {
        let line = "x".repeat(MAX_LINE);
        for ending in ["\n", "\r\n"] {
            let input = format!("{line}{ending}PING\n");
            for piece in [1, 7, 4096] {
                assert_eq!(frame(input.as_bytes(), piece), ok(&[&line, "PING"]));
            }
        }
    }

    #[test]
    fn a_line_one_byte_over_is_rejected_before_its_newline_arrives() {
        let mut framer = LineFramer::new();
        framer.push(b"PING\n");
        framer.push(&[b'x'; MAX_LINE + 1]);
        assert_eq!(framer.next_line(), Some(Ok(&b"PING"[..])));
        assert_eq!(framer.next_line(), Some(Err(LineTooLong)));
        assert_eq!(framer.next_line(), None);
        assert_eq!(framer.finish(), None);
    }

    #[test]
    fn a_trailing_cr_alone_does_not_make_a_full_line_too_long() {
        let mut framer = LineFramer::new();
        framer.push(&[b'x'; MAX_LINE]);
        framer.push(b"\r");
        assert_eq!(framer.next_line(), None);
        framer.push(b"\n");
        assert_eq!(
            framer.next_line().map(|l| l.map(<[u8]>::len)),
            Some(Ok(MAX_LINE))
        );
    }

    #[test]
    fn an_unterminated_final_line_is_still_limited() {
        let mut framer = LineFramer::new();
        framer.push(&[b'x'; MAX_LINE]);
        assert_eq!(framer.next_line(), None);
        assert_eq!(
            framer.finish().map(|l| l.map(<[u8]>::len)),
            Some(Ok(MAX_LINE))
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_just_bytes() {
        assert_eq!(
            frame(b"\xff\xfe\n\x80", 1),
            vec![Ok(vec![0xff, 0xfe]), Ok(vec![0x80])]
        );
    }
}
