//! What both servers have in common, so that the two server crates contain
//! nothing but their concurrency model.
//!
//! Nothing here chooses how waiting and computing are scheduled: the wire
//! protocol (framing, parsing, formatting), the image kernels, the fake
//! database's values, the limits a client may not exceed, the listening
//! socket's backlog, the command line, and the small pieces both servers'
//! threads use alike (the `STATS` counters, the graceful close, what a
//! socket error means, a caught panic, a lock that survives one). Neither
//! server owns any of it, which is what makes the comparison fair: the same
//! bytes in give the same bytes out, and only *how waiting and computing are
//! scheduled* differs. (The worker pool both servers use is a crate of its
//! own, `worker_pool`: it *is* a way of scheduling.)

pub mod cli;
pub mod db;
pub mod image;
pub mod limits;
pub mod linger;
pub mod listen;
pub mod live;
pub mod panics;
pub mod protocol;
pub mod socket;
pub mod stats;
pub mod sync;

/// SplitMix64, the one pseudo-random function of the wire contract: it makes
/// the source images and the fake database's values.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
