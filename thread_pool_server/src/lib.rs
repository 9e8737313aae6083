//! Parallelism: a fixed pool of threads, each serving one connection at a
//! time with ordinary blocking calls.
//!
//! Read in this order:
//! 1. the `worker_pool` crate (`worker_pool/src/lib.rs`): the fixed threads
//!    and their bounded queue, the core mechanism.
//! 2. `server.rs`: the acceptor that feeds connections to the pool, and how
//!    shutdown reaches threads blocked in system calls.
//! 3. `connection.rs`: what a worker does with one connection.
//! 4. `state.rs`: what the acceptor, the workers and the handle share;
//!    `config.rs`: the settings and their flags.
//! 5. `live.rs`: each worker's state, for the live view (`shared::live`),
//!    served by a monitoring thread so that it loads when every worker is
//!    busy.
//!
//! The model wins when the work is computing: N workers on N cores run N
//! image jobs at once. It loses when the work is waiting: a worker asleep on
//! the fake database still occupies a whole thread, so N workers can wait on
//! at most N queries at once.

mod config;
mod connection;
mod live;
mod server;
mod state;

pub use config::Config;
pub use server::{start, ServerHandle};

use shared::cli::ServerCommand;

/// The `thread_pool_server` binary: its flags, its config, its start.
pub const COMMAND: ServerCommand<Config, ServerHandle> = ServerCommand {
    name: "thread_pool_server",
    default_addr: Config::DEFAULT_ADDR,
    about:
        "A thread-pool server: each connection is served by one of a fixed set of worker threads.",
    flags: config::FLAGS,
    config: config::from_flags,
    start,
};
