//! The comparison's results: one row per run, printed as a table with a
//! reading of it, or as JSON, and handed to the chart.
//!
//! Every number says what it includes and leaves out (the footnotes under
//! the table): a figure without its boundaries invites the wrong lesson.

use std::fmt::Write as _;

use crate::chart::{ChartData, LatencyPoint, LatencySeries, Point, Series};
use crate::latency::Work;
use crate::loadgen::LoadReport;
use crate::placement::Placement;
use crate::procstat::CpuSample;
use crate::setup::Setup;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Cpu,
    Wait,
    Sweep,
    Fair,
    Memory,
    Latency,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::Cpu,
        Scenario::Wait,
        Scenario::Sweep,
        Scenario::Fair,
        Scenario::Memory,
        Scenario::Latency,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Cpu => "cpu",
            Scenario::Wait => "wait",
            Scenario::Sweep => "sweep",
            Scenario::Fair => "fair",
            Scenario::Memory => "memory",
            Scenario::Latency => "latency",
        }
    }

    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Memory per idle connection, in bytes.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// RSS after the clients connected, less RSS before any server thread.
    pub rss_per_connection: f64,
    /// Of which already there once the server ran, before any client (the
    /// pool's threads, started up front).
    pub rss_per_connection_before_clients: f64,
    /// The machine's `KernelStack` change over the same span.
    pub kernel_stack_per_connection: Option<f64>,
}

/// One run.
pub struct Row {
    pub scenario: Scenario,
    pub setup: Setup,
    pub clients: usize,
    pub report: Option<LoadReport>,
    /// The server process's CPU time and context switches over the load.
    pub cost: Option<CpuSample>,
    pub memory: Option<Memory>,
    /// Latency rows: waiting or CPU work.
    pub work: Option<Work>,
    pub note: String,
}

impl Row {
    pub fn new(
        scenario: Scenario,
        setup: Setup,
        clients: usize,
        report: Option<LoadReport>,
    ) -> Row {
        Row {
            scenario,
            setup,
            clients,
            report,
            cost: None,
            memory: None,
            work: None,
            note: String::new(),
        }
    }

    pub fn rps(&self) -> Option<f64> {
        self.report.as_ref().map(LoadReport::requests_per_sec)
    }

    pub fn p99(&self) -> Option<f64> {
        self.report.as_ref().and_then(|r| r.latency_ms(0.99))
    }

    /// The rate an open-loop row offered.
    pub fn offered(&self) -> Option<f64> {
        self.report.as_ref().and_then(|r| r.asked_rate)
    }

    /// CPU microseconds, voluntary and nonvoluntary switches, per answer.
    pub fn per_answer(&self) -> Option<(f64, f64, f64)> {
        let answered = self.report.as_ref()?.answered;
        let cost = self.cost?;
        // Under 2 clock ticks of CPU in all, the figure is mostly rounding.
        (answered > 0 && cost.cpu_secs >= 0.02).then(|| {
            let n = answered as f64;
            (
                cost.cpu_secs * 1e6 / n,
                cost.voluntary as f64 / n,
                cost.nonvoluntary as f64 / n,
            )
        })
    }
}

/// CPU per request, marked `~` when the run's CPU time was under 10
/// clock ticks (so off by up to a tenth).
fn cpu_cell(row: &Row, value: Option<f64>) -> String {
    let rough = row.cost.is_some_and(|c| c.cpu_secs < 0.1);
    match value {
        Some(v) if rough => format!("~{v:.1}"),
        other => num(other, 1),
    }
}

fn num(value: Option<f64>, decimals: usize) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.decimals$}"))
}

