//! The measuring side of the project: a load generator, and the comparison
//! that `cargo run --release` runs with it. The servers themselves live in
//! their own crates; nothing here is linked into them.

pub mod compare;
pub mod loadgen;
