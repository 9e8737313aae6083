//! Asynchrony: an event loop, every socket non-blocking; and, with
//! `--loops N`, parallelism on top: N loops, one per thread.
//!
//! Read in this order:
//! 1. `event_loop.rs`: the loop itself, its turn drawn at the top: poll,
//!    dispatch, timers, offloaded answers, new connections, left-over work,
//!    drain.
//! 2. `connection.rs`: one connection as a state machine that never waits,
//!    with in-order answers and backpressure; `connection_model.rs`, its
//!    model test.
//! 3. `context.rs`: what every step of a loop works with, and why the
//!    connections are kept apart from it; `service.rs`: how each request is
//!    answered without blocking: the fake database on timers, image jobs
//!    inline or offloaded, `STATS`.
//! 4. `timers.rs` and `clock.rs`: "answer in 50 ms" as a heap entry, how
//!    stale entries are swept, and how precisely a loop keeps time.
//! 5. `tokens.rs`: what each event is for; `slab.rs`: finding a connection
//!    from its token, safely across reuse.
//! 6. `accept.rs`: accepting, spreading connections over loops, running out
//!    of descriptors; `refuse.rs`: saying "busy" in the client's dialect;
//!    `watchdog.rs`: idle and stalled connections.
//! 7. `offload.rs`: a thread pool for CPU work beside the loops;
//!    `state.rs`: what the loops share; `server.rs`: starting and stopping
//!    them; `config.rs`: the settings and their flags.
//! 8. `live.rs`: each loop's utilisation and timer lateness per second,
//!    for the live view (`shared::live`).
//! 9. `--style async`, the same loop with each connection an `async fn`:
//!    `connections.rs` (what the loop asks of either style) and
//!    `machines.rs`; `session.rs`, the connection; `leaf.rs`, the futures
//!    it waits on; `in_order.rs`, pipelining; `executor.rs` and
//!    `reactor.rs`, a runtime by hand; `executor_model.rs`, its model test.
//!
//! The model wins when the work is waiting: a client waiting on the fake
//! database is a heap entry and a few hundred bytes, so one thread keeps
//! thousands of queries in flight. One loop loses when the work is
//! computing: it runs one image job at a time and everyone else waits. The
//! cures are offloading (`--offload-workers`) and more loops (`--loops`).

mod accept;
mod clock;
mod config;
mod connection;
#[cfg(test)]
mod connection_model;
mod connections;
mod context;
mod event_loop;
mod executor;
#[cfg(test)]
mod executor_model;
mod in_order;
mod leaf;
mod live;
mod machines;
mod offload;
mod reactor;
mod refuse;
mod server;
mod service;
mod session;
mod slab;
mod state;
mod timers;
mod tokens;
mod watchdog;

pub use config::{Config, Style};
pub use server::{start, ServerHandle};

use shared::cli::ServerCommand;

/// The `event_loop_server` binary: its flags, its config, its start.
pub const COMMAND: ServerCommand<Config, ServerHandle> = ServerCommand {
    name: "event_loop_server",
    default_addr: Config::DEFAULT_ADDR,
    about: "An event-loop server: a mio poll loop (one, or one per --loops thread) serves every connection.",
    flags: config::FLAGS,
    config: config::from_flags,
    start,
};
