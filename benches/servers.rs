//! Both servers under the criterion harness: one request's round trip, and
//! throughput of the waiting workload at a few levels of concurrency.
//!
//! Round trips show the fixed cost of each model (a worker's blocking read
//! versus a trip through the poll loop), in the line protocol and, for
//! `PING`, in HTTP/1.1 on the same port (`http_get_ping`: what parsing a
//! request head and writing a status line and headers add). The throughput group drives the
//! load generator through `iter_custom`: one criterion "iteration" is one
//! `DB {i} 10` answered, so criterion's elem/s is requests per second.
//! Here the pool gets one worker per client, its best case for waiting; the
//! `wait` scenario of `cargo run --release` shows the default pool instead.
//! At 128 clients the loop also runs with `--loops 2` (`event_loop_x2`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use parallel_vs_async::http;
use parallel_vs_async::loadgen::{self, LoadSpec, Workload};

enum Server {
    Pool(thread_pool_server::ServerHandle),
    Loop(event_loop_server::ServerHandle),
}

impl Server {
    fn start(model: &str, workers: usize) -> Server {
        let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
        if model == "thread_pool" {
            let mut config = thread_pool_server::Config::new(addr);
            config.workers = workers;
            Server::Pool(thread_pool_server::start(config).expect("pool starts"))
        } else {
            let mut config = event_loop_server::Config::new(addr);
            // "event_loop_x2": two loops, one per core of this machine.
            config.loops = if model == "event_loop_x2" { 2 } else { 1 };
            Server::Loop(event_loop_server::start(config).expect("loop starts"))
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Server::Pool(s) => s.local_addr(),
            Server::Loop(s) => s.local_addr(),
        }
    }

    fn stop(self) {
        match self {
            Server::Pool(s) => s.shutdown(),
            Server::Loop(s) => s.shutdown(),
        };
    }
}

const MODELS: [&str; 2] = ["thread_pool", "event_loop"];

/// The waiting workload also compares one loop with two, where there are
/// enough clients to keep two loops busy.
fn models_for(clients: usize) -> &'static [&'static str] {
    if clients >= 128 {
        &["thread_pool", "event_loop", "event_loop_x2"]
    } else {
        &MODELS
    }
}

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("round_trip");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for model in MODELS {
        let server = Server::start(model, 2);
        let mut line = String::new();
        let mut pending = Vec::new();
        let http_ping = http::get("/ping");
        for (name, request) in [
            ("ping", "PING\n"),
            ("image_blur_64", "IMAGE blur 64 64 1\n"),
            ("db_0ms", "DB 0 0\n"),
            ("http_get_ping", http_ping.as_str()),
        ] {
            // A connection per request kind: a connection keeps the
            // dialect its first bytes chose.
            let stream = TcpStream::connect(server.addr()).unwrap();
            stream.set_nodelay(true).unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut reader = BufReader::new(stream);
            let http = request.starts_with("GET ");
            group.bench_function(BenchmarkId::new(name, model), |b| {
                b.iter(|| {
                    writer.write_all(request.as_bytes()).unwrap();
                    if http {
                        read_http_response(&mut reader, &mut pending);
                    } else {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                    }
                })
            });
        }
        server.stop();
    }
    group.finish();
}

/// Reads one response, framed by the load generator's own parser
/// (`src/http.rs`); what arrives after it stays in `pending`.
fn read_http_response(reader: &mut impl Read, pending: &mut Vec<u8>) {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some((_, used)) = http::parse_response(pending).expect("a framed response") {
            pending.drain(..used);
            return;
        }
        let n = reader.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed the connection");
        pending.extend_from_slice(&chunk[..n]);
    }
}

fn waiting_throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("db_10ms_throughput");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for clients in [2usize, 16, 128] {
        group.throughput(Throughput::Elements(1));
        for &model in models_for(clients) {
            let server = Server::start(model, clients);
            let addr = server.addr();
            group.bench_function(BenchmarkId::new(model, format!("{clients}_clients")), |b| {
                b.iter_custom(|iters| {
                    let spec = LoadSpec {
                        max_requests: Some(iters),
                        ..LoadSpec::new(
                            addr,
                            clients,
                            Workload::Db { delay_ms: 10 },
                            Duration::from_secs(60),
                        )
                    };
                    let report = loadgen::run(&spec).expect("load runs");
                    assert_eq!(
                        report.errors + report.unanswered,
                        0,
                        "the bench load must be answered in full"
                    );
                    report.elapsed
                })
            });
            server.stop();
        }
    }
    group.finish();
}

criterion_group!(benches, round_trip, waiting_throughput);
criterion_main!(benches);
