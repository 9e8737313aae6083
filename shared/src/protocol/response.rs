//! Every response line the servers send, made in one place so that both
//! servers are byte-identical in the fields the contract requires.
//!
//! Each function returns the whole line, `\n` included. Servers may append
//! their own ` key=value` fields (timings, worker numbers) through `extra`;
//! clients ignore fields they do not know.

use std::time::Instant;

use crate::image::{ImageJob, ImageScratch};
use crate::protocol::RequestError;

pub fn pong() -> String {
    "PONG\n".to_string()
}

pub fn help() -> String {
    "OK commands: PING | HELP | IMAGE <blur|edge> <width> <height> [seed] | \
     DB <id> [delay_ms] | STATS | QUIT; live view: GET /live on --stats-addr\n"
        .to_string()
}

pub fn image(job: &ImageJob, checksum: u64, extra: &str) -> String {
    format!(
        "OK IMAGE {} {}x{} seed={} checksum={checksum:016x}{extra}\n",
        job.op.name(),
        job.width,
        job.height,
        job.seed
    )
}

/// Runs an image job on `scratch` and makes its answer, with the time the
/// job took and, where a pool thread ran it, which one. The one place every
/// server (and the offload pool) runs image work.
pub fn run_image(scratch: &mut ImageScratch, job: &ImageJob, worker: Option<usize>) -> String {
    let started = Instant::now();
    let checksum = scratch.run(job);
    let micros = started.elapsed().as_micros();
    let extra = match worker {
        Some(worker) => format!(" micros={micros} worker={worker}"),
        None => format!(" micros={micros}"),
    };
    image(job, checksum, &extra)
}

pub fn db(id: u64, value: u64) -> String {
    format!("OK DB {id} value={value:016x}\n")
}

/// `extra` is a list of further counters, each written as ` key=value`.
pub fn stats(open_connections: u64, requests_answered: u64, extra: &[(&str, u64)]) -> String {
    let mut line = format!("OK STATS connections={open_connections} requests={requests_answered}");
    for (key, value) in extra {
        line.push_str(&format!(" {key}={value}"));
    }
    line.push('\n');
    line
}

pub fn bye() -> String {
    "BYE\n".to_string()
}

pub fn error(reason: &RequestError) -> String {
    format!("ERR {reason}\n")
}

pub fn line_too_long() -> String {
    "ERR line too long\n".to_string()
}

/// A request whose handling failed inside the server (a bug, caught).
pub fn internal_error() -> String {
    "ERR internal error\n".to_string()
}

/// An image job refused because every offload worker is busy and their
/// queue is full; the connection stays open.
pub fn busy_image_queue() -> String {
    "ERR busy: image queue full\n".to_string()
}

/// Sent by a server that has no room for another connection, just before it
/// closes that connection.
pub const BUSY: &[u8] = b"ERR busy\n";
