//! The fake database: a value for every id, and nothing else.
//!
//! The *value* is pure arithmetic, so both servers agree on it. The *delay*
//! is what makes it a database: each server waits it out in its own way (a
//! sleeping worker, or a timer in the event loop), and that difference is the
//! whole lesson of the waiting workload.

use crate::splitmix64;

/// The stored value of `id`.
pub fn value(id: u64) -> u64 {
    splitmix64(id)
}