pub fn table(rows: &[Row], placement: &Placement) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<7} {:<32} {:>7} {:>8} {:>8} {:>8} {:>6} {:>7} {:>8} {:>7} {:>7}  notes",
        "scenario",
        "server",
        "clients",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "starved",
        "cpu us/r",
        "vcs/r",
        "ivcs/r"
    );
    for row in rows {
        let r = row.report.as_ref();
        let errors = r.map(|r| (r.errors + r.unanswered).to_string());
        let starved = r.map(|r| r.starved_clients.to_string());
        let per = row.per_answer();
        let mut note = row.note.clone();
        if let Some(rate) = row.offered() {
            note = join(&format!("offered {rate:.0} req/s"), &note);
        }
        if let Some(busiest) = r
            .filter(|r| r.generator_saturated())
            .map(|r| r.generator.busiest)
        {
            note = join(
                &note,
                &format!("generator busy {:.0}% (!)", busiest * 100.0),
            );
        }
        if let Some(m) = row.memory {
            note = format!(
                "RSS {:.0} B/conn ({:.0} before any client), KernelStack {} B/conn",
                m.rss_per_connection,
                m.rss_per_connection_before_clients,
                num(m.kernel_stack_per_connection, 0)
            );
        }
        let _ = writeln!(
            out,
            "{:<8} {:<32} {:>7} {:>8} {:>8} {:>8} {:>6} {:>7} {:>8} {:>7} {:>7}  {note}",
            row.scenario.name(),
            row.setup.label(),
            row.clients,
            num(row.rps(), 0),
            num(r.and_then(|r| r.latency_ms(0.5)), 1),
            num(row.p99(), 1),
            errors.unwrap_or("-".into()),
            starved.unwrap_or("-".into()),
            cpu_cell(row, per.map(|p| p.0)),
            num(per.map(|p| p.1), 2),
            num(per.map(|p| p.2), 2),
        );
    }
    out.push_str(FOOTNOTES);
    let _ = writeln!(out, "{}", placement.describe());
    out
}

/// Two notes in one cell, either possibly empty.
fn join(first: &str, second: &str) -> String {
    match (first.is_empty(), second.is_empty()) {
        (_, true) => first.to_string(),
        (true, false) => second.to_string(),
        (false, false) => format!("{first}, {second}"),
    }
}

const FOOTNOTES: &str = "
errors: wrong or ERR answers, and requests lost or unanswered. starved: clients that got no
  answer at all in the measured window (the clock starts once every client has connected).
cpu us/r: the server process's user+system CPU time (/proc/PID/stat, 10 ms ticks) over the
  whole load, connecting and turning clients away included, per answered request. It leaves
  out the load generator (another process) and kernel work the scheduler charges to it, such
  as loopback TCP processing in the sender's context. '~': under 100 ms of CPU in all, so
  off by up to a tenth; '-': under 20 ms, too few ticks to divide.
vcs/r, ivcs/r: context switches per answered request, voluntary (a thread blocked) and
  nonvoluntary (preempted), summed over the server's threads (/proc/PID/task/*/status).
RSS: pages resident in the server process, from before any server thread started to after
  the clients connected. It leaves out kernel memory: each thread's kernel stack and
  task_struct, socket buffers. KernelStack is the machine-wide /proc/meminfo figure over the
  same span, so other work on the machine moves it too.
event loop x N: --loops N, N independent loops on N threads, loop 0 accepting for all; with
  '+ N offload', image jobs run on one shared pool of N threads instead of inline.
load: a closed loop (each client sends again when its answer is back), except latency rows:
  an open loop at the offered rate (loadgen --rate), each latency counted from when its
  request was due, so a server that falls behind shows in p50/p99; req/s there is achieved.
(!): a load-generator thread was busy over 90% of the run (outside poll), so the generator
  may have set that number rather than the server.
";

fn find(rows: &[Row], scenario: Scenario, pick: impl Fn(Setup) -> bool) -> Option<&Row> {
    rows.iter()
        .find(|r| r.scenario == scenario && pick(r.setup))
}

