//! `loadgen`: the comparison's load generator on its own, to point at any
//! server (these two, or a tokio baseline) and get one line of numbers.
//!
//! The interface is kept stable on purpose: colleagues script side-by-side
//! runs with exactly these flags and parse exactly this output.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use parallel_vs_async::loadgen::{self, Arrivals, Connect, LoadReport, LoadSpec, Workload};

const USAGE: &str = "\
A load generator. Closed loop (the default): each client sends a request (or N
pipelined), waits for the answers, and sends again. Open loop (--rate): requests
leave on a fixed schedule whatever has come back, and latency counts from when
each was due. Every client connects before the clock starts, unless --connect burst.

Usage: loadgen [FLAGS]

Flags:
  --addr HOST:PORT     server to load [127.0.0.1:7879]
  --clients N          connections, 1 to 50000 [100]
  --request TEXT       line protocol request, {i} replaced by a counter shared by all
                       clients [PING]; with --http, a path [/ping], e.g. '/db/{i}?delay_ms=10'
  --duration SECS      seconds of sending, 1 to 3600 [5]; answers may arrive up to 3 s later
  --pipeline N         closed loop: requests each client sends before waiting, 1 to 1000 [1]
  --max-requests N     stop sending after N requests in all [no limit]
  --threads N          generator threads, each with its own poll and share of the
                       clients, 1 to 1024 [half the cores this process may use, at least 1]
  --rate R             open loop: R requests/s over all clients, pipelined on a connection
                       when answers are slow; latency from each request's due time [closed loop]
  --connect MODE       paced: all connected before the clock starts, never overflowing the
                       server's accept queue; burst: all at once, latency from the first
                       connect [paced]
  --http               HTTP/1.1 keep-alive GETs (Host: 127.0.0.1); 2xx counts as answered
  --json               print one JSON object instead of one line
  -h, --help           print this and exit

Output: req/s (answered requests over the time to the last answer), p50 and p99
latency in ms, errors (wrong or ERR answers, non-2xx statuses, requests lost with
their connection, and requests unanswered at the end), answered.
In an open loop, req/s is the achieved rate, printed beside the asked one in --json.
A warning goes to stderr when a generator thread was busy over 90% of the run:
the number may then be the generator's limit, not the server's.
Exit status: 0 after a run, 1 if no client could connect, 2 on a bad flag.
";

struct Options {
    spec: LoadSpec,
    json: bool,
}

enum ParseOutcome {
    Run(Options),
    Help,
    Bad(String),
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        ParseOutcome::Run(options) => options,
        ParseOutcome::Help => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        ParseOutcome::Bad(reason) => {
            eprintln!("loadgen: {reason} (see --help)");
            return ExitCode::from(2);
        }
    };
    loadgen::raise_open_file_limit();
    let report = match loadgen::run(&options.spec) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    if report.connected == 0 {
        eprintln!("loadgen: could not connect to {}", options.spec.addr);
        return ExitCode::FAILURE;
    }
    if let Some(warning) = report.saturation_warning() {
        eprintln!("loadgen: {warning}");
    }
    if options.json {
        println!("{}", json(&options.spec, &report));
    } else {
        println!("{}", line(&report));
    }
    ExitCode::SUCCESS
}

fn parse(args: impl Iterator<Item = String>) -> ParseOutcome {
    match parse_flags(args) {
        Ok(Some(options)) => ParseOutcome::Run(options),
        Ok(None) => ParseOutcome::Help,
        Err(reason) => ParseOutcome::Bad(reason),
    }
}

fn parse_flags(mut args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 7879));
    let (mut clients, mut duration, mut pipeline) = (100u64, 5u64, 1u64);
    let mut threads = None;
    let mut arrivals = Arrivals::Closed;
    let mut connect = Connect::Paced;
    let mut max_requests = None;
    let mut request: Option<String> = None;
    let (mut http, mut json) = (false, false);
    fn number(name: &str, value: Option<String>, max: u64) -> Result<u64, String> {
        value
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| format!("{name} needs a whole number from 1 to {max}"))
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => {
                let value = args.next().unwrap_or_default();
                addr = value.parse().map_err(|_| {
                    format!("--addr needs HOST:PORT with an IP address, not '{value}'")
                })?;
            }
            "--clients" => clients = number("--clients", args.next(), 50_000)?,
            "--duration" => duration = number("--duration", args.next(), 3600)?,
            "--pipeline" => pipeline = number("--pipeline", args.next(), 1000)?,
            "--max-requests" => {
                max_requests = Some(number("--max-requests", args.next(), u64::MAX)?)
            }
            "--request" => {
                let value = args.next().filter(|v| !v.trim().is_empty());
                request = Some(value.ok_or("--request needs a request")?);
            }
            "--threads" => threads = Some(number("--threads", args.next(), 1024)? as usize),
            "--rate" => {
                let value = args.next().unwrap_or_default();
                let rate = value
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (1.0..=10_000_000.0).contains(r))
                    .ok_or_else(|| {
                        format!(
                            "--rate needs requests per second from 1 to 10000000, not '{value}'"
                        )
                    })?;
                arrivals = Arrivals::Open { rate };
            }
            "--connect" => {
                connect = match args.next().as_deref() {
                    Some("paced") => Connect::Paced,
                    Some("burst") => Connect::Burst,
                    _ => return Err("--connect takes paced or burst".to_string()),
                }
            }
            "--http" => http = true,
            "--json" => json = true,
            other => return Err(format!("unknown argument '{other}'")),
        }
    }
    let workload = match (http, request) {
        (true, None) => Workload::Http {
            path: "/ping".into(),
        },
        (true, Some(path)) if path.starts_with('/') => Workload::Http { path },
        (true, Some(path)) => {
            return Err(format!(
                "with --http, --request is a path starting with '/', not '{path}'"
            ))
        }
        (false, None) => Workload::Ping,
        (false, Some(line)) if line.contains('\n') => {
            return Err("--request is one line".to_string())
        }
        (false, Some(line)) => Workload::from_template(&line),
    };
    let duration = Duration::from_secs(duration);
    let base = LoadSpec::new(addr, clients as usize, workload, duration);
    let spec = LoadSpec {
        pipeline: pipeline as usize,
        max_requests,
        threads: threads.unwrap_or(base.threads),
        arrivals,
        connect,
        ..base
    };
    Ok(Some(Options { spec, json }))
}

