//! Asynchrony: an event loop, every socket non-blocking; and, with
//! `--loops N`, parallelism on top: N loops, one per thread.
//!
//! Read in this order:
//! 1. `event_loop.rs`: the loop itself, one screen: poll, dispatch, timers,
//!    offloaded answers, left-over work.
//! 2. `connection.rs`: one connection as a state machine that never waits,
//!    with in-order answers and backpressure.
//! 3. `service.rs`: how each request is answered without blocking: the fake
//!    database on timers, image jobs inline or offloaded, `STATS`.
//! 4. `timers.rs` and `clock.rs`: "answer in 50 ms" as a heap entry, and how
//!    precisely a loop keeps time.
//! 5. `accept.rs`: accepting, spreading connections over loops, running out
//!    of descriptors; `refuse.rs`: saying "busy" in the client's dialect;
//!    `watchdog.rs`: idle and stalled connections.
//! 6. `slab.rs`: finding a connection from a token, safely across reuse;
//!    `offload.rs`: a thread pool for CPU work beside the loops.
//!
//! The model wins when the work is waiting: a client waiting on the fake
//! database is a heap entry and a few hundred bytes, so one thread keeps
//! thousands of queries in flight. One loop loses when the work is
//! computing: it runs one image job at a time and everyone else waits. The
//! cures are offloading (`--offload-workers`) and more loops (`--loops`).

mod accept;
mod clock;
mod connection;
#[cfg(test)]
mod connection_model;
mod event_loop;
mod offload;
mod refuse;
mod service;
mod slab;
mod timers;
mod watchdog;

use std::ffi::OsString;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use mio::{Poll, Waker};
use shared::cli::{CliError, CommonConfig, Flag, ParsedFlags, RunningServer, ServerCommand};
use shared::stats::{Counters, Lateness};

use crate::offload::{Done, Offload};

#[derive(Debug, Clone)]
pub struct Config {
    pub common: CommonConfig,
    /// Past this many open connections, a new one gets `ERR busy`.
    pub max_connections: usize,
    /// 0: image jobs run inline on the loop thread. Above 0: they run on a
    /// pool of this many threads (see `offload.rs`).
    pub offload_workers: usize,
    /// Independent event loops, each on its own thread, each with its own
    /// connections and timers (`--loops`). 1 is the classic single loop.
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

/// What the loops of one server share. Nothing here is written on the
/// request path except by the loop that owns a [`LoopShared`].
pub(crate) struct Shared {
    pub(crate) config: Config,
    /// Set by `ServerHandle::shutdown` before it wakes every loop.
    pub(crate) stop: AtomicBool,
    pub(crate) loops: Vec<LoopShared>,
}

/// One loop's mailbox and numbers, as the other threads see them. Aligned
/// to its own cache lines, so that two loops counting their own requests
/// never write to the same line.
#[repr(align(128))]
pub(crate) struct LoopShared {
    /// Written by this loop; read by whichever loop answers `STATS`.
    /// `open_connections` is also raised by the acceptor when it hands this
    /// loop a connection.
    pub(crate) counters: Counters,
    /// Database queries waiting on this loop's timers.
    pub(crate) db_waiting: AtomicU64,
    /// How late this loop's database replies left.
    pub(crate) lateness: Lateness,
    /// Interrupts this loop's `poll` from another thread: the only way into
    /// a thread that may be waiting for events with no timeout. Three
    /// reasons share it: shutdown, a connection handed over, an offloaded
    /// answer; the loop checks all three.
    pub(crate) waker: Waker,
    /// Connections the acceptor hands to this loop.
    pub(crate) handoff: Sender<mio::net::TcpStream>,
    /// Offloaded image answers for this loop's connections.
    pub(crate) done: Sender<Done>,
}

impl Shared {
    /// Open connections over every loop.
    pub(crate) fn open_connections(&self) -> u64 {
        let open = self.loops.iter();
        open.map(|l| Counters::get(&l.counters.open_connections))
            .sum()
    }
}

/// A running server. Dropping it without `shutdown` leaves it running until
/// the process ends.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<u64>>,
}

/// Binds and starts the loops, each on its own thread; returns at once.
pub fn start(config: Config) -> io::Result<ServerHandle> {
    let listener = event_loop::bind(config.common.addr)?;
    let addr = listener.local_addr()?;
    let mut polls = Vec::new();
    let mut loops = Vec::new();
    let mut inboxes = Vec::new();
    for _ in 0..config.loops.max(1) {
        let poll = Poll::new()?;
        let (handoff, handed) = mpsc::channel();
        let (done, finished) = mpsc::channel();
        loops.push(LoopShared {
            counters: Counters::default(),
            db_waiting: AtomicU64::new(0),
            lateness: Lateness::default(),
            waker: Waker::new(poll.registry(), event_loop::WAKER)?,
            handoff,
            done,
        });
        polls.push(poll);
        inboxes.push((handed, finished));
    }
    let shared = Arc::new(Shared {
        config,
        stop: AtomicBool::new(false),
        loops,
    });
    let offload = match shared.config.offload_workers {
        0 => None,
        workers => Some(Arc::new(Offload::start(workers, Arc::clone(&shared))?)),
    };
    let mut listener = Some(listener);
    let mut handle = ServerHandle {
        addr,
        shared: Arc::clone(&shared),
        threads: Vec::new(),
    };
    for (index, (poll, (handed, finished))) in polls.into_iter().zip(inboxes).enumerate() {
        // Loop 0 accepts for everyone, as netty's boss loop does.
        let started = event_loop::EventLoop::new(
            index,
            poll,
            listener.take(),
            Arc::clone(&shared),
            offload.clone(),
            handed,
            finished,
        )
        .and_then(|event_loop| {
            thread::Builder::new()
                .name(format!("event-loop-{index}"))
                .spawn(move || event_loop.run())
                .map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot start an event loop thread: {e}"))
                })
        });
        match started {
            Ok(thread) => handle.threads.push(thread),
            Err(e) => {
                handle.shutdown(); // stops the loops already running
                return Err(e);
            }
        }
    }
    Ok(handle)
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, answers every request already received (database
    /// queries still on their timers included), flushes, closes, and returns
    /// how many responses the drain sent.
    pub fn shutdown(self) -> u64 {
        self.shared.stop.store(true, Ordering::SeqCst);
        for each in &self.shared.loops {
            let _ = each.waker.wake(); // an error: that loop is gone already
        }
        let drained = self.threads.into_iter().map(|t| t.join().unwrap_or(0));
        drained.sum()
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
        help: "independent event loops, one thread each, 1 to 256 [1]",
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
    about: "An event-loop server: a mio poll loop (one, or one per --loops thread) serves every connection.",
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
    if let Some(loops) = flags.number("loops", 1, 256)? {
        config.loops = loops;
    }
    if let Some(workers) = flags.number("offload-workers", 0, 1024)? {
        config.offload_workers = workers;
    }
    Ok(config)
}
