//! What a failed socket call means, decided in one place for both servers.
//!
//! Two errors are not failures at all. `WouldBlock` says "nothing now": a
//! non-blocking socket has nothing to give or no room to take (the event
//! loop waits for the next readiness event), or a blocking one's timeout
//! has passed (the pool's worker checks its deadlines). `Interrupted` says a
//! signal arrived during the call, which is simply made again. Anything
//! else (a reset, a broken pipe) means the connection is broken.

use std::io::{self, ErrorKind};

/// Makes `call`, again while a signal interrupts it. `Ok(None)`: nothing
/// can be done now (the socket would block, or its timeout passed);
/// an error only when the socket is broken. Inlined: the event loop makes
/// this call for every read and every write, and it must cost no more than
/// the `match` it stands for.
#[inline(always)]
pub fn try_now<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<Option<T>> {
    loop {
        match call() {
            Ok(done) => return Ok(Some(done)),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // A timeout is `WouldBlock` on Unix and `TimedOut` on Windows.
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
}

/// An `accept` error that costs only the connection it was for: the client
/// gave up while it waited in the backlog. The acceptor simply goes on.
/// Any other error (most likely no descriptor left) will repeat, and each
/// acceptor has its own way to wait it out.
pub fn lost_arrival(e: &io::Error) -> bool {
    e.kind() == ErrorKind::ConnectionAborted
}
