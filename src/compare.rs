//! `cargo run --release`: the two models side by side, each at its best,
//! in numbers.
//!
//! Each scenario is one kind of load, run against each server set-up in
//! turn, measured by the load generator:
//!
//! | scenario | load | what it shows |
//! |---|---|---|
//! | cpu | `IMAGE blur 512 512 {i}`, one client per core | the pool uses every core; one loop, one |
//! | wait | `DB {i} 50` from 1,000 clients | a CPU-sized pool is capped by Little's law; a thread per connection and the loop are not |
//! | sweep | `DB {i} 10` from 10 to 5,000 clients | where a thread per connection starts to cost more than a loop |
//! | fair | PINGs while others run 2048x2048 blurs | threads are preempted; a loop is cooperative |
//! | memory | 5,000 idle connections | what one waiting client costs each model |
//! | latency | an open loop from below to past each model's capacity | where each model's latency turns up (Little's law) |
//!
//! Every server runs in a process of its own (`server_process.rs`), so its
//! CPU time, context switches and memory can be read from `/proc` without
//! the load generator's in them. With 4 cores or more, the server and the
//! generator run on disjoint halves of them (`placement.rs`), and "N" in
//! every set-up is the server's half.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::latency;
use crate::loadgen::{self, LoadReport, LoadSpec, Workload};
use crate::placement::Placement;
pub use crate::procstat::rss_bytes;
use crate::procstat::{self, CpuSample};
use crate::report::{self, Memory, Row, Scenario};
use crate::server_process::{self, ServerProcess};
use crate::setup::{Launch, Setup};

struct Options {
    quick: bool,
    json: bool,
    scenarios: Vec<Scenario>,
    duration: Duration,
    wait_clients: usize,
    idle_connections: usize,
    /// The waiting scenarios over HTTP (`GET /db/{i}?delay_ms=D`, keep-alive)
    /// instead of the line protocol: same servers, same scheduling.
    http: bool,
    /// `--live HOST:PORT`: every server started gets `--stats-addr` there,
    /// so one open `/live` page follows the comparison set-up by set-up.
    live: Option<String>,
}

const USAGE: &str = "\
Runs both servers under six kinds of load and prints them side by side.

Usage: parallel_vs_async [FLAGS]

Flags:
  --quick                 about 30 seconds in all (shorter runs, fewer connections and rows)
  --json                  print the results as JSON instead of a table
  --scenarios LIST        comma-separated, from cpu,wait,sweep,fair,memory,latency [all]
  --duration SECS         seconds of load per run, 1 to 600; sweep points run 0.4 of it
                          (0.3 with --quick), latency points 0.8 s (0.3 s),
                          --quick PING runs half [4; 1 with --quick]
  --clients N             clients of the wait scenario, 1 to 50000 [1000]
  --idle-connections N    connections of the memory scenario, 1 to 50000 [5000; 1000 with --quick]
  --http                  wait and sweep over HTTP/1.1 (GET /db/{i}?delay_ms=D, keep-alive)
  --live HOST:PORT        serve each of our servers' live view there (--stats-addr), one
                          after another: open http://HOST:PORT/live to watch the runs
  -h, --help              print this and exit

The sweep runs 10, 100, 1000 and 5000 clients (--quick: up to 1000).
Writes a chart to target/compare/chart.svg (req/s and p99 over the sweep,
jobs/s on CPU work) and, with the latency scenario, target/compare/latency.svg
(p50 and p99 against the offered rate), and prints their paths.
With 4 cores or more, the servers run on the first half of them and the load
generator on the rest (one thread per core), each pinned; with fewer they share.
";

/// What every run of one comparison shares: where each side runs, and how
/// many generator threads load the server.
pub struct Harness {
    pub placement: Placement,
    /// Whether `node` is installed, for the Node.js rows.
    pub node: bool,
    /// `--quick`: the Node.js rows shrink to one process on one loop.
    pub quick: bool,
    /// Where our servers serve their live view, if asked (`--live`).
    pub live: Option<String>,
}

