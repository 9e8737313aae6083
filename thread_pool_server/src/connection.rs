//! One connection, served by one worker from start to end with blocking
//! calls: read, answer, write, repeat.
//!
//! This is the easy way to write a server, and that is its point: the code
//! reads top to bottom in the order things happen, and a slow step (a
//! database wait) is just a call that blocks. The price is that the worker
//! can do nothing else meanwhile; with N workers, at most N clients are
//! being served, whatever they are waiting for.
//!
//! Responses to pipelined requests are collected in `out` and written in one
//! go when the worker is about to block (on a read or a database wait), so
//! 500 requests in one packet cost one write, not 500, and come back in
//! order because they are answered in order.

use std::io::{self, ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread;
use std::time::{Duration, Instant};

use shared::image::ImageScratch;
use shared::protocol::{response, Incoming, Request, RequestReader, Work};
use shared::stats::{Counters, Lateness};

use crate::server::Shared;

/// Past this much unsent output, write before answering more.
const FLUSH_AT: usize = 64 * 1024;

/// What to do after a line has been answered.
enum Next {
    KeepServing,
    Close,
}

struct Session<'a> {
    stream: &'a TcpStream,
    shared: &'a Shared,
    scratch: &'a mut ImageScratch,
    worker: usize,
    out: Vec<u8>,
    /// When the connection counts as idle: reset by every complete request,
    /// *not* by partial bytes, so a client that trickles a line one byte at
    /// a time is closed as surely as one that sends nothing.
    idle_deadline: Instant,
}

/// Serves `stream` until the client leaves, quits, idles out, or breaks the
/// line limit. Errors end only this connection, so there is nothing to
/// report back to the caller.
pub(crate) fn serve(
    stream: &TcpStream,
    shared: &Shared,
    scratch: &mut ImageScratch,
    worker: usize,
) {
    let idle_timeout = shared.config.common.idle_timeout;
    if stream
        .set_write_timeout(Some(shared.config.common.write_timeout))
        .is_err()
    {
        return;
    }
    let mut session = Session {
        stream,
        shared,
        scratch,
        worker,
        out: Vec::new(),
        idle_deadline: Instant::now() + idle_timeout,
    };
    let mut reader = RequestReader::new();
    let _ = session.serve_requests(&mut reader);
    // Close so the last answers arrive: FIN after them, unread input dropped.
    let _ = stream.shutdown(Shutdown::Write);
    if stream.set_nonblocking(true).is_ok() {
        shared::linger::discard_unread(stream);
    }
}

impl Session<'_> {
    fn serve_requests(&mut self, reader: &mut RequestReader) -> io::Result<()> {
        let mut socket = self.stream;
        loop {
            while let Some(item) = reader.next() {
                if let Next::Close = self.answer(item)? {
                    return self.flush();
                }
            }
            self.flush()?;
            let now = Instant::now();
            if now >= self.idle_deadline {
                Counters::add(&self.shared.counters.idle_closes, 1);
                return Ok(());
            }
            socket.set_read_timeout(Some(self.idle_deadline - now))?;
            match reader.read_from(&mut socket) {
                Ok(0) => {
                    // The client half-closed: its last line may lack a `\n`.
                    if let Some(item) = reader.finish() {
                        self.answer(item)?;
                    }
                    return self.flush();
                }
                Ok(_) => {}
                // A read timeout; the deadline check above decides.
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn answer(&mut self, item: Incoming) -> io::Result<Next> {
        let text = match item.work {
            Work::Answered(text) => text,
            Work::Serve(request) => self.run_caught(request)?,
        };
        let next = if item.reply.ends_connection() {
            Next::Close
        } else {
            Next::KeepServing
        };
        item.reply.encode(&text, &mut self.out);
        Counters::add(&self.shared.counters.requests_answered, 1);
        self.idle_deadline = Instant::now() + self.shared.config.common.idle_timeout;
        if self.out.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(next)
    }

    /// Runs a request; a panic (a bug) answers `ERR internal error` and is
    /// counted, and the worker goes on with the next request. The scratch
    /// buffers may be half-written, so they start afresh.
    fn run_caught(&mut self, request: Request) -> io::Result<String> {
        match catch_unwind(AssertUnwindSafe(|| self.run(request))) {
            Ok(answer) => answer,
            Err(_) => {
                *self.scratch = ImageScratch::new();
                Counters::add(&self.shared.counters.panics, 1);
                Ok(response::internal_error())
            }
        }
    }

    fn run(&mut self, request: Request) -> io::Result<String> {
        let counters = &self.shared.counters;
        Ok(match request {
            Request::Ping => response::pong(),
            Request::Help => response::help(),
            Request::Quit => response::bye(),
            Request::Stats => response::stats(
                Counters::get(&counters.open_connections),
                Counters::get(&counters.requests_answered),
                &[
                    ("workers", self.shared.config.workers as u64),
                    ("queued", self.shared.queued() as u64),
                    ("busy_rejections", Counters::get(&counters.busy_rejections)),
                    ("idle_closes", Counters::get(&counters.idle_closes)),
                    ("panics", Counters::get(&counters.panics)),
                    ("timer_late_p50_us", self.lateness(0.5)),
                    ("timer_late_p99_us", self.lateness(0.99)),
                ],
            ),
            Request::Image(job) => response::run_image(self.scratch, &job, Some(self.worker)),
            Request::Db { id, delay_ms } => {
                // Earlier answers go out before this worker blocks.
                self.flush()?;
                let delay = delay_ms.map_or(
                    self.shared.config.common.default_db_delay,
                    Duration::from_millis,
                );
                // A blocking database driver does exactly this: the thread
                // waits, and serves no one else meanwhile.
                let due = Instant::now() + delay;
                thread::sleep(delay);
                self.shared.lateness.record(due, Instant::now());
                response::db(id, shared::db::value(id))
            }
        })
    }

    /// A quantile of how late sleeps for database queries returned, in µs.
    fn lateness(&self, quantile: f64) -> u64 {
        let all = std::iter::once(&self.shared.lateness);
        Lateness::quantile_micros(all, quantile).unwrap_or(0)
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            // With a write timeout set, a client that stops reading makes
            // this fail after `--write-timeout-secs` instead of blocking the
            // worker for ever.
            self.stream.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }
}
