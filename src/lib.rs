//! The measuring side of the project: a load generator (a library and the
//! `loadgen` binary), and the comparison that `cargo run --release` runs
//! with it. The servers themselves live in their own crates; nothing here
//! is linked into them.

pub mod backlog;
pub mod chart;
pub mod compare;
pub mod http;
pub mod latency;
pub mod loadgen;
pub mod os;
pub mod placement;
pub mod procstat;
pub mod report;
pub mod server_process;
pub mod setup;
pub mod workload;
