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

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use shared::image::ImageScratch;
use shared::linger;
use shared::panics::{answer_caught, Answerer};
use shared::protocol::{response, Incoming, Request, RequestReader, Work};
use shared::socket::try_now;
use shared::stats::{stats_line, CloseReason, Counters};

use crate::live::WorkerState;
use crate::state::Shared;

/// Past this much unsent output, write before answering more.
const FLUSH_AT: usize = 64 * 1024;

/// What to do after a line has been answered.
enum Next {
    KeepServing,
    Close,
}

/// One connection as its worker serves it.
struct Connection<'a> {
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
/// line limit, then closes it and counts why. Errors end only this
/// connection, so there is nothing to report back to the caller.
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
    let mut conn = Connection {
        stream,
        shared,
        scratch,
        worker,
        out: Vec::new(),
        idle_deadline: Instant::now() + idle_timeout,
    };
    let mut reader = RequestReader::new();
    let served = conn.serve_requests(&mut reader);
    let closed = stream
        .set_nonblocking(true)
        .and_then(|()| linger::close(stream, TcpStream::shutdown));
    let reason = served.err().unwrap_or(CloseReason::Finished);
    shared.counters.count_close(reason.then_closed(closed));
}

impl Connection<'_> {
    /// Serves until the connection ends: `Ok` when it finished, else why.
    fn serve_requests(&mut self, reader: &mut RequestReader) -> Result<(), CloseReason> {
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
                return Err(CloseReason::TimedOut);
            }
            socket
                .set_read_timeout(Some(self.idle_deadline - now))
                .map_err(|_| CloseReason::Failed)?;
            self.show(WorkerState::Reading);
            match try_now(|| reader.read_from(&mut socket)) {
                Ok(Some(0)) => {
                    // The client half-closed: its last line may lack a `\n`.
                    if let Some(item) = reader.finish() {
                        self.answer(item)?;
                    }
                    return self.flush();
                }
                // Read, or the read timeout passed: the deadline check
                // above decides.
                Ok(_) => {}
                Err(_) => return Err(CloseReason::Failed),
            }
        }
    }

    fn answer(&mut self, item: Incoming) -> Result<Next, CloseReason> {
        let text = match item.work {
            Work::Answered(text) => text,
            Work::Serve(request) => {
                if let Request::Db { .. } = request {
                    // Earlier answers go out before this worker blocks.
                    self.flush()?;
                }
                answer_caught(self, |conn| conn.run(request))
            }
        };
        let next = if item.reply.ends_connection() {
            Next::Close
        } else {
            Next::KeepServing
        };
        item.reply.encode(&text, &mut self.out);
        self.shared.counters.requests_answered.add(1);
        self.idle_deadline = Instant::now() + self.shared.config.common.idle_timeout;
        if self.out.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(next)
    }

    fn run(&mut self, request: Request) -> String {
        match request {
            Request::Ping => response::pong(),
            Request::Help => response::help(),
            Request::Quit => response::bye(),
            Request::Stats => stats_line(
                std::iter::once(&self.shared.counters),
                std::iter::once(&self.shared.lateness),
                &[
                    ("workers", self.shared.config.workers as u64),
                    ("queued", self.shared.queued() as u64),
                ],
                &[],
            ),
            Request::Image(job) => {
                self.show(WorkerState::Computing);
                response::run_image(self.scratch, &job, Some(self.worker))
            }
            Request::Db { id, delay_ms } => {
                let delay = delay_ms.map_or(
                    self.shared.config.common.default_db_delay,
                    Duration::from_millis,
                );
                // A blocking database driver does exactly this: the thread
                // waits, and serves no one else meanwhile.
                let due = Instant::now() + delay;
                self.show(WorkerState::AsleepInDb);
                thread::sleep(delay);
                self.shared.lateness.record(due, Instant::now());
                response::db(id, shared::db::value(id))
            }
        }
    }

    /// What this worker is doing, for the live view: one relaxed store.
    fn show(&self, state: WorkerState) {
        self.shared.worker_states.set(self.worker, state);
    }

    /// Writes what is waiting. With a write timeout set, a client that stops
    /// reading makes this give up after `--write-timeout-secs` instead of
    /// blocking the worker for ever: counted as an idle close.
    fn flush(&mut self) -> Result<(), CloseReason> {
        if !self.out.is_empty() {
            self.show(WorkerState::Writing);
            let mut socket = self.stream;
            match try_now(|| socket.write_all(&self.out)) {
                Ok(Some(())) => self.out.clear(),
                Ok(None) => return Err(CloseReason::TimedOut),
                Err(_) => return Err(CloseReason::Failed),
            }
        }
        Ok(())
    }
}

/// A worker's panic is counted in the server's counters.
impl Answerer for Connection<'_> {
    fn scratch(&mut self) -> &mut ImageScratch {
        self.scratch
    }

    fn counters(&self) -> &Counters {
        &self.shared.counters
    }
}
