//! The event loop server's settings, and the flags that set them.

use std::net::SocketAddr;

use shared::cli::{CliError, CommonConfig, Flag, ParsedFlags};

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

pub(crate) const FLAGS: &[Flag] = &[
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

/// The config `FLAGS` describe; what is not given keeps its default.
pub(crate) fn from_flags(common: CommonConfig, flags: &ParsedFlags) -> Result<Config, CliError> {
    let default = Config::new(common.addr);
    Ok(Config {
        max_connections: flags
            .number("max-connections", 1, 1_000_000)?
            .unwrap_or(default.max_connections),
        loops: flags.number("loops", 1, 256)?.unwrap_or(default.loops),
        offload_workers: flags
            .number("offload-workers", 0, 1024)?
            .unwrap_or(default.offload_workers),
        common,
    })
}
