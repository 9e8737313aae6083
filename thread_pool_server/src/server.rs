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

use std::collections::HashMap;
use std::io::{self, ErrorKind, Write};
use std::net::{Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use shared::cli::CommonConfig;
use shared::image::ImageScratch;
use shared::protocol::dialect;
use shared::stats::{Counters, Lateness};

use crate::connection;
use crate::pool::WorkerPool;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// Worker threads; one per core by default.
    pub workers: usize,
    /// Accepted connections that may wait for a free worker.
    pub queue: usize,
}

impl Config {
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:7878";
    pub const DEFAULT_QUEUE: usize = 64;

    /// Every default, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Config {
            common: CommonConfig::new(addr),
            workers: num_cpus::get(),
            queue: Self::DEFAULT_QUEUE,
        }
    }
}

/// A connection on its way to a worker.
pub(crate) struct Connection {
    id: u64,
    stream: TcpStream,
}

/// What the acceptor, the workers and the handle share.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) counters: Counters,
    /// How late each worker's `thread::sleep` for a database query returns:
    /// the sleeping thread's clock, to set beside the event loop's timers.
    pub(crate) lateness: Lateness,
    /// A second handle on every open connection, so `shutdown` can end the
    /// blocking reads of the workers serving them.
    open: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
    stopping: AtomicBool,
    /// The pool's count of waiting connections, for `STATS`; set once the
    /// pool exists (the pool's workers need `Shared` first).
    queued: OnceLock<Arc<AtomicUsize>>,
}

impl Shared {
    pub(crate) fn queued(&self) -> usize {
        self.queued
            .get()
            .map_or(0, |queued| queued.load(Ordering::Relaxed))
    }
}

/// A running server. Dropping it without `shutdown` leaves it running until
/// the process ends.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: JoinHandle<WorkerPool<Connection>>,
}

/// Binds, starts the workers and the acceptor, and returns at once.
pub fn start(config: Config) -> io::Result<ServerHandle> {
    let listener = shared::listen::bind(config.common.addr)?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        config: config.clone(),
        counters: Counters::default(),
        lateness: Lateness::default(),
        open: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        stopping: AtomicBool::new(false),
        queued: OnceLock::new(),
    });
    let worker_shared = Arc::clone(&shared);
    let pool = WorkerPool::start(
        "pool-worker",
        config.workers,
        config.queue,
        move |worker, scratch: &mut ImageScratch, conn: Connection| {
            connection::serve(&conn.stream, &worker_shared, scratch, worker);
            worker_shared.forget(conn.id);
        },
    )?;
    let _ = shared.queued.set(pool.queued_counter());
    let acceptor_shared = Arc::clone(&shared);
    let acceptor = thread::Builder::new()
        .name("acceptor".into())
        .spawn(move || accept_loop(&listener, &acceptor_shared, pool))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start the acceptor thread: {e}")))?;
    Ok(ServerHandle {
        addr,
        shared,
        acceptor,
    })
}

fn accept_loop(
    listener: &TcpListener,
    shared: &Shared,
    pool: WorkerPool<Connection>,
) -> WorkerPool<Connection> {
    // A connection accepted but not yet registered, for lack of a spare
    // descriptor for its second handle. It waits here rather than being
    // dropped, and nothing more is accepted until it is registered.
    let mut in_hand: Option<TcpStream> = None;
    loop {
        let accepted = match in_hand.take() {
            Some(stream) => Ok(stream),
            None => listener.accept().map(|(stream, _peer)| stream),
        };
        let stream = match accepted {
            Ok(stream) => stream,
            // The peer gave up while waiting in the backlog: nothing to do.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                ) =>
            {
                continue
            }
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
        let conn = match shared.remember(stream) {
            Ok(conn) => conn,
            Err(stream) => {
                in_hand = Some(stream);
                if pause(shared) {
                    return pool;
                }
                continue;
            }
        };
        if let Err(conn) = pool.try_submit(conn) {
            turn_away(&conn.stream);
            Counters::add(&shared.counters.busy_rejections, 1);
            shared.forget(conn.id);
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

impl Shared {
    /// Registers a new connection, or hands it back if its second handle
    /// cannot be made (no descriptor free).
    fn remember(&self, stream: TcpStream) -> Result<Connection, TcpStream> {
        let Ok(spare) = stream.try_clone() else {
            return Err(stream);
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.open).insert(id, spare);
        Counters::add(&self.counters.open_connections, 1);
        Ok(Connection { id, stream })
    }

    fn forget(&self, id: u64) {
        if lock(&self.open).remove(&id).is_some() {
            Counters::sub(&self.counters.open_connections, 1);
        }
    }
}

/// Nothing is ever left half-updated under these locks, so a poisoned one
/// is still good to use.
fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets every worker answer what its connection has
    /// already sent, joins every thread, and returns how many responses were
    /// sent during the drain.
    pub fn shutdown(self) -> u64 {
        let answered_before = Counters::get(&self.shared.counters.requests_answered);
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor. If even this connect fails (no descriptors
        // left), the acceptor's error path also checks the flag.
        let _ = TcpStream::connect_timeout(&wake_address(self.addr), Duration::from_secs(1));
        let pool = match self.acceptor.join() {
            Ok(pool) => pool,
            Err(_) => return 0, // the acceptor cannot panic; nothing to drain
        };
        for stream in lock(&self.shared.open).values() {
            let _ = stream.shutdown(Shutdown::Read);
        }
        pool.shutdown();
        Counters::get(&self.shared.counters.requests_answered) - answered_before
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

    fn shutdown(self) -> u64 {
        ServerHandle::shutdown(self)
    }
}
