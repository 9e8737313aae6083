//! Listening with a backlog deep enough for a burst of clients.
//!
//! Between the handshake and `accept`, the kernel keeps each new connection
//! in the listening socket's queue, and the backlog given to `listen` caps
//! that queue. When it is full, Linux drops the next handshake, and that
//! client tries again only after 1 s (then 3 s, 7 s...): a client arriving
//! in a burst waits a second while the server may be idle a millisecond
//! later. So the backlog is the one number that decides whether thousands of
//! clients arriving at once are a 0.3 s event or a 1-4 s one
//! (`tests/burst.rs`).
//!
//! std's `TcpListener::bind` listens with a backlog of 128, and so does
//! mio's (and so tokio's `TcpListener::bind`, which is mio's); neither takes
//! a backlog. So [`bind`] lets std do everything (`SO_REUSEADDR`, IPv4 or
//! IPv6, close-on-exec, its errors), then calls `listen` once more with
//! [`BACKLOG`]: on a socket that is already listening, Linux changes the
//! backlog and nothing else. Between the two calls (microseconds, before
//! the server has said where it listens) the queue is 128 deep.
//!
//! ## Why 4096
//! - Common choices: nginx and Node.js ask for 511, tokio's docs pass 1024
//!   to `TcpSocket::listen`, Go asks for whatever `net.core.somaxconn` is.
//!   Whatever is asked, the kernel caps it at `net.core.somaxconn`, 4096 by
//!   default since Linux 5.4: on an untuned machine this is the deepest
//!   queue there is, and a fixed number keeps a machine tuned higher the
//!   same.
//! - Only a queue as deep as the burst is sure to drop nothing: while the
//!   connects pour in, nothing promises the acceptor a core, and if it gets
//!   none the queue alone holds them all. The bursts here are 3,000 clients
//!   (the test) to 5,000 (`loadgen --connect burst`). Measured with the
//!   test beside three busy processes: 511 let 263 to 1,099 clients of the
//!   single loop wait past a second in 5 runs of 6, 4096 none (the table is
//!   in docs/ARCHITECTURE.md).
//! - A deep queue hides no overload here: both servers accept as fast as
//!   connections come and refuse for themselves, with `ERR busy`, past
//!   `--queue` or `--max-connections`. The queue only holds what arrives
//!   between two turns of the acceptor.
//! - The cost: nothing is reserved in advance; a queued connection is a
//!   whole kernel socket, holding whatever its client sent, and there are
//!   at most 4096 of them.

use std::io;
use std::net::{SocketAddr, TcpListener};

/// The listen backlog of both servers (see the module docs for why).
pub const BACKLOG: i32 = 4096;

/// Binds `addr` and listens with [`BACKLOG`] (capped by the kernel at
/// `net.core.somaxconn`). The error names the address, in one line.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listening = TcpListener::bind(addr).and_then(|listener| {
        deepen_backlog(&listener)?;
        Ok(listener)
    });
    listening.map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

#[cfg(unix)]
fn deepen_backlog(listener: &TcpListener) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `listen` takes two integers and touches no memory of ours; the
    // descriptor belongs to `listener`, which is borrowed, so it stays open
    // for the whole call.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), BACKLOG) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Elsewhere, std's own backlog stays.
#[cfg(not(unix))]
fn deepen_backlog(_listener: &TcpListener) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_ipv4_and_ipv6_loopback_on_port_0() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let addr: SocketAddr = addr.parse().unwrap();
            match bind(addr) {
                Ok(listener) => assert_eq!(listener.local_addr().unwrap().ip(), addr.ip()),
                // A machine without IPv6 on loopback cannot bind `[::1]`.
                Err(e) if addr.is_ipv6() && e.kind() == io::ErrorKind::AddrNotAvailable => {}
                Err(e) => panic!("{addr}: {e}"),
            }
        }
    }

    #[test]
    fn an_address_in_use_says_which_in_one_line() {
        let taken = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = taken.local_addr().unwrap();
        let error = bind(addr).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse);
        let message = error.to_string();
        assert!(
            message.starts_with(&format!("cannot listen on {addr}: ")),
            "{message}"
        );
        assert!(!message.contains('\n'), "{message}");
    }
}
