//! The acceptor and the server's lifetime: start, serve, shut down.
//!
//! ```text
//!                       ┌──────────────────────── WorkerPool ─────────────┐
//!  accept() ──stream──▶ │ queue (--queue) ──▶ worker: serve(conn) to end  │
//!  acceptor thread      │                 ──▶ worker: serve(conn) to end  │
//!      │                └─────────────────────────────────────────────────┘
//!      └── queue full: write `ERR busy`, close
//! ```
//!
//! A whole connection is one job. That keeps a connection's requests in
//! order for free (one thread answers them one after another) and is the
//! classic thread-per-connection model with a cap on threads.
//!
//! Shutdown has to reach threads that are blocked in system calls:
//! - the acceptor is blocked in `accept`, so `shutdown` sets a flag and
//!   connects to the server itself: `accept` returns, the acceptor sees the
//!   flag and stops;
//! - workers are blocked in `read`, so `shutdown` shuts down the read half
//!   of every open connection: bytes already received are still read, then
//!   `read` returns end-of-stream, the worker answers what it has and closes.

use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use shared::image::ImageScratch;
use shared::live::Monitor;
use shared::protocol::dialect;
use shared::socket::{lost_arrival, try_now};
use worker_pool::WorkerPool;

use crate::config::Config;
use crate::connection;
use crate::live::{self, WorkerState};
use crate::state::{Accepted, Shared};

/// A running server. Dropping it without `shutdown` leaves it running until
/// the process ends.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: JoinHandle<WorkerPool<Accepted>>,
    /// The live view's own thread (`--stats-addr`): shared::live says why
    /// it is not served by the workers.
    monitor: Option<Monitor>,
}

/// Binds, starts the workers and the acceptor, and returns at once.
pub fn start(config: Config) -> io::Result<ServerHandle> {
    let listener = shared::listen::bind(config.common.addr)?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(config.clone()));
    let worker_shared = Arc::clone(&shared);
    let pool = WorkerPool::start(
        "pool-worker",
        config.workers,
        config.queue,
        move |worker, scratch: &mut ImageScratch, accepted: Accepted| {
            connection::serve(&accepted.stream, &worker_shared, scratch, worker);
            worker_shared.worker_states.set(worker, WorkerState::Idle);
            worker_shared.forget(accepted.id);
        },
    )?;
    shared.set_queued_counter(pool.queued_counter());
    let monitor = match config.common.stats_addr {
        Some(stats_addr) => {
            let watched = Arc::clone(&shared);
            Some(Monitor::start(stats_addr, move || {
                live::stats_json(&watched)
            })?)
        }
        None => None,
    };
    let acceptor_shared = Arc::clone(&shared);
    let acceptor = thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || accept_loop(&listener, &acceptor_shared, pool))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start the acceptor thread: {e}")))?;
    Ok(ServerHandle {
        addr,
        shared,
        acceptor,
        monitor,
    })
}

fn accept_loop(
    listener: &TcpListener,
    shared: &Shared,
    pool: WorkerPool<Accepted>,
) -> WorkerPool<Accepted> {
    // A connection accepted but not yet registered, for lack of a spare
    // descriptor for its second handle. It waits here rather than being
    // dropped, and nothing more is accepted until it is registered.
    let mut in_hand: Option<TcpStream> = None;
    loop {
        let accepted = match in_hand.take() {
            Some(stream) => Ok(Some(stream)),
            None => try_now(|| listener.accept().map(|(stream, _peer)| stream)),
        };
        let stream = match accepted {
            Ok(Some(stream)) => stream,
            Ok(None) => continue, // a blocking accept never says "not now"
            Err(e) if lost_arrival(&e) => continue,
            Err(_) => {
                // Most likely out of file descriptors: see `pause`.
                if pause(shared) {
                    return pool;
                }
                continue;
            }
        };
        if shared.stopping.load(Ordering::SeqCst) {
            return pool; // the wake-up connection from `shutdown`
        }
        let accepted = match shared.remember(stream) {
            Ok(accepted) => accepted,
            Err(stream) => {
                in_hand = Some(stream);
                if pause(shared) {
                    return pool;
                }
                continue;
            }
        };
        if let Err(accepted) = pool.try_submit(accepted) {
            turn_away(&accepted.stream);
            shared.counters.busy_rejections.add(1);
            shared.forget(accepted.id);
        }
    }
}

/// Every worker busy, queue full: say so, in the client's dialect if it has
/// already said enough to tell (an HTTP client gets a 503), and close. This
/// thread accepts for everyone, so it reads only what has arrived and never
/// waits for more.
fn turn_away(mut stream: &TcpStream) {
    match stream.set_nonblocking(true) {
        Ok(()) => shared::linger::refuse(stream),
        // Cannot read without the risk of waiting: say busy, unread.
        Err(_) => drop(stream.write_all(&dialect::busy_answer(&[]))),
    }
}

/// Out of descriptors. Retrying at once would fail again and spin; a short
/// sleep keeps this thread idle while connections close and free some.
/// Returns whether shutdown began meanwhile (its wake-up connection may not
/// have got through).
fn pause(shared: &Shared) -> bool {
    thread::sleep(Duration::from_millis(50));
    shared.stopping.load(Ordering::SeqCst)
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/live` is served, with `--stats-addr`.
    pub fn stats_addr(&self) -> Option<SocketAddr> {
        self.monitor.as_ref().map(Monitor::local_addr)
    }

    /// Stops accepting, lets every worker answer what its connection has
    /// already sent, joins every thread, and returns how many responses were
    /// sent during the drain.
    pub fn shutdown(self) -> u64 {
        if let Some(monitor) = self.monitor {
            monitor.stop();
        }
        let answered_before = self.shared.counters.requests_answered.get();
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor. If even this connect fails (no descriptors
        // left), the acceptor's error path also checks the flag.
        let _ = TcpStream::connect_timeout(&wake_address(self.addr), Duration::from_secs(1));
        let pool = match self.acceptor.join() {
            Ok(pool) => pool,
            Err(_) => return 0, // the acceptor cannot panic; nothing to drain
        };
        self.shared.stop_reading_all();
        pool.shutdown();
        self.shared.counters.requests_answered.get() - answered_before
    }
}

/// Where to connect to reach our own listener: a wildcard address is not
/// something one can connect to, so use loopback instead.
fn wake_address(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V4(v4) if v4.ip().is_unspecified() => (Ipv4Addr::LOCALHOST, v4.port()).into(),
        SocketAddr::V6(v6) if v6.ip().is_unspecified() => (Ipv6Addr::LOCALHOST, v6.port()).into(),
        other => other,
    }
}

impl shared::cli::RunningServer for ServerHandle {
    fn local_addr(&self) -> SocketAddr {
        ServerHandle::local_addr(self)
    }

    fn stats_addr(&self) -> Option<SocketAddr> {
        ServerHandle::stats_addr(self)
    }

    fn shutdown(self) -> u64 {
        ServerHandle::shutdown(self)
    }
}
