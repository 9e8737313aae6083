//! `cargo run --release`: the two models side by side, in numbers.
//!
//! Each scenario is one kind of load, run against each server
//! configuration in turn on port 0, measured by the load generator:
//!
//! | scenario | load | what it shows |
//! |---|---|---|
//! | cpu | `IMAGE blur 512 512 {i}`, one client per core | the pool uses every core; the loop, one |
//! | wait | `DB {i} 50` from 1,000 clients | the loop waits on all at once; the pool, W at a time |
//! | fair | PINGs while others run 2048x2048 blurs | inline jobs stall the loop; offload fixes it |
//! | memory | 5,000 idle connections | what one waiting client costs each model |
//!
//! The memory scenario runs each server in a process of its own (this
//! binary again, with `--serve`), so its resident memory can be read from
//! `/proc` without the load generator's own memory in it.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::loadgen::{self, LoadReport, LoadSpec, Workload};

/// The server set-ups compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// The thread pool with `workers` threads.
    Pool { workers: usize },
    /// The event loop, image jobs inline.
    Loop,
    /// The event loop, image jobs on `workers` offload threads.
    Offload { workers: usize },
}

impl Setup {
    fn label(self) -> String {
        match self {
            Setup::Pool { workers: 1 } => "thread pool, 1 worker".to_string(),
            Setup::Pool { workers } => format!("thread pool, {workers} workers"),
            Setup::Loop => "event loop, inline".to_string(),
            Setup::Offload { workers } => format!("event loop + {workers} offload"),
        }
    }
}

/// A server running in this process.
enum Running {
    Pool(thread_pool_server::ServerHandle),
    Loop(event_loop_server::ServerHandle),
}

impl Running {
    fn start(setup: Setup) -> std::io::Result<Running> {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        Ok(match setup {
            Setup::Pool { workers } => {
                let mut config = thread_pool_server::Config::new(addr);
                config.workers = workers;
                Running::Pool(thread_pool_server::start(config)?)
            }
            Setup::Loop | Setup::Offload { .. } => {
                let mut config = event_loop_server::Config::new(addr);
                if let Setup::Offload { workers } = setup {
                    config.offload_workers = workers;
                }
                Running::Loop(event_loop_server::start(config)?)
            }
        })
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Running::Pool(server) => server.local_addr(),
            Running::Loop(server) => server.local_addr(),
        }
    }

    fn stop(self) {
        match self {
            Running::Pool(server) => server.shutdown(),
            Running::Loop(server) => server.shutdown(),
        };
    }
}

/// One cell of the table.
struct Row {
    scenario: &'static str,
    setup: Setup,
    report: Option<LoadReport>,
    /// Memory scenario only.
    bytes_per_connection: Option<f64>,
    note: String,
}

struct Options {
    quick: bool,
    json: bool,
    scenarios: Vec<String>,
    duration: Duration,
    wait_clients: usize,
    idle_connections: usize,
}

const USAGE: &str = "\
Runs both servers under four kinds of load and prints them side by side.

Usage: parallel_vs_async [FLAGS]

Flags:
  --quick                 about 20 seconds in all (shorter runs, fewer connections)
  --json                  print the results as JSON instead of a table
  --scenarios LIST        comma-separated, from cpu,wait,fair,memory [all]
  --duration SECS         seconds of load per run, 1 to 600 [5; 1 with --quick]
  --clients N             clients of the wait scenario, 1 to 50000 [1000]
  --idle-connections N    connections of the memory scenario, 1 to 50000 [5000; 1000 with --quick]
  -h, --help              print this and exit
";

pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // `--serve MODEL ARGS...`: be one server process for the memory scenario.
    if args.first().is_some_and(|a| a == "--serve") {
        return serve(&args[1..]);
    }
    let options = match parse(&args) {
        Ok(options) => options,
        Err(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(Some(reason)) => {
            eprintln!("parallel_vs_async: {reason} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("parallel_vs_async: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `cargo run --release -- FLAG` knows `FLAG` (such as `--quick`).
/// It asks the parser itself rather than a second list of names, so the
/// docs test that calls it cannot drift from what the binary accepts.
pub fn accepts_flag(flag: &str) -> bool {
    !matches!(parse(&[OsString::from(flag)]), Err(Some(reason)) if reason == unknown_argument(flag))
}

fn unknown_argument(arg: &str) -> String {
    format!("unknown argument '{arg}'")
}

fn parse(args: &[OsString]) -> Result<Options, Option<String>> {
    let mut options = Options {
        quick: false,
        json: false,
        scenarios: ["cpu", "wait", "fair", "memory"].map(String::from).to_vec(),
        duration: Duration::ZERO,
        wait_clients: 1000,
        idle_connections: 0,
    };
    let mut args = args.iter().map(|a| a.to_string_lossy().into_owned());
    let number = |name: &str, value: Option<String>, max: u64| -> Result<u64, Option<String>> {
        value
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| Some(format!("{name} needs a whole number from 1 to {max}")))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(None),
            "--quick" => options.quick = true,
            "--json" => options.json = true,
            "--scenarios" => {
                let list = args.next().unwrap_or_default();
                options.scenarios = list.split(',').map(str::to_string).collect();
                if let Some(bad) = options
                    .scenarios
                    .iter()
                    .find(|s| !["cpu", "wait", "fair", "memory"].contains(&s.as_str()))
                {
                    return Err(Some(format!(
                        "unknown scenario '{bad}' (cpu, wait, fair, memory)"
                    )));
                }
            }
            "--duration" => {
                options.duration = Duration::from_secs(number("--duration", args.next(), 600)?)
            }
            "--clients" => {
                options.wait_clients = number("--clients", args.next(), 50_000)? as usize
            }
            "--idle-connections" => {
                options.idle_connections =
                    number("--idle-connections", args.next(), 50_000)? as usize
            }
            other => return Err(Some(unknown_argument(other))),
        }
    }
    if options.duration.is_zero() {
        options.duration = Duration::from_secs(if options.quick { 1 } else { 5 });
    }
    if options.idle_connections == 0 {
        options.idle_connections = if options.quick { 1000 } else { 5000 };
    }
    Ok(options)
}

fn run(options: &Options) -> std::io::Result<()> {
    let cores = num_cpus::get();
    let limit = loadgen::raise_open_file_limit();
    let started = Instant::now();
    let mut rows = Vec::new();
    let progress = |text: String| {
        if !options.json {
            eprintln!("[{:>5.1}s] {text}", started.elapsed().as_secs_f64());
        }
    };
    let wants = |name: &str| options.scenarios.iter().any(|s| s == name);
    let d = options.duration;

    if wants("cpu") {
        for setup in [
            Setup::Pool { workers: 1 },
            Setup::Pool { workers: cores },
            Setup::Loop,
            Setup::Offload { workers: cores },
        ] {
            progress(format!(
                "cpu: {} clients of IMAGE blur 512 512 on {}",
                cores,
                setup.label()
            ));
            let report = load(setup, cores, Workload::Blur { side: 512 }, d)?;
            rows.push(Row {
                scenario: "cpu",
                setup,
                report: Some(report),
                bytes_per_connection: None,
                note: String::new(),
            });
        }
    }
    if wants("wait") {
        let clients = within_file_limit(options.wait_clients, limit, "clients");
        for setup in [Setup::Pool { workers: cores }, Setup::Loop] {
            progress(format!(
                "wait: {clients} clients of DB {{i}} 50 on {}",
                setup.label()
            ));
            let report = load(setup, clients, Workload::Db { delay_ms: 50 }, d)?;
            rows.push(Row {
                scenario: "wait",
                setup,
                report: Some(report),
                bytes_per_connection: None,
                note: String::new(),
            });
        }
    }
    if wants("fair") {
        for setup in [
            Setup::Pool { workers: cores },
            Setup::Loop,
            Setup::Offload { workers: cores },
        ] {
            progress(format!(
                "fair: 4 PING clients beside {cores} IMAGE blur 2048 clients on {}",
                setup.label()
            ));
            let (pings, images) = fairness(setup, cores, d)?;
            let note = format!("image jobs/s {:.1}", images.requests_per_sec());
            rows.push(Row {
                scenario: "fair",
                setup,
                report: Some(pings),
                bytes_per_connection: None,
                note,
            });
        }
    }
    if wants("memory") {
        let connections = within_file_limit(options.idle_connections, limit, "idle connections");
        for setup in [
            Setup::Pool {
                workers: connections,
            },
            Setup::Loop,
        ] {
            progress(format!(
                "memory: {connections} idle connections on {}",
                setup.label()
            ));
            let bytes = idle_memory(setup, connections)?;
            let note = format!("{connections} idle connections, RSS from /proc");
            rows.push(Row {
                scenario: "memory",
                setup,
                report: None,
                bytes_per_connection: Some(bytes),
                note,
            });
        }
    }
    progress("done".to_string());
    if options.json {
        println!("{}", to_json(&rows));
    } else {
        print!("{}", table(&rows));
        print!("{}", reading(&rows, cores));
    }
    Ok(())
}

/// How many of `wanted` connections fit the open-file limit: each one is a
/// descriptor here and one in the server (the same process, or a child that
/// inherits the limit), and a hundred are kept for everything else.
fn within_file_limit(wanted: usize, limit: u64, what: &str) -> usize {
    let fits = (limit.saturating_sub(100) / 2) as usize;
    if wanted > fits {
        eprintln!(
            "open-file limit {limit} allows only {fits} {what}; raise it with `ulimit -n 65536`"
        );
    }
    wanted.min(fits).max(1)
}

fn load(
    setup: Setup,
    clients: usize,
    workload: Workload,
    duration: Duration,
) -> std::io::Result<LoadReport> {
    let server = Running::start(setup)?;
    let spec = LoadSpec {
        addr: server.addr(),
        clients,
        pipeline: 1,
        workload,
        duration,
        max_requests: None,
    };
    let report = loadgen::run(&spec);
    server.stop();
    report
}

/// PING latency from 4 clients while `cores` others keep big blurs running.
fn fairness(
    setup: Setup,
    cores: usize,
    duration: Duration,
) -> std::io::Result<(LoadReport, LoadReport)> {
    let server = Running::start(setup)?;
    let addr = server.addr();
    // The image load outlasts the PING run and its grace period, so every
    // PING is measured while the image jobs are running.
    let image_duration =
        duration + duration.min(Duration::from_secs(3)) + Duration::from_millis(500);
    let images = std::thread::spawn(move || {
        let spec = LoadSpec {
            addr,
            clients: cores,
            pipeline: 1,
            workload: Workload::Blur { side: 2048 },
            duration: image_duration,
            max_requests: None,
        };
        loadgen::run(&spec)
    });
    // Let the image clients take their places first, as in a busy server.
    std::thread::sleep(Duration::from_millis(100));
    let spec = LoadSpec {
        addr,
        clients: 4,
        pipeline: 1,
        workload: Workload::Ping,
        duration,
        max_requests: None,
    };
    let pings = loadgen::run(&spec);
    let images = images
        .join()
        .map_err(|_| std::io::Error::other("image load thread failed"))?;
    server.stop();
    Ok((pings?, images?))
}

/// Resident memory per idle connection, from the server process's RSS
/// before and after `connections` clients connect and each get one answer.
fn idle_memory(setup: Setup, connections: usize) -> std::io::Result<f64> {
    let exe = std::env::current_exe()?;
    let mut command = Command::new(exe);
    command.arg("--serve");
    match setup {
        Setup::Pool { workers } => command.args([
            "thread_pool",
            "--workers",
            &workers.to_string(),
            "--queue",
            "0",
        ]),
        _ => command.args([
            "event_loop",
            "--max-connections",
            &(connections + 10).to_string(),
        ]),
    };
    command
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = KillOnDrop(command.spawn()?);
    let mut stdout = BufReader::new(
        child
            .0
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("no stdout"))?,
    );
    let mut first = String::new();
    stdout.read_line(&mut first)?;
    let addr: SocketAddr = first
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("server did not start: {first:?}")))?;
    // The pool starts its threads at once; give them a moment to settle.
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_bytes(child.0.id())?;
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"PING\n")?;
        let mut pong = [0u8; 5];
        stream.read_exact(&mut pong)?;
        held.push(stream);
    }
    let after = rss_bytes(child.0.id())?;
    drop(held);
    Ok((after as f64 - before as f64) / connections as f64)
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Resident memory of process `pid`, from `/proc/PID/status` (Linux).
pub fn rss_bytes(pid: u32) -> std::io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| std::io::Error::other("no VmRSS in /proc status"))
}

