//! The `latency` scenario: latency against offered load, the hockey stick.
//!
//! Every other scenario is a closed loop: it asks how fast C clients can
//! go. This one is an open loop (`loadgen::Arrivals::Open`): it offers a
//! fixed rate, from well below a model's capacity to past it, and records
//! what latency a user would see. Below capacity, latency is the work
//! itself; near it, requests start to queue; past it, the queue grows for
//! as long as the run lasts, and so does every percentile. Where that turn
//! comes is Little's law: capacity = concurrency / service time.
//!
//! - waiting work (`DB {i} 10` over 100 connections): a thread per
//!   connection has 100 threads, each asleep 10 ms per query, so at most
//!   100 / 10 ms = 10,000 req/s, however idle the cores; a loop keeps every
//!   query waiting at once on a timer, so only its CPU per request limits
//!   it (cores / CPU per request).
//! - CPU work (`IMAGE blur 512 512 {i}`, one connection per server core):
//!   every model at its best computes on N cores, so each tops out near
//!   N / job time.
//!
//! The rates are fixed per kind of work (so the curves share an axis): for
//! waiting work, multiples of the thread per connection's 10,000 req/s;
//! for CPU work, multiples of N / job time, with the job timed here first.
//! Each model gets one server for all its rates, warmed up at the lowest,
//! and the rates rise, so a run past capacity never precedes one below it.
//!
//! A knee is read from throughput, not from p99: an open loop past a
//! model's capacity cannot achieve the offered rate, while a p99 can jump
//! for other reasons. One such reason shows at some rates here: the servers
//! leave Nagle's algorithm on, so when sending stops, each connection's
//! last answer can wait for the client's delayed ACK (40 ms on Linux); over
//! 100 connections in a 0.8 s run that is about 1% of the requests.

use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

use shared::image::{ImageJob, ImageOp, ImageScratch};

use crate::compare::Harness;
use crate::loadgen::{Arrivals, LoadSpec, Workload};
use crate::report::{Row, Scenario};
use crate::setup::Setup;

/// Connections of the waiting sweep: the thread per connection's
/// concurrency, and so its capacity.
pub const WAIT_CONNECTIONS: usize = 100;
/// The query's delay: the service time a waiting thread sleeps through.
pub const WAIT_DELAY_MS: u64 = 10;
/// The CPU job: 512x512 blurs, about a millisecond each on one core.
pub const BLUR_SIDE: u32 = 512;

/// Unmeasured load each server gets before its first rate.
const WARM_UP: Duration = Duration::from_millis(300);

/// Offered rates as multiples of the reference capacity.
const WAIT_RATES: [f64; 6] = [0.25, 0.6, 0.9, 1.5, 3.0, 6.0];
const QUICK_WAIT_RATES: [f64; 3] = [0.5, 1.5, 6.0];
const CPU_RATES: [f64; 5] = [0.3, 0.6, 0.85, 1.1, 1.5];
const QUICK_CPU_RATES: [f64; 2] = [0.5, 1.5];

/// Which kind of work a latency row measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Waiting,
    Cpu,
}

/// The models, each at its best, for each kind of work.
pub fn setups(work: Work, cores: usize) -> [Setup; 3] {
    match work {
        Work::Waiting => [
            Setup::ThreadPerConnection {
                threads: WAIT_CONNECTIONS,
            },
            Setup::Loop,
            Setup::Loops {
                loops: cores,
                offload: 0,
            },
        ],
        Work::Cpu => [
            Setup::pool(cores),
            Setup::Offload { workers: cores },
            Setup::Loops {
                loops: cores,
                offload: 0,
            },
        ],
    }
}

/// The rate every multiple is taken of: the thread per connection's
/// Little's-law capacity for waiting work; N / job time for CPU work.
pub fn reference_rate(work: Work, cores: usize, job_secs: f64) -> f64 {
    match work {
        Work::Waiting => WAIT_CONNECTIONS as f64 * 1000.0 / WAIT_DELAY_MS as f64,
        Work::Cpu => cores as f64 / job_secs.max(1e-6),
    }
}