impl Harness {
    /// Starts a server process for `setup`, with room for `clients`, on
    /// the server's cores.
    pub fn start(&self, setup: Setup, clients: usize) -> io::Result<ServerProcess> {
        match setup.launch(clients) {
            Launch::Ours(serve) => {
                let mut args = self.placement.serve_args();
                args.extend(serve);
                // One set-up at a time, so each can take the same address
                // in turn (std's listeners set SO_REUSEADDR on Unix).
                if let Some(live) = &self.live {
                    args.extend(["--stats-addr".to_string(), live.clone()]);
                }
                ServerProcess::start(&args)
            }
            Launch::Node(args) => ServerProcess::start_node(&args, self.placement.server_pin()),
        }
    }

    /// Runs `spec` against `server`, and reads what the server process (and
    /// any process below it) spent meanwhile.
    pub fn load(
        &self,
        server: &ServerProcess,
        spec: &LoadSpec,
    ) -> io::Result<(LoadReport, CpuSample)> {
        let before = CpuSample::read_tree(server.pid())?;
        let report = loadgen::run(spec)?;
        let cost = CpuSample::read_tree(server.pid())?.since(before);
        Ok((report, cost))
    }

    /// Node.js compiles its hot code while it runs (V8's JIT), so a fresh
    /// process starts slow and speeds up: a production server is warm. A
    /// Node set-up gets half a second of the same work, unmeasured, first
    /// (spread over every `--cluster` process, since each connection goes
    /// to the next one). Our servers are compiled ahead of time and get none.
    pub fn warm_up(
        &self,
        server: &ServerProcess,
        setup: Setup,
        clients: usize,
        workload: &Workload,
    ) -> io::Result<()> {
        if !setup.is_node() {
            return Ok(());
        }
        let warm_up = if self.quick {
            NODE_WARM_UP / 2
        } else {
            NODE_WARM_UP
        };
        let spec = LoadSpec {
            grace: Duration::from_millis(500),
            ..self.spec(server, clients.min(64), workload.clone(), warm_up)
        };
        loadgen::run(&spec).map(|_| ())
    }

    /// `setups` for `scenario`, less the Node.js ones where node is not
    /// installed (and, with `--quick`, all but plain `node.js` in the cpu
    /// and wait scenarios: quick is a first look, in 30 seconds; likewise
    /// the async fn loop only where the work is waiting).
    fn runnable(&self, scenario: Scenario, setups: impl IntoIterator<Item = Setup>) -> Vec<Setup> {
        let quick_node = matches!(scenario, Scenario::Cpu | Scenario::Wait);
        let waiting = matches!(scenario, Scenario::Wait | Scenario::Sweep);
        let wanted = |s: &Setup| match s {
            Setup::AsyncLoop => !self.quick || waiting,
            _ if !s.is_node() => true,
            Setup::Node { offload: 0 } => self.node && (!self.quick || quick_node),
            _ => self.node && !self.quick,
        };
        setups.into_iter().filter(wanted).collect()
    }

    /// A load spec with the generator's threads (never more than clients).
    pub fn spec(
        &self,
        server: &ServerProcess,
        clients: usize,
        workload: Workload,
        duration: Duration,
    ) -> LoadSpec {
        LoadSpec {
            threads: self.placement.generator_threads().min(clients),
            ..LoadSpec::new(server.addr, clients, workload, duration)
        }
    }
}

/// Unmeasured work a Node.js server gets before a measured run.
const NODE_WARM_UP: Duration = Duration::from_millis(500);

/// Client counts of the sweep. `--quick` stops at 1,000: 5,000 threads
/// take seconds to start, connect and tear down, more than the run itself.
const SWEEP_CLIENTS: [usize; 4] = [10, 100, 1000, 5000];
const QUICK_SWEEP_CLIENTS: [usize; 3] = [10, 100, 1000];

pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    // `--serve MODEL ARGS...`: be one server process of the comparison.
    if args.first().is_some_and(|a| a == "--serve") {
        return server_process::serve(&args[1..]);
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

/// Who competes on waiting work: the pool sized for CPU, the pool given a
/// thread per client, one loop, a loop per core, and Node.js.
fn waiting_setups(cores: usize, clients: usize) -> Vec<Setup> {
    vec![
        Setup::pool(cores),
        Setup::ThreadPerConnection { threads: clients },
        Setup::Loop,
        Setup::Loops {
            loops: cores,
            offload: 0,
        },
        Setup::Node { offload: 0 },
    ]
}

/// The waiting workload, in the line protocol or over HTTP.
fn db_workload(delay_ms: u64, http: bool) -> Workload {
    if http {
        Workload::Http {
            path: format!("/db/{{i}}?delay_ms={delay_ms}"),
        }
    } else {
        Workload::Db { delay_ms }
    }
}

fn unknown_argument(arg: &str) -> String {
    format!("unknown argument '{arg}'")
}

fn parse(args: &[OsString]) -> Result<Options, Option<String>> {
    let mut options = Options {
        quick: false,
        json: false,
        scenarios: Scenario::ALL.to_vec(),
        duration: Duration::ZERO,
        wait_clients: 1000,
        idle_connections: 0,
        http: false,
        live: None,
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
            "--http" => options.http = true,
            "--scenarios" => {
                let list = args.next().unwrap_or_default();
                options.scenarios = list
                    .split(',')
                    .map(|name| {
                        Scenario::from_name(name).ok_or_else(|| {
                            Some(format!(
                                "unknown scenario '{name}' (cpu, wait, sweep, fair, memory, latency)"
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?;
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
            "--live" => {
                let addr = args.next().unwrap_or_default();
                if addr.parse::<std::net::SocketAddr>().is_err() {
                    return Err(Some(format!(
                        "--live needs HOST:PORT, such as 127.0.0.1:9000, not '{addr}'"
                    )));
                }
                options.live = Some(addr);
            }
            other => return Err(Some(unknown_argument(other))),
        }
    }
    if options.duration.is_zero() {
        options.duration = Duration::from_secs(if options.quick { 1 } else { 4 });
    }
    if options.idle_connections == 0 {
        options.idle_connections = if options.quick { 1000 } else { 5000 };
    }
    Ok(options)
}

fn run(options: &Options) -> io::Result<()> {
    let placement = Placement::for_cores(crate::os::allowed_cores());
    // Before any load thread or server process exists, so all inherit it.
    placement.pin_generator()?;
    let cores = placement.server_cores().len().max(1);
    let node = crate::server_process::node_available();
    if !node {
        eprintln!("node.js rows skipped: `node` is not on the PATH");
    }
    let harness = Harness {
        placement,
        node,
        quick: options.quick,
        live: options.live.clone(),
    };
    let h = &harness;
    let limit = loadgen::raise_open_file_limit();
    let started = Instant::now();
    let mut rows = Vec::new();
    // On stderr, so `--json` output stays clean: a line per run, so the
    // first command never looks stuck.
    let progress = |text: String| eprintln!("[{:>5.1}s] {text}", started.elapsed().as_secs_f64());
    let wants = |scenario: Scenario| options.scenarios.contains(&scenario);
    let d = options.duration;

    if wants(Scenario::Cpu) {
        let blur = Workload::Blur { side: 512 };
        for setup in h.runnable(
            Scenario::Cpu,
            [
                Setup::pool(1),
                Setup::pool(cores),
                Setup::Loop,
                Setup::Offload { workers: cores },
                // One loop per core computes in parallel by itself, each loop
                // its own clients' jobs: the best set-up for pure CPU work.
                Setup::Loops {
                    loops: cores,
                    offload: 0,
                },
                Setup::Loops {
                    loops: cores,
                    offload: cores,
                },
                Setup::Node { offload: 0 },
                Setup::Node { offload: cores },
                Setup::NodeCluster { processes: cores },
            ],
        ) {
            progress(format!(
                "cpu: {cores} clients of IMAGE blur 512 512 on {}",
                setup.label()
            ));
            rows.push(measured(h, Scenario::Cpu, setup, cores, blur.clone(), d)?);
        }
    }
    if wants(Scenario::Wait) {
        let clients = within_file_limit(options.wait_clients, limit, "clients");
        let mut setups = waiting_setups(cores, clients);
        setups.insert(3, Setup::AsyncLoop);
        for setup in h.runnable(Scenario::Wait, setups) {
            progress(format!(
                "wait: {clients} clients of DB {{i}} 50 on {}",
                setup.label()
            ));
            let db = db_workload(50, options.http);
            // Half as long: it only has to show it waits as the loop does,
            // and the whole run must stay within 3 minutes.
            let run = if setup == Setup::AsyncLoop { d / 2 } else { d };
            rows.push(measured(h, Scenario::Wait, setup, clients, db, run)?);
        }
    }
    if wants(Scenario::Sweep) {
        // Shorter runs: twenty of them.
        let point = d.mul_f64(if options.quick { 0.3 } else { 0.4 });
        let counts: &[usize] = if options.quick {
            &QUICK_SWEEP_CLIENTS
        } else {
            &SWEEP_CLIENTS
        };
        for &wanted in counts {
            let clients = within_file_limit(wanted, limit, "clients");
            // The CPU-sized pool is left out: the wait scenario shows its
            // Little's-law ceiling, and here it would only repeat it at
            // every point.
            let mut setups = waiting_setups(cores, clients);
            setups.retain(|s| *s != Setup::pool(cores));
            setups.push(Setup::NodeCluster { processes: cores });
            // Where thousands wait, the async fn loop beside the loop; below
            // that, neither it nor a loop per core says more than the one
            // loop does (and the run must stay within 3 minutes).
            if wanted >= 1000 {
                setups.insert(2, Setup::AsyncLoop);
            } else {
                setups.retain(|s| !matches!(s, Setup::Loops { .. }));
            }
            for setup in h.runnable(Scenario::Sweep, setups) {
                progress(format!(
                    "sweep: {clients} clients of DB {{i}} 10 on {}",
                    setup.label()
                ));
                let db = db_workload(10, options.http);
                rows.push(measured(h, Scenario::Sweep, setup, clients, db, point)?);
            }
        }
    }
    if wants(Scenario::Fair) {
        for setup in h.runnable(
            Scenario::Fair,
            [
                Setup::pool(cores),
                // A thread for each of the image clients and the 4 PING clients.
                Setup::ThreadPerConnection { threads: cores + 4 },
                Setup::Loop,
                Setup::AsyncLoop,
                Setup::Offload { workers: cores },
                Setup::Loops {
                    loops: cores,
                    offload: cores,
                },
                Setup::Node { offload: 0 },
                Setup::Node { offload: cores },
            ],
        ) {
            progress(format!(
                "fair: 4 PING clients beside {cores} IMAGE blur 2048 clients on {}",
                setup.label()
            ));
            // Quick: half a second of PINGs is still hundreds of them. The
            // async fn loop gets half too: it only has to show that it is
            // as cooperative as the loop.
            let pings = if options.quick || setup == Setup::AsyncLoop {
                d / 2
            } else {
                d
            };
            rows.push(fairness(h, setup, cores, pings)?);
        }
    }
    if wants(Scenario::Memory) {
        let connections = within_file_limit(options.idle_connections, limit, "idle connections");
        for setup in [
            Setup::ThreadPerConnection {
                threads: connections,
            },
            Setup::Loop,
            // In place of `event loop x N`, whose connections cost what
            // one loop's do: the async fn's futures beside the state
            // machines.
            Setup::AsyncLoop,
        ] {
            progress(format!(
                "memory: {connections} idle connections on {}",
                setup.label()
            ));
            rows.push(idle_memory(h, setup, connections)?);
        }
    }
    let mut job_secs = None;
    if wants(Scenario::Latency) {
        let run = latency::run(h, cores, options.quick, &|text| progress(text))?;
        job_secs = Some(run.job_secs);
        rows.extend(run.rows);
    }
    progress(format!("done in {:.0} s", started.elapsed().as_secs_f64()));
    let data = report::chart_data(&rows);
    let chart = crate::chart::write(&data);
    let latency_chart = crate::chart::write_latency(&data);
    if options.json {
        println!("{}", report::to_json(&rows));
    } else {
        print!("{}", report::table(&rows, &harness.placement));
        print!("{}", report::reading(&rows, cores));
        print!("{}", latency::reading(&rows, cores, job_secs));
    }
    match chart {
        Ok(path) => eprintln!("chart: {}", path.display()),
        Err(e) => eprintln!("parallel_vs_async: no chart: {e}"),
    }
    match latency_chart {
        Ok(Some(path)) => eprintln!("latency chart: {}", path.display()),
        Ok(None) => {}
        Err(e) => eprintln!("parallel_vs_async: no latency chart: {e}"),
    }
    Ok(())
}

/// How many of `wanted` connections fit the open-file limit: each one is a
/// descriptor here and one in the server (a child that inherits the
/// limit), and a hundred are kept for everything else.
fn within_file_limit(wanted: usize, limit: u64, what: &str) -> usize {
    let fits = (limit.saturating_sub(100) / 2) as usize;
    if wanted > fits {
        eprintln!(
            "open-file limit {limit} allows only {fits} {what}; raise it with `ulimit -n 65536`"
        );
    }
    wanted.min(fits).max(1)
}

/// Answers may come this long after sending stops: long enough for any
/// request here, short enough that starved clients do not stretch a run.
fn grace(duration: Duration) -> Duration {
    (duration / 2).min(Duration::from_secs(1))
}

/// One load against one server process, with the server's CPU time and
/// context switches over it (connecting included).
fn measured(
    harness: &Harness,
    scenario: Scenario,
    setup: Setup,
    clients: usize,
    workload: Workload,
    duration: Duration,
) -> io::Result<Row> {
    let server = harness.start(setup, clients)?;
    harness.warm_up(&server, setup, clients, &workload)?;
    let spec = LoadSpec {
        grace: grace(duration),
        ..harness.spec(&server, clients, workload, duration)
    };
    let (report, cost) = harness.load(&server, &spec)?;
    Ok(Row {
        cost: Some(cost),
        ..Row::new(scenario, setup, clients, Some(report))
    })
}

/// PING latency from 4 clients while `cores` others keep big blurs running.
fn fairness(harness: &Harness, setup: Setup, cores: usize, duration: Duration) -> io::Result<Row> {
    let server = harness.start(setup, cores + 4)?;
    harness.warm_up(&server, setup, cores, &Workload::Blur { side: 512 })?;
    let ping_grace = Duration::from_millis(300);
    // The image load runs until the PING run and its grace period are
    // over, so every PING is measured while the image jobs are running.
    let stop = Arc::new(AtomicBool::new(false));
    let image_spec = LoadSpec {
        stop: Some(Arc::clone(&stop)),
        ..harness.spec(
            &server,
            cores,
            Workload::Blur { side: 2048 },
            duration + Duration::from_secs(60),
        )
    };
    let images = std::thread::spawn(move || loadgen::run(&image_spec));
    // Let the image clients take their places first, as in a busy server.
    std::thread::sleep(Duration::from_millis(100));
    let spec = LoadSpec {
        grace: ping_grace,
        ..harness.spec(&server, 4, Workload::Ping, duration)
    };
    let pings = loadgen::run(&spec);
    stop.store(true, Ordering::Relaxed);
    let images = images
        .join()
        .map_err(|_| io::Error::other("image load thread failed"))??;
    let how = if setup.is_pool() {
        "threads preempted"
    } else {
        "loop cooperative"
    };
    Ok(Row {
        note: format!("image jobs/s {:.1}, {how}", images.requests_per_sec()),
        ..Row::new(Scenario::Fair, setup, cores + 4, Some(pings?))
    })
}

/// Resident memory per idle connection: the server process's RSS before
/// any server thread started, once the server runs, and after
/// `connections` clients connected and each got one answer.
fn idle_memory(harness: &Harness, setup: Setup, connections: usize) -> io::Result<Row> {
    let server = harness.start(setup, connections)?;
    // The pool has started its threads; give them a moment to run.
    std::thread::sleep(Duration::from_millis(300));
    let running = procstat::rss_bytes(server.pid())?;
    let mut held = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut stream = TcpStream::connect(server.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"PING\n")?;
        let mut pong = [0u8; 5];
        stream.read_exact(&mut pong)?;
        held.push(stream);
    }
    let after = procstat::rss_bytes(server.pid())?;
    let kernel_stack_after = procstat::kernel_stack_bytes();
    drop(held);
    let base = server.baseline;
    let per = |bytes: f64| bytes / connections as f64;
    let memory = Memory {
        rss_per_connection: per(after as f64 - base.rss_bytes as f64),
        rss_per_connection_before_clients: per(running as f64 - base.rss_bytes as f64),
        kernel_stack_per_connection: base
            .kernel_stack_bytes
            .zip(kernel_stack_after)
            .map(|(before, after)| per(after as f64 - before as f64)),
    };
    Ok(Row {
        memory: Some(memory),
        ..Row::new(Scenario::Memory, setup, connections, None::<LoadReport>)
    })
}
