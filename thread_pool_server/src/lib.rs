//! Parallelism: a fixed pool of threads, each serving one connection at a
//! time with ordinary blocking calls.
//!
//! Read in this order:
//! 1. [`pool`]: the worker pool and its bounded queue, the core mechanism.
//! 2. [`server`]: the acceptor that feeds connections to the pool, and how
//!    shutdown reaches threads blocked in system calls.
//! 3. `connection.rs`: what a worker does with one connection.
//!
//! The model wins when the work is computing: N workers on N cores run N
//! image jobs at once. It loses when the work is waiting: a worker asleep on
//! the fake database still occupies a whole thread, so N workers can wait on
//! at most N queries at once.

mod connection;
pub mod pool;
mod server;

pub use server::{start, Config, ServerHandle};

use std::ffi::OsString;
use std::process::ExitCode;

use shared::cli::{CliError, CommonConfig, Flag, ParsedFlags, ServerCommand};

const FLAGS: &[Flag] = &[
    Flag {
        name: "workers",
        value: "N",
        help: "worker threads, 1 to 10000 [one per core]",
    },
    Flag {
        name: "queue",
        value: "N",
        help: "connections that may wait for a free worker, 0 to 100000 [64]",
    },
];

const COMMAND: ServerCommand = ServerCommand {
    name: "thread_pool_server",
    default_addr: Config::DEFAULT_ADDR,
    about:
        "A thread-pool server: each connection is served by one of a fixed set of worker threads.",
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
    if let Some(workers) = flags.number("workers", 1, 10_000)? {
        config.workers = workers;
    }
    if let Some(queue) = flags.number("queue", 0, 100_000)? {
        config.queue = queue;
    }
    Ok(config)
}