/// A few sentences reading the table: who won each scenario, by how much, why.
pub fn reading(rows: &[Row], cores: usize) -> String {
    let mut out = String::from("\nWhat it shows:\n");
    let sized = |s: Setup| s == Setup::pool(cores);
    let tpc = |s: Setup| matches!(s, Setup::ThreadPerConnection { .. });
    let inline = |s: Setup| s == Setup::Loop;
    let rps = |row: Option<&Row>| row.and_then(Row::rps);
    if let (Some(pool), Some(one), Some(event_loop)) = (
        rps(find(rows, Scenario::Cpu, sized)),
        rps(find(rows, Scenario::Cpu, |s| s == Setup::pool(1))),
        rps(find(rows, Scenario::Cpu, inline)),
    ) {
        let _ = writeln!(
            out,
            "- cpu: the {cores}-worker pool ran {:.2}x the jobs of one worker and {:.2}x the inline loop: \
             {cores} cores compute at once, one loop thread computes one job at a time.",
            pool / one.max(1e-9),
            pool / event_loop.max(1e-9)
        );
    }
    if let (Some(pool), Some(per_conn), Some(event_loop)) = (
        rps(find(rows, Scenario::Wait, sized)),
        rps(find(rows, Scenario::Wait, tpc)),
        rps(find(rows, Scenario::Wait, inline)),
    ) {
        let _ = writeln!(
            out,
            "- wait: {cores} workers each held 50 ms per query serve at most 20*{cores} = {} req/s (Little's law); \
             the pool did {pool:.0}. A thread per connection did {per_conn:.0} and the loop {event_loop:.0}: \
             both keep every query waiting at once, one with a sleeping thread each, one with a timer each.",
            20 * cores
        );
    }
    let most = rows
        .iter()
        .filter(|r| r.scenario == Scenario::Sweep)
        .map(|r| r.clients)
        .max();
    if let Some(clients) = most {
        let at = |pick: fn(Setup) -> bool| {
            rows.iter()
                .find(|r| r.scenario == Scenario::Sweep && r.clients == clients && pick(r.setup))
        };
        if let (Some(per_conn), Some(event_loop)) = (at(tpc), at(inline)) {
            let _ = writeln!(
                out,
                "- sweep: at {clients} clients of DB 10 the loop answered {:.2}x the requests of a thread per \
                 connection, p99 {} ms against {} ms: {clients} threads take turns on {cores} cores, each wake-up \
                 a context switch; the loop's timers fire in batches.",
                per_conn.rps().map_or(0.0, |p| event_loop.rps().unwrap_or(0.0) / p.max(1e-9)),
                num(event_loop.p99(), 1),
                num(per_conn.p99(), 1)
            );
        }
    }
    let fair_p99 = |pick: fn(Setup) -> bool| find(rows, Scenario::Fair, pick).and_then(Row::p99);
    if let (Some(per_conn), Some(event_loop)) = (fair_p99(tpc), fair_p99(inline)) {
        let _ = writeln!(
            out,
            "- fair: PING p99 {per_conn:.1} ms with a thread per client (the scheduler preempts the image \
             threads) and {event_loop:.1} ms on the inline loop (a job runs to the end before anyone else: \
             cooperative); with only {cores} pool workers the image clients hold them all and PINGs starve.",
        );
    }
    let node = |s: Setup| s == Setup::Node { offload: 0 };
    if let (Some(n), Some(event_loop)) = (
        rps(find(rows, Scenario::Wait, node)),
        rps(find(rows, Scenario::Wait, inline)),
    ) {
        let _ = writeln!(
            out,
            "- node.js: on waiting work it is the same model as the inline loop (one thread, a timer per query) \
             and did {n:.0} req/s against the loop's {event_loop:.0} ({:.2}x the loop): the same scheduling, with \
             more CPU per request in V8 and libuv (cpu us/r).",
            n / event_loop.max(1e-9)
        );
    }
    if let (Some(n), Some(event_loop)) = (
        rps(find(rows, Scenario::Cpu, node)),
        rps(find(rows, Scenario::Cpu, inline)),
    ) {
        let _ = writeln!(
            out,
            "- node.js on CPU work: {n:.0} jobs/s on its loop against the inline Rust loop's {event_loop:.0}: one thread \
             computing one job at a time in both; the gap is the kernel in JavaScript, not the scheduling.",
        );
    }
    let memory =
        |pick: fn(Setup) -> bool| find(rows, Scenario::Memory, pick).and_then(|r| r.memory);
    if let (Some(pool), Some(event_loop)) = (memory(tpc), memory(inline)) {
        let _ = writeln!(
            out,
            "- memory: an idle connection cost {:.0} bytes of RSS with a thread per connection ({:.0} of them \
             before any client: the threads alone) plus {} bytes of kernel stack, and {:.0} bytes of RSS on the loop.",
            pool.rss_per_connection,
            pool.rss_per_connection_before_clients,
            num(pool.kernel_stack_per_connection, 0),
            event_loop.rss_per_connection
        );
    }
    out
}