fn ms(report: &LoadReport, quantile: f64) -> String {
    report
        .latency_ms(quantile)
        .map_or("-".to_string(), |v| format!("{v:.2}"))
}

fn line(report: &LoadReport) -> String {
    format!(
        "req/s {:.1}  p50 {} ms  p99 {} ms  errors {}  answered {}",
        report.requests_per_sec(),
        ms(report, 0.5),
        ms(report, 0.99),
        report.errors + report.unanswered,
        report.answered
    )
}

fn json(spec: &LoadSpec, report: &LoadReport) -> String {
    let n = |v: Option<f64>| v.map_or("null".to_string(), |v| format!("{v:.3}"));
    format!(
        "{{\"addr\":\"{}\",\"clients\":{},\"connected\":{},\"pipeline\":{},\"http\":{},\"requests_per_sec\":{:.3},\
         \"p50_ms\":{},\"p90_ms\":{},\"p99_ms\":{},\"max_ms\":{},\"errors\":{},\"unanswered\":{},\"answered\":{},\
         \"starved_clients\":{},\"elapsed_s\":{:.3},\"connect_s\":{:.3},\"sent\":{},\"threads\":{},\
         \"arrivals\":\"{}\",\"asked_rate\":{},\"achieved_rate\":{:.3},\"connect\":\"{}\",\
         \"generator_cpu_s\":{:.3},\"generator_cpu_us_per_request\":{},\"generator_busiest\":{:.3},\
         \"generator_saturated\":{}}}",
        spec.addr,
        spec.clients,
        report.connected,
        spec.pipeline,
        matches!(spec.workload, Workload::Http { .. }),
        report.requests_per_sec(),
        n(report.latency_ms(0.5)),
        n(report.latency_ms(0.9)),
        n(report.latency_ms(0.99)),
        n(report.latency_ms(1.0)),
        report.errors + report.unanswered,
        report.unanswered,
        report.answered,
        report.starved_clients,
        report.elapsed.as_secs_f64(),
        report.connect_time.as_secs_f64(),
        report.sent,
        report.generator.threads,
        match spec.arrivals {
            Arrivals::Closed => "closed",
            Arrivals::Open { .. } => "open",
        },
        n(report.asked_rate),
        report.requests_per_sec(),
        match spec.connect {
            Connect::Paced => "paced",
            Connect::Burst => "burst",
        },
        report.generator.cpu_secs,
        n(report.generator_cpu_us_per_request()),
        report.generator.busiest,
        report.generator_saturated(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> ParseOutcome {
        parse(args.iter().map(|a| a.to_string()))
    }

    #[test]
    fn flags_make_a_spec() {
        let ParseOutcome::Run(options) = parsed(&[
            "--addr",
            "127.0.0.1:7878",
            "--clients",
            "1000",
            "--request",
            "DB {i} 10",
            "--duration",
            "2",
            "--pipeline",
            "4",
            "--json",
        ]) else {
            panic!("should parse");
        };
        assert_eq!(options.spec.clients, 1000);
        assert_eq!(options.spec.pipeline, 4);
        assert_eq!(options.spec.workload, Workload::Db { delay_ms: 10 });
        assert!(options.json);
        let ParseOutcome::Run(options) = parsed(&["--http", "--request", "/db/{i}?delay_ms=10"])
        else {
            panic!("should parse");
        };
        assert!(matches!(options.spec.workload, Workload::Http { .. }));
        let ParseOutcome::Run(options) =
            parsed(&["--threads", "3", "--rate", "2500", "--connect", "burst"])
        else {
            panic!("should parse");
        };
        assert_eq!(options.spec.threads, 3);
        assert_eq!(options.spec.arrivals, Arrivals::Open { rate: 2500.0 });
        assert_eq!(options.spec.connect, Connect::Burst);
    }

    #[test]
    fn bad_flags_are_one_line_errors() {
        for args in [
            &["--clients", "0"][..],
            &["--clients"],
            &["--addr", "localhost"],
            &["--http", "--request", "PING"],
            &["--frob"],
            &["--threads", "0"],
            &["--rate", "fast"],
            &["--rate", "0"],
            &["--connect", "later"],
        ] {
            let ParseOutcome::Bad(reason) = parsed(args) else {
                panic!("{args:?} should be refused");
            };
            assert!(!reason.contains('\n'));
        }
        assert!(matches!(parsed(&["--help"]), ParseOutcome::Help));
    }
}
