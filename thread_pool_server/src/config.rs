//! The thread pool server's settings, and the flags that set them.

use std::net::SocketAddr;

use shared::cli::{CliError, CommonConfig, Flag, ParsedFlags};

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

pub(crate) const FLAGS: &[Flag] = &[
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

/// The config `FLAGS` describe; what is not given keeps its default.
pub(crate) fn from_flags(common: CommonConfig, flags: &ParsedFlags) -> Result<Config, CliError> {
    let default = Config::new(common.addr);
    Ok(Config {
        workers: flags
            .number("workers", 1, 10_000)?
            .unwrap_or(default.workers),
        queue: flags.number("queue", 0, 100_000)?.unwrap_or(default.queue),
        common,
    })
}