pub fn to_json(rows: &[Row]) -> String {
    let n = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.3}"));
    let items: Vec<String> = rows
        .iter()
        .map(|row| {
            let r = row.report.as_ref();
            let per = row.per_answer();
            let m = row.memory;
            format!(
                "{{\"scenario\":\"{}\",\"server\":\"{}\",\"clients\":{},\"requests_per_sec\":{},\"p50_ms\":{},\
                 \"p90_ms\":{},\"p99_ms\":{},\"max_ms\":{},\"answered\":{},\"errors\":{},\"unanswered\":{},\
                 \"starved_clients\":{},\"cpu_us_per_request\":{},\"voluntary_switches_per_request\":{},\
                 \"nonvoluntary_switches_per_request\":{},\"bytes_per_connection\":{},\
                 \"bytes_per_connection_before_clients\":{},\"kernel_stack_bytes_per_connection\":{},\"offered_rate\":{},\
                 \"generator_threads\":{},\"generator_cpu_us_per_request\":{},\"generator_busiest\":{},\"note\":\"{}\"}}",
                row.scenario.name(),
                row.setup.label(),
                row.clients,
                n(row.rps()),
                n(r.and_then(|r| r.latency_ms(0.5))),
                n(r.and_then(|r| r.latency_ms(0.9))),
                n(row.p99()),
                n(r.and_then(|r| r.latency_ms(1.0))),
                r.map_or(0, |r| r.answered),
                r.map_or(0, |r| r.errors),
                r.map_or(0, |r| r.unanswered),
                r.map_or(0, |r| r.starved_clients),
                n(per.map(|p| p.0)),
                n(per.map(|p| p.1)),
                n(per.map(|p| p.2)),
                n(m.map(|m| m.rss_per_connection)),
                n(m.map(|m| m.rss_per_connection_before_clients)),
                n(m.and_then(|m| m.kernel_stack_per_connection)),
                n(row.offered()),
                r.map_or(0, |r| r.generator.threads),
                n(r.and_then(LoadReport::generator_cpu_us_per_request)),
                n(r.map(|r| r.generator.busiest)),
                row.note,
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

/// The sweep as one series per set-up, and jobs/s on CPU work.
pub fn chart_data(rows: &[Row]) -> ChartData {
    let mut sweep: Vec<Series> = Vec::new();
    for row in rows.iter().filter(|r| r.scenario == Scenario::Sweep) {
        let name = row.setup.family();
        let point = Point {
            clients: row.clients as f64,
            requests_per_sec: row.rps().unwrap_or(0.0),
            p99_ms: row.p99(),
        };
        match sweep.iter_mut().find(|s| s.name == name) {
            Some(series) => series.points.push(point),
            None => sweep.push(Series {
                name,
                points: vec![point],
            }),
        }
    }
    let cpu = rows
        .iter()
        .filter(|r| r.scenario == Scenario::Cpu)
        .map(|r| (r.setup.label(), r.rps().unwrap_or(0.0)))
        .collect();
    let mut latency: Vec<LatencySeries> = Vec::new();
    for row in rows.iter().filter(|r| r.scenario == Scenario::Latency) {
        let (Some(work), Some(offered)) = (row.work, row.offered()) else {
            continue;
        };
        let name = row.setup.label();
        let point = LatencyPoint {
            offered,
            p50_ms: row.report.as_ref().and_then(|r| r.latency_ms(0.5)),
            p99_ms: row.p99(),
        };
        match latency
            .iter_mut()
            .find(|s| s.work == work && s.name == name)
        {
            Some(series) => series.points.push(point),
            None => latency.push(LatencySeries {
                work,
                name,
                points: vec![point],
            }),
        }
    }
    ChartData {
        sweep,
        cpu,
        latency,
    }
}
