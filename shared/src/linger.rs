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

use std::io::{self, Read, Write};
use std::net::Shutdown;

use crate::protocol::dialect;
use crate::socket::try_now;

/// At most this much unread input is discarded before giving up.
const DISCARD_LIMIT: usize = 1024 * 1024;

/// Reads and drops what has already arrived. `socket` must be
/// non-blocking: this never waits.
fn discard_unread(mut socket: impl Read) {
    let mut sink = [0u8; 16 * 1024];
    let mut discarded = 0;
    while discarded < DISCARD_LIMIT {
        match try_now(|| socket.read(&mut sink)) {
            Ok(Some(n)) if n > 0 => discarded += n,
            _ => return, // the end, nothing more arrived yet, or an error
        }
    }
}

/// The end of every served connection, on both servers: the sending half
/// shut down (its FIN follows the last answer), then the unread input
/// dropped. `shutdown` is the socket type's own `shutdown` (std's and
/// mio's streams alike); `socket` must be non-blocking. The error is the
/// shutdown's: the peer had already reset the connection.
pub fn close<S>(socket: &S, shutdown: fn(&S, Shutdown) -> io::Result<()>) -> io::Result<()>
where
    for<'a> &'a S: Read,
{
    let shut = shutdown(socket, Shutdown::Write);
    discard_unread(socket);
    shut
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
