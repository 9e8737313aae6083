//! The server's lifetime: start the loops (and the offload pool), then shut
//! them down.
//!
//! Each loop gets its own `mio::Poll`, its own thread, and its part of the
//! shared state (state.rs): counters, a waker, and two mailboxes, one for
//! connections handed over by loop 0's acceptor and one for offloaded
//! answers. Shutdown sets one flag and wakes every loop; each drains its own
//! connections, and the server is down once every loop thread has returned.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::sync::OnceLock;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use mio::net::TcpListener;
use mio::{Poll, Waker};
use shared::cli::RunningServer;
use shared::live::Monitor;
use shared::stats::{Counter, Counters, Lateness};

use crate::config::{Config, Style};
use crate::context::Context;
use crate::event_loop::EventLoop;
use crate::live::{self, Published};
use crate::machines::Machines;
use crate::offload::Offload;
use crate::reactor::Reactor;
use crate::state::{LoopShared, Shared};
use crate::tokens::Target;

/// A running server. Dropping it without `shutdown` leaves it running until
/// the process ends.
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<u64>>,
    /// The live view's own thread (`--stats-addr`): a page served by the
    /// loops would freeze with them during an inline job, the very moment
    /// worth seeing (shared::live).
    monitor: Option<Monitor>,
}

/// Binds and starts the loops, each on its own thread; returns at once.
pub fn start(config: Config) -> io::Result<ServerHandle> {
    let listener = bind(config.common.addr)?;
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
            db_waiting: Counter::default(),
            lateness: Lateness::default(),
            live: Published::default(),
            waker: Arc::new(Waker::new(poll.registry(), Target::Waker.token())?),
            handoff,
            done,
        });
        polls.push(poll);
        inboxes.push((handed, finished));
    }
    let shared = Arc::new(Shared {
        config,
        stopping: AtomicBool::new(false),
        loops,
        started: Instant::now(),
        offload_load: OnceLock::new(),
    });
    let offload = match shared.config.offload_workers {
        0 => None,
        workers => Some(Arc::new(Offload::start(workers, Arc::clone(&shared))?)),
    };
    if let Some(offload) = &offload {
        let _ = shared.offload_load.set(offload.load());
    }
    let monitor = match shared.config.common.stats_addr {
        Some(stats_addr) => {
            let watched = Arc::clone(&shared);
            Some(Monitor::start(stats_addr, move || {
                live::stats_json(&watched)
            })?)
        }
        None => None,
    };
    let mut listener = Some(listener);
    let mut handle = ServerHandle {
        addr,
        shared: Arc::clone(&shared),
        threads: Vec::new(),
        monitor,
    };
    for (index, (poll, (handed, finished))) in polls.into_iter().zip(inboxes).enumerate() {
        let ctx = Context::new(index, Arc::clone(&shared), poll, offload.clone());
        // Loop 0 accepts for everyone, as netty's boss loop does.
        let style = shared.config.style;
        let started = EventLoop::new(ctx, listener.take(), handed, finished).and_then(|each| {
            thread::Builder::new()
                .name(format!("event-loop-{index}"))
                // The connections are made on the loop's own thread: tasks
                // (`Rc`s, futures that are not `Send`) never leave it.
                .spawn(move || match style {
                    Style::Machine => each.run::<Machines>(),
                    Style::Async => each.run::<Reactor>(),
                })
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

/// Binds the listening socket with the shared backlog (`shared::listen`);
/// loop 0 registers it with its poll.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = shared::listen::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(TcpListener::from_std(listener))
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/live` is served, with `--stats-addr`.
    pub fn stats_addr(&self) -> Option<SocketAddr> {
        self.monitor.as_ref().map(Monitor::local_addr)
    }

    /// Stops accepting, answers every request already received (database
    /// queries still on their timers included), flushes, closes, and returns
    /// how many responses the drain sent.
    pub fn shutdown(self) -> u64 {
        if let Some(monitor) = self.monitor {
            monitor.stop();
        }
        self.shared.stopping.store(true, Ordering::SeqCst);
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

    fn stats_addr(&self) -> Option<SocketAddr> {
        ServerHandle::stats_addr(self)
    }

    fn shutdown(self) -> u64 {
        ServerHandle::shutdown(self)
    }
}
