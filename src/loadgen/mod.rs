//! The load generator: C connections spread over T threads, each thread an
//! event loop of its own (`mio`, non-blocking sockets, `driver.rs`), so it
//! holds thousands of connections and scales with the cores it is given
//! instead of becoming the bottleneck it is meant to measure.
//!
//! Two ways to send (`Arrivals`):
//! - **closed loop** (the default): each client sends a request (or a
//!   pipelined batch), waits for every answer, and sends again. It asks
//!   "how fast can C clients go?", and a server that stalls slows its
//!   clients down with it, so a stall shows as fewer requests, not as slow
//!   ones.
//! - **open loop** (`--rate R`): R requests a second over all clients on a
//!   fixed schedule, whatever has come back, and each latency counts from
//!   when its request was *due* (`schedule.rs`). It asks "what latency does
//!   a user see at this load?", and a stall shows in every percentile.
//!
//! And two ways to connect (`Connect`): **paced**, every connection open
//! before the clock starts and never more than the server's accept queue
//! can hold (`backlog.rs`), so a short run measures serving, not
//! connecting; or a **burst**, every client at once as real ones arrive,
//! latency counted from the burst's first connect.
//!
//! Every answer is checked against the request that asked for it; a wrong
//! answer, an `ERR` (or a non-2xx status over HTTP), or a connection that
//! drops with requests outstanding counts as an error, never silently.

mod driver;
mod schedule;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use hdrhistogram::Histogram;

pub use crate::os::raise_open_file_limit;
pub use crate::workload::{Answer, Framing, Workload};

/// When requests are sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arrivals {
    /// A client sends again once all its answers are back.
    Closed,
    /// `rate` requests per second over all clients, on a fixed schedule.
    Open { rate: f64 },
}

/// How clients connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connect {
    /// All open before the clock starts, paced by the accept queue.
    Paced,
    /// All at once, at the clock's start.
    Burst,
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub clients: usize,
    /// Requests each connection sends before waiting for their answers
    /// (closed loop).
    pub pipeline: usize,
    pub workload: Workload,
    /// Stop starting requests this long after the clock starts...
    pub duration: Duration,
    /// ...or after this many, whichever comes first.
    pub max_requests: Option<u64>,
    /// How long outstanding requests may still be answered after sending
    /// stops; later, they count as unanswered.
    pub grace: Duration,
    /// Stop sending as soon as this is set (checked at least every 100 ms):
    /// for a background load that must last exactly as long as another.
    pub stop: Option<Arc<AtomicBool>>,
    /// Generator threads, each with its own `Poll` and share of the clients.
    pub threads: usize,
    pub arrivals: Arrivals,
    pub connect: Connect,
}

impl LoadSpec {
    /// A closed loop, one request at a time per client, paced connects, no
    /// request limit, a grace period as long as the run up to 3 s, and
    /// `default_threads()` threads.
    pub fn new(addr: SocketAddr, clients: usize, workload: Workload, duration: Duration) -> Self {
        LoadSpec {
            addr,
            clients,
            pipeline: 1,
            workload,
            duration,
            max_requests: None,
            grace: duration.min(MAX_GRACE),
            stop: None,
            threads: default_threads(),
            arrivals: Arrivals::Closed,
            connect: Connect::Paced,
        }
    }
}

/// The longest default grace period.
const MAX_GRACE: Duration = Duration::from_secs(3);

/// A generator thread busy at least this share of the run was on the
/// critical path: the server may have been waiting for it.
pub const SATURATED: f64 = 0.9;

/// Threads when none are asked for: half the cores this process may run
/// on, at least one. Why half: on the line protocol a request costs the
/// generator about what it costs the server (`PING` from 50 clients on one
/// loop: 4.1-4.4 µs of generator CPU and 4.1-4.4 µs of server CPU per
/// request, docs/RESULTS.md), so on a machine the two share, an even
/// split keeps either from waiting on the other. With the comparison's
/// pinning the generator has cores of its own, and takes one thread each.
pub fn default_threads() -> usize {
    (crate::os::allowed_cores().len() / 2).max(1)
}

#[derive(Debug)]
pub struct LoadReport {
    /// Requests answered correctly.
    pub answered: u64,
    /// Wrong answers, `ERR` lines (non-2xx over HTTP), answers nobody asked
    /// for, and requests lost with their connection.
    pub errors: u64,
    /// Requests still unanswered when the run ended (after the grace period).
    pub unanswered: u64,
    /// Requests written (or queued to write) to a connection. With a
    /// correct server, answered + errors + unanswered = sent.
    pub sent: u64,
    /// Connections that never received a single correct answer (those that
    /// could not connect included).
    pub starved_clients: usize,
    /// Connections that were opened.
    pub connected: usize,
    /// How long opening every connection took, before the clock started
    /// (zero for a burst, whose connecting is inside the clock).
    pub connect_time: Duration,
    /// From the clock's start to the last correct answer.
    pub elapsed: Duration,
    /// Latency of each correct answer, in microseconds.
    pub latency_us: Histogram<u64>,
    /// The rate asked for, in an open loop.
    pub asked_rate: Option<f64>,
    /// In an open loop, the rate achieved: answers that arrived while
    /// requests were being sent, per second of sending. A server that keeps
    /// up achieves the asked rate less its latency's share of the window; one
    /// that falls behind, what it could serve.
    pub achieved_rate: Option<f64>,
    pub generator: GeneratorCost,
}

