//! Asynchrony: one thread, one event loop, every socket non-blocking.
//!
//! Read in this order:
//! 1. `event_loop.rs`: the loop, accepting, timers firing, shutdown.
//! 2. `connection.rs`: one connection as a state machine that never waits,
//!    with in-order answers and backpressure.
//! 3. `timers.rs`: how "answer in 50 ms" becomes a heap entry, not a sleep.
//! 4. `slab.rs`: finding a connection from a token, safely across reuse.
//!
//! The model wins when the work is waiting: a client waiting on the fake
//! database is a heap entry and a few hundred bytes, so one thread keeps
//! thousands of queries in flight. It loses when the work is computing: the
//! one thread runs one image job at a time, and everyone else waits for it.

mod connection;
mod event_loop;
mod offload;
mod slab;
mod timers;

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use mio::Waker;
use shared::cli::{CliError, CommonConfig, Flag, ParsedFlags, RunningServer, ServerCommand};
use shared::stats::Counters;

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// Past this many open connections, a new one gets `ERR busy`.
    pub max_connections: usize,
    /// 0: image jobs run inline on the loop thread. Above 0: they run on a
    /// pool of this many threads (see `offload.rs`).
    pub offload_workers: usize,
    /// Independent event loops, each on its own thread (`--loops`).
    pub loops: usize,
}

impl Config {
    pub const DEFAULT_ADDR: &'static str = "127.0.0.1:7879";
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

    /// Every default, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        Config {
            common: CommonConfig::new(addr),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            offload_workers: 0,
            loops: 1,
        }
    }
}

/// A running server. Dropping it without `shutdown` leaves it running until
/// the process ends.
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Interrupts the loop's `poll` from another thread: the only way into a
    /// thread that may be waiting for events with no timeout.
    waker: Arc<Waker>,
    thread: JoinHandle<u64>,
}

/// Binds and starts the loop on its own thread; returns at once.
pub fn start(config: Config) -> io::Result<ServerHandle> {
    let (poll, listener) = event_loop::bind(config.common.addr)?;
    let addr = listener.local_addr()?;
    let waker = Arc::new(Waker::new(poll.registry(), event_loop::WAKER)?);
    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let offload = match config.offload_workers {
        0 => None,
        workers => Some(offload::Offload::start(
            workers,
            Arc::clone(&waker),
            Arc::clone(&counters),
        )?),
    };
    let event_loop =
        event_loop::EventLoop::new(poll, listener, config, counters, Arc::clone(&stop), offload);
    let thread = thread::Builder::new()
        .name("event-loop".into())
        .spawn(move || event_loop.run())
        .map_err(|e| {
            io::Error::new(e.kind(), format!("cannot start the event loop thread: {e}"))
        })?;
    Ok(ServerHandle {
        addr,
        stop,
        waker,
        thread,
    })
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, answers every request already received (database
    /// queries still on their timers included), flushes, closes, and returns
    /// how many responses the drain sent.
    pub fn shutdown(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if self.waker.wake().is_err() {
            return 0; // the loop is gone already
        }
        self.thread.join().unwrap_or(0)
    }
}

impl RunningServer for ServerHandle {
    fn local_addr(&self) -> SocketAddr {
        ServerHandle::local_addr(self)
    }

    fn shutdown(self) -> u64 {
        ServerHandle::shutdown(self)
    }
}

const FLAGS: &[Flag] = &[
    Flag {
        name: "max-connections",
        value: "N",
        help: "open connections before new ones get `ERR busy`, 1 to 1000000 [10000]",
    },
    Flag {
        name: "loops",
        value: "N",
        help: "independent event loops, one thread each, 1 to 1024 [1]",
    },
    Flag {
        name: "offload-workers",
        value: "N",
        help: "run IMAGE jobs on N worker threads instead of the loop, 0 to 1024 [0: inline]",
    },
];

const COMMAND: ServerCommand = ServerCommand {
    name: "event_loop_server",
    default_addr: Config::DEFAULT_ADDR,
    about: "An event-loop server: one thread and a mio poll loop serve every connection.",
    flags: FLAGS,
};

/// The binary's whole behaviour, callable from tests: parse `args` (without
/// the program name), run until SIGINT or SIGTERM, drain, exit.
pub fn main_with_args(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    COMMAND.run(args, config_from_flags, start)
}

/// The name of every flag the binary accepts, without its leading `--`:
/// the same list its parser uses, for checking the docs against it.
pub fn accepted_flags() -> Vec<&'static str> {
    COMMAND.accepted_flags()
}

fn config_from_flags(common: CommonConfig, flags: &ParsedFlags) -> Result<Config, CliError> {
    let mut config = Config::new(common.addr);
    config.common = common;
    if let Some(max) = flags.number("max-connections", 1, 1_000_000)? {
        config.max_connections = max;
    }
    if let Some(loops) = flags.number("loops", 1, 1024)? {
        config.loops = loops;
    }
    if let Some(workers) = flags.number("offload-workers", 0, 1024)? {
        config.offload_workers = workers;
    }
    Ok(config)
}