fn serve(args: &[OsString]) -> ExitCode {
    let rest = args.iter().skip(1).cloned();
    match args.first().and_then(|a| a.to_str()) {
        Some("thread_pool") => thread_pool_server::main_with_args(rest),
        Some("event_loop") => event_loop_server::main_with_args(rest),
        _ => {
            eprintln!("parallel_vs_async: --serve takes thread_pool or event_loop");
            ExitCode::from(2)
        }
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| format!("{v:.1}"))
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<8} {:<28} {:>10} {:>9} {:>9} {:>8} {:>8} {:>11}  notes",
        "scenario", "server", "req/s", "p50 ms", "p99 ms", "errors", "starved", "bytes/conn"
    );
    for row in rows {
        let (rps, p50, p99, errors, starved) = match &row.report {
            Some(r) => (
                format!("{:.0}", r.requests_per_sec()),
                ms(r.latency_ms(0.5)),
                ms(r.latency_ms(0.99)),
                (r.errors + r.unanswered).to_string(),
                r.starved_clients.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into(), "-".into(), "-".into()),
        };
        let bytes = row
            .bytes_per_connection
            .map_or("-".to_string(), |b| format!("{b:.0}"));
        let _ = writeln!(
            out,
            "{:<8} {:<28} {rps:>10} {p50:>9} {p99:>9} {errors:>8} {starved:>8} {bytes:>11}  {}",
            row.scenario,
            row.setup.label(),
            row.note
        );
    }
    out.push_str("\nerrors: wrong or ERR answers, and requests lost or unanswered; starved: clients that got no answer at all.\n");
    out
}

