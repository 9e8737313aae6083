//! Closing a connection without losing its last answer.
//!
//! When a server closes a socket that still holds bytes it never read (a
//! client pipelined more requests after `QUIT`, or sent a line too long), the
//! kernel does not send a polite FIN: it sends a reset, and may throw away
//! answers still waiting in the send buffer. The client then sees
//! "connection reset" instead of its `BYE`.
//!
//! So before closing, a server shuts down its sending half (the FIN goes
//! out after every answer already written) and reads and discards what the
//! client has already sent. Bytes still on their way can still cause a
//! reset; waiting for them would hold a worker or a slot for an unbounded
//! time, which is the worse trade.

use std::io::{ErrorKind, Read, Write};

use crate::protocol::dialect;

/// At most this much unread input is discarded before giving up.
const DISCARD_LIMIT: usize = 1024 * 1024;

/// Reads and drops what has already arrived. `socket` must be
/// non-blocking: this never waits.
pub fn discard_unread(mut socket: impl Read) {
    let mut sink = [0u8; 16 * 1024];
    let mut discarded = 0;
    while discarded < DISCARD_LIMIT {
        match socket.read(&mut sink) {
            Ok(0) => return,
            Ok(n) => discarded += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return, // WouldBlock: nothing more has arrived
        }
    }
}

/// Refuses a new connection the server has no room for: one answer in the
/// client's dialect, chosen from whatever it has already sent (`ERR busy`,
/// or a 503 to an HTTP request line; see `dialect::busy_answer`), then its
/// unread input dropped so that closing sends a FIN, not a reset that could
/// wipe the answer out. `socket` must be non-blocking: this never waits,
/// and a new socket's send buffer has room for the answer.
pub fn refuse(mut socket: impl Read + Write) {
    let mut first = [0u8; 1024];
    let got = socket.read(&mut first).unwrap_or(0);
    let _ = socket.write_all(&dialect::busy_answer(&first[..got]));
    discard_unread(socket);
}
