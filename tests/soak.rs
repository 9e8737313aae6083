//! The soak: ignored by default, run with
//! `cargo test --release -- --ignored soak`.
//!
//! 2,000 connections on each server for 60 s: 1,800 well-behaved clients of
//! mixed PING, DB and small IMAGE requests (the load generator checks every
//! answer), and 200 misbehaving ones that reset connections with queries in
//! flight, half-close early, or trickle their requests a byte at a time.
//! Afterwards: no well-behaved request lost, the server's open descriptors
//! back to where they started, and its resident memory within 10% of what
//! it was after warm-up.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use parallel_vs_async::loadgen::{self, LoadSpec, Workload};
use support::reset_on_close;

mod support;

const RUN: Duration = Duration::from_secs(60);
const WARM_UP: Duration = Duration::from_secs(10);
const MISBEHAVING: usize = 200;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(model: &str, args: &[&str]) -> (Server, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parallel_vs_async"))
        .args(["--serve", model, "--addr", "127.0.0.1:0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    // The child reports its own memory baseline first (`baseline ...`,
    // see src/server_process.rs), then the server says where it listens.
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let addr = loop {
        let mut line = String::new();
        let read = stdout.read_line(&mut line).expect("server output");
        assert!(read > 0, "the server exited before listening");
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            break addr.parse().expect("an address after 'listening on'");
        }
    };
    (Server(child), addr)
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

fn rss_kb(pid: u32) -> u64 {
    parallel_vs_async::compare::rss_bytes(pid).expect("the server's RSS") / 1024
}

/// One misbehaving client, over and over until `until`: a reset with a
/// query in flight, an early half-close, a request trickled byte by byte.
fn misbehave(addr: SocketAddr, seed: usize, until: Instant) {
    let mut round = seed;
    while Instant::now() < until {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        match round % 3 {
            0 => {
                let _ = stream.write_all(format!("DB {round} 200\n").as_bytes());
                reset_on_close(&stream);
            }
            1 => {
                let _ = stream.write_all(b"PING\nDB 7 20");
                let _ = stream.shutdown(Shutdown::Write);
                let _ = stream.read_to_end(&mut Vec::new());
            }
            _ => {
                for byte in b"PING\n" {
                    let _ = stream.write_all(&[*byte]);
                    thread::sleep(Duration::from_millis(100));
                }
                let _ = stream.read(&mut [0u8; 16]);
            }
        }
        round += 3;
    }
}

fn soak(model: &str, args: &[&str]) {
    loadgen::raise_open_file_limit();
    let (server, addr) = start(model, args);
    let pid = server.0.id();
    let fds_at_start = open_fds(pid);
    let started = Instant::now();
    let until = started + RUN;
    let loads: Vec<_> = [
        Workload::Ping,
        Workload::Db { delay_ms: 50 },
        Workload::Blur { side: 64 },
    ]
    .into_iter()
    .map(|workload| {
        thread::spawn(move || {
            let spec = LoadSpec::new(addr, 600, workload, RUN);
            loadgen::run(&spec).expect("load runs")
        })
    })
    .collect();
    let rogues: Vec<_> = (0..MISBEHAVING)
        .map(|i| {
            thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || misbehave(addr, i, until))
                .unwrap()
        })
        .collect();
    thread::sleep(WARM_UP);
    let rss_after_warm_up = rss_kb(pid);
    let mut samples = Vec::new();
    while Instant::now() < until {
        thread::sleep(Duration::from_secs(5));
        samples.push(rss_kb(pid));
    }
    eprintln!("RSS samples every 5 s after warm-up: {samples:?}");
    let reports: Vec<_> = loads.into_iter().map(|l| l.join().unwrap()).collect();
    for r in &reports {
        eprintln!(
            "  answered {} errors {} unanswered {} starved {}",
            r.answered, r.errors, r.unanswered, r.starved_clients
        );
    }
    for rogue in rogues {
        rogue.join().unwrap();
    }
    let rss_at_end = rss_kb(pid);
    // Closed sockets take a moment to be noticed; wait for the count, with
    // a bound.
    let deadline = Instant::now() + Duration::from_secs(20);
    while open_fds(pid) != fds_at_start && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(100));
    }
    let fds_at_end = open_fds(pid);
    let answered: u64 = reports.iter().map(|r| r.answered).sum();
    let lost: u64 = reports.iter().map(|r| r.errors + r.unanswered).sum();
    eprintln!(
        "soak {model}: {answered} answered, {lost} lost, fds {fds_at_start} -> {fds_at_end}, \
         RSS {rss_after_warm_up} kB after warm-up -> {rss_at_end} kB at end"
    );
    assert_eq!(lost, 0, "well-behaved requests lost");
    assert!(answered > 0);
    assert_eq!(fds_at_end, fds_at_start, "descriptors leaked");
    let growth = rss_at_end as f64 / rss_after_warm_up as f64;
    assert!(growth <= 1.10, "RSS grew {:.1}%", (growth - 1.0) * 100.0);
}

#[test]
#[ignore = "a 2-minute soak; run with: cargo test --release -- --ignored soak"]
fn soak_event_loop() {
    soak("event_loop", &["--max-connections", "5000"]);
}

#[test]
#[ignore = "a 2-minute soak; run with: cargo test --release -- --ignored soak"]
fn soak_async_event_loop() {
    soak(
        "event_loop",
        &["--max-connections", "5000", "--style", "async"],
    );
}

#[test]
#[ignore = "a 2-minute soak; run with: cargo test --release -- --ignored soak"]
fn soak_thread_pool() {
    // Thread per connection: room for every client at once.
    soak("thread_pool", &["--workers", "2100", "--queue", "2100"]);
}