/// One core's time for one blur of the scenario's size, the best of a few.
pub fn job_secs() -> f64 {
    let job = ImageJob {
        op: ImageOp::Blur,
        width: BLUR_SIDE,
        height: BLUR_SIDE,
        seed: 1,
    };
    let mut scratch = ImageScratch::new();
    (0..5)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(scratch.run(&job));
            started.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

/// The scenario's rows, and the job time its CPU rates were scaled by.
pub struct LatencyRun {
    pub rows: Vec<Row>,
    pub job_secs: f64,
}

/// Runs the whole scenario: every model, every rate. `progress` is told
/// about each run before it starts.
pub fn run(
    harness: &Harness,
    cores: usize,
    quick: bool,
    progress: &dyn Fn(String),
) -> io::Result<LatencyRun> {
    let point = Duration::from_millis(if quick { 300 } else { 800 });
    let job = job_secs();
    let mut rows = Vec::new();
    for work in [Work::Waiting, Work::Cpu] {
        let multiples: &[f64] = match (work, quick) {
            (Work::Waiting, false) => &WAIT_RATES,
            (Work::Waiting, true) => &QUICK_WAIT_RATES,
            (Work::Cpu, false) => &CPU_RATES,
            (Work::Cpu, true) => &QUICK_CPU_RATES,
        };
        let reference = reference_rate(work, cores, job);
        let (clients, workload) = match work {
            Work::Waiting => (
                WAIT_CONNECTIONS,
                Workload::Db {
                    delay_ms: WAIT_DELAY_MS,
                },
            ),
            Work::Cpu => (cores, Workload::Blur { side: BLUR_SIDE }),
        };
        let all = setups(work, cores);
        // `--quick` runs the two models whose contrast matters most: the
        // thread per connection and the loop on waiting work, the pool
        // and a loop per core on CPU work.
        let models: Vec<Setup> = match (quick, work) {
            (false, _) => all.to_vec(),
            (true, Work::Waiting) => vec![all[0], all[1]],
            (true, Work::Cpu) => vec![all[0], all[2]],
        };
        for setup in models {
            // One server for every rate, warmed up first at the lowest: a
            // fresh process's first tens of milliseconds (connections
            // set up, pages touched) would otherwise land in the lowest
            // rate's p99. Rates rise, so a run past capacity comes after
            // every run below it.
            let server = harness.start(setup, clients)?;
            let lowest = (reference * multiples[0]).round().max(1.0);
            let warm_up = LoadSpec {
                arrivals: Arrivals::Open { rate: lowest },
                grace: Duration::from_millis(300),
                ..harness.spec(&server, clients, workload.clone(), WARM_UP)
            };
            harness.load(&server, &warm_up)?;
            for &multiple in multiples {
                let rate = (reference * multiple).round().max(1.0);
                progress(format!(
                    "latency: {rate:.0} req/s offered over {clients} connections ({}) on {}",
                    workload.request(0).trim(),
                    setup.label()
                ));
                let spec = LoadSpec {
                    arrivals: Arrivals::Open { rate },
                    // Past capacity the queue only grows: half a second
                    // to drain is enough to see it, and keeps the
                    // scenario short.
                    grace: Duration::from_millis(500),
                    ..harness.spec(&server, clients, workload.clone(), point)
                };
                let (report, cost) = harness.load(&server, &spec)?;
                rows.push(Row {
                    cost: Some(cost),
                    work: Some(work),
                    ..Row::new(Scenario::Latency, setup, clients, Some(report))
                });
            }
        }
    }
    Ok(LatencyRun {
        rows,
        job_secs: job,
    })
}

/// A rate is kept up with when every request was answered and at least
/// this share of the offered rate was answered while sending went on. The
/// test is throughput, not p99: a p99 can jump for reasons other than a
/// queue (a stray 40 ms from the TCP stack, say), while an open loop past
/// capacity cannot achieve its rate.
const KEPT_UP_RATE: f64 = 0.95;

/// Where a model's curve turns: the highest offered rate it kept up with,
/// and the first it did not.
struct Knee<'a> {
    kept: Option<&'a Row>,
    fell: Option<&'a Row>,
}

