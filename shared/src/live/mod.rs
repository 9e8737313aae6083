//! The live view: a page (`GET /live`) that redraws a server's figures
//! (`GET /stats.json`) once a second, so a learner can watch pool workers
//! fall asleep in `DB` or a loop's timers pile up while a load runs.
//!
//! ## Why a thread on a port of its own (`--stats-addr`)
//! The page is most worth looking at when the server is saturated, and
//! that is exactly when the server's own port cannot answer it:
//! - on the thread pool, a connection holds a worker until it closes, so
//!   with every worker busy the page would wait in the queue or get
//!   `ERR busy`, and a browser's keep-alive connection would then hold a
//!   worker for as long as the tab is open (with `--workers 1`, the
//!   server's only one);
//! - on the event loop, the loop answers only between steps, so during an
//!   inline blur the page would stop updating: the freeze would hide
//!   itself.
//!
//! The other way, the pool's acceptor answering these two paths itself,
//! would make the acceptor read from every new connection before handing
//! it on (it never reads today), and would still leave the loop's page
//! frozen by an inline job. So both servers start one more thread, as
//! nginx's `stub_status` and HAProxy's stats page have their own listener:
//! [`Monitor`] accepts, reads one request head, answers and closes. It
//! reads only atomics the servers already keep or publish once a second,
//! so the request path takes no lock for it (each server's `live.rs` says
//! what it costs there).

mod figures;
mod json;
mod monitor;

pub use figures::{common_fields, common_flags};
pub use json::Json;
pub use monitor::Monitor;

/// The page, written by hand: no framework, no external resource, so it
/// works on a machine with no network and reads as teaching material.
pub const PAGE: &str = include_str!("page.html");
