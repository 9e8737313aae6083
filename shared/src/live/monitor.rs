//! The monitoring thread: one listener, one request per connection, one
//! connection at a time.
//!
//! One thread is enough: each answer is a copy of the page or a JSON object
//! built from a few hundred atomics, so it takes microseconds, and a page
//! asks once a second. Serving one connection at a time could let a client
//! that connects and sends nothing hold everyone else up (browsers open
//! such speculative connections), so a connection gets [`READ_LIMIT`] to
//! send its request head and is then answered or dropped, and every answer
//! closes the connection: the thread never waits long on anyone.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::protocol::http::monitor_answer;
use crate::socket::lost_arrival;

/// How long a connection may take to send its request head.
const READ_LIMIT: Duration = Duration::from_millis(500);
/// A request head larger than this is answered from what has arrived.
const HEAD_LIMIT: usize = 8 * 1024;

/// A running monitoring thread; [`Monitor::stop`] ends it.
pub struct Monitor {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Monitor {
    /// Binds `addr` and serves `/live` and `/stats.json` (made by
    /// `stats_json` at each request) on a thread named `monitor`.
    pub fn start(
        addr: SocketAddr,
        stats_json: impl Fn() -> String + Send + 'static,
    ) -> io::Result<Monitor> {
        let listener = TcpListener::bind(addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {addr} (--stats-addr): {e}"),
            )
        })?;
        let addr = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stopping);
        let thread = thread::Builder::new()
            .name("monitor".into())
            .spawn(move || serve(&listener, &flag, &stats_json))
            .map_err(|e| {
                io::Error::new(e.kind(), format!("cannot start the monitor thread: {e}"))
            })?;
        Ok(Monitor {
            addr,
            stopping,
            thread,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the flag and connects once, so the blocked `accept` returns and
    /// the thread sees it (the pool's acceptor stops the same way).
    pub fn stop(self) {
        self.stopping.store(true, Ordering::SeqCst);
        let wake = match self.addr {
            SocketAddr::V4(v4) if v4.ip().is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], v4.port()))
            }
            SocketAddr::V6(v6) if v6.ip().is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, v6.port()))
            }
            other => other,
        };
        if TcpStream::connect_timeout(&wake, Duration::from_secs(1)).is_ok() {
            let _ = self.thread.join();
        }
        // Otherwise (no descriptor left) the thread is left to end with
        // the process rather than joined for ever.
    }
}

fn serve(listener: &TcpListener, stopping: &AtomicBool, stats_json: &dyn Fn() -> String) {
    loop {
        let stream = match listener.accept() {
            Ok((stream, _peer)) => stream,
            Err(e) if lost_arrival(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                // Out of descriptors, most likely: let some close.
                thread::sleep(Duration::from_millis(50));
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                continue;
            }
        };
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        // Errors end only this connection: the page asks again next second.
        let _ = answer(stream, stats_json);
    }
}

fn answer(mut stream: TcpStream, stats_json: &dyn Fn() -> String) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_LIMIT))?;
    stream.set_write_timeout(Some(READ_LIMIT))?;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < HEAD_LIMIT {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // Timed out: a speculative connection that asked nothing.
            Err(_) if head.is_empty() => return Ok(()),
            Err(_) => break,
        }
    }
    let response = monitor_answer(&head, super::PAGE, stats_json);
    stream.write_all(&response)?;
    // Shutting the write half sends FIN after the response, so the
    // browser reads it whole before the close.
    stream.shutdown(Shutdown::Write)
}