fn knee<'a>(rows: &[&'a Row]) -> Knee<'a> {
    let kept_up = |row: &Row| {
        let (Some(report), Some(offered)) = (&row.report, row.offered()) else {
            return false;
        };
        report.errors + report.unanswered == 0
            && report.requests_per_sec() >= KEPT_UP_RATE * offered
    };
    let fell = rows.iter().position(|r| !kept_up(r));
    let kept = match fell {
        Some(0) => None,
        Some(i) => Some(rows[i - 1]),
        None => rows.last().copied(),
    };
    Knee {
        kept,
        fell: fell.map(|i| rows[i]),
    }
}

fn describe(knee: &Knee) -> String {
    let ms = |row: &Row| row.p99().map_or("-".to_string(), |v| format!("{v:.1}"));
    let kept = knee.kept.map(|row| {
        format!(
            "kept up to {:.0} req/s (p99 {} ms)",
            row.offered().unwrap_or(0.0),
            ms(row)
        )
    });
    let fell = knee.fell.map(|row| {
        format!(
            "fell behind at {:.0} (achieved {:.0}, p99 {} ms)",
            row.offered().unwrap_or(0.0),
            row.rps().unwrap_or(0.0),
            ms(row)
        )
    });
    match (kept, fell) {
        (Some(kept), Some(fell)) => format!("{kept}, {fell}"),
        (Some(kept), None) => format!("{kept}, the highest rate offered"),
        (None, Some(fell)) => format!("{fell}, the lowest rate offered"),
        (None, None) => "no runs".to_string(),
    }
}

/// The reading's lines for the latency scenario: each model's knee, and the
/// capacity Little's law predicts for it.
pub fn reading(rows: &[Row], cores: usize, job_secs: Option<f64>) -> String {
    let mut out = String::new();
    for work in [Work::Waiting, Work::Cpu] {
        let of_work: Vec<&Row> = rows
            .iter()
            .filter(|r| r.scenario == Scenario::Latency && r.work == Some(work))
            .collect();
        if of_work.is_empty() {
            continue;
        }
        let _ = match work {
            Work::Waiting => writeln!(
                out,
                "- latency, DB 10 over {WAIT_CONNECTIONS} connections (open loop; capacity = concurrency / service time):"
            ),
            Work::Cpu => writeln!(
                out,
                "- latency, IMAGE blur {BLUR_SIDE} over {cores} connections (open loop; capacity = cores / job time):"
            ),
        };
        for setup in setups(work, cores) {
            let mut series: Vec<&Row> = of_work
                .iter()
                .copied()
                .filter(|r| r.setup == setup)
                .collect();
            series.sort_by(|a, b| {
                a.offered()
                    .partial_cmp(&b.offered())
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            if series.is_empty() {
                continue;
            }
            let knee = knee(&series);
            let why = match (work, setup) {
                (Work::Waiting, Setup::ThreadPerConnection { threads }) => format!(
                    "{threads} threads each asleep {WAIT_DELAY_MS} ms per query: at most {threads} / {WAIT_DELAY_MS} ms = {:.0} req/s, however idle the cores",
                    reference_rate(work, cores, 0.0)
                ),
                (Work::Waiting, _) => {
                    let loops = match setup {
                        Setup::Loops { loops, .. } => loops,
                        _ => 1,
                    };
                    match knee.kept.and_then(Row::per_answer) {
                        Some((cpu_us, _, _)) => format!(
                            "every query waits on a timer at once, so only CPU limits it: {cpu_us:.1} us of CPU per request \
                             on {loops} loop thread{} is at most about {:.0} req/s",
                            if loops == 1 { "" } else { "s" },
                            loops as f64 * 1e6 / cpu_us
                        ),
                        None => "every query waits on a timer at once, so only CPU limits it".to_string(),
                    }
                }
                (Work::Cpu, _) => match job_secs {
                    Some(job) => format!(
                        "{cores} cores / {:.2} ms per job = {:.0} jobs/s at best",
                        job * 1e3,
                        cores as f64 / job
                    ),
                    None => format!("{cores} cores computing"),
                },
            };
            let _ = writeln!(out, "    {}: {}; {why}.", setup.label(), describe(&knee));
        }
    }
    out
}