fn find<'a>(rows: &'a [Row], scenario: &str, pick: impl Fn(Setup) -> bool) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.scenario == scenario && pick(r.setup))
}

fn rps(row: Option<&Row>) -> Option<f64> {
    row.and_then(|r| r.report.as_ref())
        .map(LoadReport::requests_per_sec)
}

/// A few sentences reading the table: who won each scenario, by how much, why.
fn reading(rows: &[Row], cores: usize) -> String {
    let mut out = String::from("\nWhat it shows:\n");
    let is_pool_n = |s: Setup| matches!(s, Setup::Pool { workers } if workers > 1);
    if let (Some(pool), Some(one), Some(inline)) = (
        rps(find(rows, "cpu", is_pool_n)),
        rps(find(rows, "cpu", |s| s == Setup::Pool { workers: 1 })),
        rps(find(rows, "cpu", |s| s == Setup::Loop)),
    ) {
        let _ = writeln!(
            out,
            "- cpu: the pool ran {:.2}x the jobs of one worker and {:.2}x the inline loop: {cores} cores compute at once, \
             while the loop's one thread computes one job at a time.",
            pool / one,
            pool / inline
        );
    }
    if let (Some(pool), Some(event_loop)) = (
        rps(find(rows, "wait", |s| matches!(s, Setup::Pool { .. }))),
        rps(find(rows, "wait", |s| s == Setup::Loop)),
    ) {
        let _ = writeln!(
            out,
            "- wait: the loop answered {:.0}x the pool's requests/s. By Little's law, W workers each held 50 ms per query \
             serve at most 20*W = {} req/s, and a connection keeps its worker, so the other clients starve or are turned \
             away; the loop keeps every query waiting on a timer at once.",
            event_loop / pool.max(1e-9),
            20 * cores
        );
    }
    if let (Some(inline), Some(offload)) = (
        find(rows, "fair", |s| s == Setup::Loop)
            .and_then(|r| r.report.as_ref())
            .and_then(|r| r.latency_ms(0.99)),
        find(rows, "fair", |s| matches!(s, Setup::Offload { .. }))
            .and_then(|r| r.report.as_ref())
            .and_then(|r| r.latency_ms(0.99)),
    ) {
        let _ = writeln!(
            out,
            "- fair: PING p99 was {inline:.1} ms on the inline loop (about one 2048x2048 job, which stalls everyone) and \
             {offload:.1} ms with offload ({:.0}x lower); on the pool, the image clients hold the workers, so PINGs wait \
             for a free worker or are turned away.",
            inline / offload.max(1e-3)
        );
    }
    let bytes =
        |pick: fn(Setup) -> bool| find(rows, "memory", pick).and_then(|r| r.bytes_per_connection);
    if let (Some(pool), Some(event_loop)) = (
        bytes(|s| matches!(s, Setup::Pool { .. })),
        bytes(|s| s == Setup::Loop),
    ) {
        let _ = writeln!(
            out,
            "- memory: an idle connection cost {pool:.0} bytes of RSS on the pool (a thread and its stack) and \
             {event_loop:.0} on the loop (a socket's state)."
        );
    }
    out
}

fn to_json(rows: &[Row]) -> String {
    let num = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.3}"));
    let items: Vec<String> = rows
        .iter()
        .map(|row| {
            let r = row.report.as_ref();
            format!(
                "{{\"scenario\":\"{}\",\"server\":\"{}\",\"requests_per_sec\":{},\"p50_ms\":{},\"p90_ms\":{},\"p99_ms\":{},\"max_ms\":{},\
                 \"answered\":{},\"errors\":{},\"unanswered\":{},\"starved_clients\":{},\"bytes_per_connection\":{}}}",
                row.scenario,
                row.setup.label(),
                num(r.map(LoadReport::requests_per_sec)),
                num(r.and_then(|r| r.latency_ms(0.5))),
                num(r.and_then(|r| r.latency_ms(0.9))),
                num(r.and_then(|r| r.latency_ms(0.99))),
                num(r.and_then(|r| r.latency_ms(1.0))),
                r.map_or(0, |r| r.answered),
                r.map_or(0, |r| r.errors),
                r.map_or(0, |r| r.unanswered),
                r.map_or(0, |r| r.starved_clients),
                num(row.bytes_per_connection),
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}