/// What the generator itself spent.
#[derive(Debug, Clone, Copy)]
pub struct GeneratorCost {
    pub threads: usize,
    /// CPU seconds over all generator threads, connecting included.
    pub cpu_secs: f64,
    /// The busiest thread's share of the run spent outside `poll`: near 1,
    /// it was never waiting for the server, so the server may have been
    /// waiting for it.
    pub busiest: f64,
    /// Which thread that was.
    pub busiest_thread: usize,
}

impl LoadReport {
    /// Answered requests per second: in a closed loop over the time to the
    /// last answer; in an open loop, the achieved rate.
    pub fn requests_per_sec(&self) -> f64 {
        self.achieved_rate
            .unwrap_or(self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9))
    }

    /// A latency quantile in milliseconds (`None` with no answers at all).
    pub fn latency_ms(&self, quantile: f64) -> Option<f64> {
        (!self.latency_us.is_empty())
            .then(|| self.latency_us.value_at_quantile(quantile) as f64 / 1000.0)
    }

    /// Whether a generator thread was busy enough to have limited the run.
    pub fn generator_saturated(&self) -> bool {
        self.generator.busiest >= SATURATED
    }

    /// The generator's CPU time per answered request, in microseconds.
    pub fn generator_cpu_us_per_request(&self) -> Option<f64> {
        (self.answered > 0).then(|| self.generator.cpu_secs * 1e6 / self.answered as f64)
    }

    /// One line for stderr when the generator may have set the number.
    pub fn saturation_warning(&self) -> Option<String> {
        self.generator_saturated().then(|| {
            format!(
                "warning: load generator thread {} of {} was busy {:.0}% of the run, so it may have \
                 limited this result; give it more threads or cores",
                self.generator.busiest_thread,
                self.generator.threads,
                self.generator.busiest * 100.0
            )
        })
    }
}

/// What all generator threads share while they run.
pub(crate) struct Shared {
    /// The counter behind `{i}`: unique over all threads.
    next_i: AtomicU64,
}

/// Runs the load and reports. Fails only if a poller itself fails; every
/// connection that fails is counted in the report.
pub fn run(spec: &LoadSpec) -> io::Result<LoadReport> {
    let threads = spec.threads.clamp(1, spec.clients.max(1));
    let shared = Shared {
        next_i: AtomicU64::new(0),
    };
    // Everyone connects, then the clock starts for all at once.
    let ready = Barrier::new(threads);
    let rate = match spec.arrivals {
        Arrivals::Open { rate } => Some(rate),
        Arrivals::Closed => None,
    };
    let results: Vec<io::Result<driver::Tally>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                // Thread t takes every client whose index is t modulo threads:
                // shares differ by at most one.
                let clients = spec.clients / threads + usize::from(t < spec.clients % threads);
                let share = driver::Share {
                    clients,
                    rate: rate.map(|r| r * clients as f64 / spec.clients.max(1) as f64),
                    threads,
                };
                let (shared, ready) = (&shared, &ready);
                scope.spawn(move || driver::run(spec, share, shared, ready))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(io::Error::other("a load generator thread panicked")))
            })
            .collect()
    });
    let tallies = results.into_iter().collect::<io::Result<Vec<_>>>()?;
    Ok(merge(spec, threads, rate, tallies))
}

/// Adds the threads' tallies up into one report.
fn merge(
    spec: &LoadSpec,
    threads: usize,
    rate: Option<f64>,
    tallies: Vec<driver::Tally>,
) -> LoadReport {
    let sum = |f: fn(&driver::Tally) -> u64| tallies.iter().map(f).sum::<u64>();
    let started = tallies.iter().map(|t| t.started).min();
    let last = tallies.iter().map(|t| t.last_answer).max();
    let elapsed = match (started, last) {
        (Some(started), Some(last)) => last.saturating_duration_since(started),
        _ => Duration::ZERO,
    };
    let sending = match (started, tallies.iter().map(|t| t.sending_end).max()) {
        (Some(started), Some(end)) => end.saturating_duration_since(started),
        _ => Duration::ZERO,
    };
    let achieved_rate =
        rate.map(|_| sum(|t| t.answered_in_window) as f64 / sending.as_secs_f64().max(1e-3));
    let mut histogram =
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("constant bounds are valid");
    let mut busiest = (0.0, 0);
    for (t, tally) in tallies.iter().enumerate() {
        // Values beyond the bounds were never recorded, so adding cannot fail.
        let _ = histogram.add(&tally.histogram);
        let share = tally.busy.as_secs_f64() / tally.window.as_secs_f64().max(1e-9);
        if share > busiest.0 {
            busiest = (share, t);
        }
    }
    let answered_clients: usize = tallies.iter().map(|t| t.answered_clients).sum();
    LoadReport {
        answered: sum(|t| t.answered),
        errors: sum(|t| t.errors),
        unanswered: sum(|t| t.in_flight),
        sent: sum(|t| t.sent),
        starved_clients: spec.clients.saturating_sub(answered_clients),
        connected: tallies.iter().map(|t| t.connected).sum(),
        connect_time: tallies
            .iter()
            .map(|t| t.connect_time)
            .max()
            .unwrap_or_default(),
        elapsed: elapsed.max(Duration::from_millis(1)),
        latency_us: histogram,
        asked_rate: rate,
        achieved_rate,
        generator: GeneratorCost {
            threads,
            cpu_secs: tallies.iter().map(|t| t.cpu_secs).sum(),
            busiest: busiest.0.min(1.0),
            busiest_thread: busiest.1,
        },
    }
}
