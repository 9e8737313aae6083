//! The load generator's own arithmetic, checked against servers whose
//! behaviour the test controls.
//!
//! - Many threads: every request sent is accounted for (answered + errors +
//!   unanswered = sent), `{i}` is unique across threads, and no client is
//!   lost when threads finish at different times. A tiny server here records
//!   every request it reads and answers some connections slower than others.
//! - Open loop against a stall: the server process is stopped (`SIGSTOP`)
//!   for 500 ms in a 4 s run. An open loop counts latency from each
//!   request's due time, so p99 shows the stall; a closed loop over the
//!   same stall hides it (coordinated omission), which is why both exist.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use parallel_vs_async::loadgen::{self, Arrivals, LoadSpec, Workload};

/// A server that answers `ECHO n` with `OK n`, records every `n`, and waits
/// `connection index % 4` ms before each answer on that connection.
fn recording_server() -> (SocketAddr, Arc<Mutex<Vec<u64>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = listener.local_addr().expect("has an address");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    thread::spawn(move || {
        for (index, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let record = Arc::clone(&record);
            thread::spawn(move || echo(stream, index as u64 % 4, &record));
        }
    });
    (addr, seen)
}

fn echo(stream: TcpStream, delay_ms: u64, record: &Mutex<Vec<u64>>) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { return };
        let Some(n) = line
            .strip_prefix("ECHO ")
            .and_then(|n| n.parse::<u64>().ok())
        else {
            return;
        };
        record.lock().expect("no test thread panicked").push(n);
        thread::sleep(Duration::from_millis(delay_ms));
        if writer.write_all(format!("OK {n}\n").as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn threads_account_for_every_request_and_share_one_counter() {
    let (addr, seen) = recording_server();
    // 10 clients over 3 threads (shares of 4, 3 and 3), connections slowed
    // by 0 to 3 ms each: the threads finish at different times.
    let spec = LoadSpec {
        threads: 3,
        max_requests: Some(3000),
        ..LoadSpec::new(
            addr,
            10,
            Workload::from_template("ECHO {i}"),
            Duration::from_secs(30),
        )
    };
    let report = loadgen::run(&spec).expect("load runs");
    assert_eq!(report.generator.threads, 3);
    assert_eq!(report.connected, 10);
    assert_eq!(report.starved_clients, 0, "every client got answers");
    assert_eq!(report.sent, 3000);
    assert_eq!(
        report.answered + report.errors + report.unanswered,
        report.sent
    );
    assert_eq!((report.errors, report.unanswered), (0, 0));
    let mut ids = seen.lock().expect("no test thread panicked").clone();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..3000).collect::<Vec<u64>>(),
        "each i sent exactly once"
    );
}

#[test]
fn an_open_loop_stops_at_the_request_limit() {
    let (addr, seen) = recording_server();
    let spec = LoadSpec {
        threads: 2,
        arrivals: Arrivals::Open { rate: 2000.0 },
        max_requests: Some(500),
        ..LoadSpec::new(
            addr,
            4,
            Workload::from_template("ECHO {i}"),
            Duration::from_secs(30),
        )
    };
    let report = loadgen::run(&spec).expect("load runs");
    assert_eq!((report.sent, report.answered, report.errors), (500, 500, 0));
    let mut ids = seen.lock().expect("no test thread panicked").clone();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..500).collect::<Vec<u64>>(),
        "each i sent exactly once"
    );
}

#[test]
fn threads_are_never_more_than_clients() {
    let (addr, _seen) = recording_server();
    let spec = LoadSpec {
        threads: 8,
        max_requests: Some(50),
        ..LoadSpec::new(
            addr,
            2,
            Workload::from_template("ECHO {i}"),
            Duration::from_secs(30),
        )
    };
    let report = loadgen::run(&spec).expect("load runs");
    assert_eq!(report.generator.threads, 2);
    assert_eq!((report.answered, report.starved_clients), (50, 0));
}

/// The event loop server in a process of its own, so it can be stopped
/// without stopping the test.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_event_loop() -> (ServerProcess, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_parallel_vs_async"))
        .args(["--serve", "event_loop", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let server = ServerProcess(child);
    // `baseline ...` first (src/server_process.rs), then where it listens.
    loop {
        let mut line = String::new();
        let read = stdout.read_line(&mut line).expect("server output");
        assert!(read > 0, "the server exited before listening");
        if let Some(addr) = line.trim().strip_prefix("listening on ") {
            let addr = addr.parse().expect("an address after 'listening on'");
            return (server, addr);
        }
    }
}

fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: `kill` only sends a signal to the server process this test
    // started and still owns (it is reaped only when `ServerProcess` drops).
    let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(sent, 0, "signal {signal} reaches the server");
}

/// Runs `spec` against a fresh server that is stopped for 500 ms, 1.5 s
/// into the run.
fn run_over_a_stall(arrivals: Arrivals) -> loadgen::LoadReport {
    let (server, addr) = start_event_loop();
    let pid = server.0.id();
    let spec = LoadSpec {
        arrivals,
        threads: 1,
        grace: Duration::from_secs(2),
        ..LoadSpec::new(addr, 10, Workload::Ping, Duration::from_secs(4))
    };
    let load = thread::spawn(move || loadgen::run(&spec));
    thread::sleep(Duration::from_millis(1500));
    signal(pid, libc::SIGSTOP);
    thread::sleep(Duration::from_millis(500));
    signal(pid, libc::SIGCONT);
    load.join().expect("load thread").expect("load runs")
}

#[test]
fn an_open_loop_sees_a_stall_that_a_closed_loop_hides() {
    let open = run_over_a_stall(Arrivals::Open { rate: 2000.0 });
    let p99 = open.latency_ms(0.99).expect("answers");
    assert!(
        p99 >= 300.0,
        "open loop p99 {p99} ms should show the 500 ms stall"
    );
    let achieved = open.requests_per_sec();
    assert!(
        (achieved - 2000.0).abs() <= 100.0,
        "achieved {achieved} req/s should be within 5% of the asked 2000"
    );
    assert_eq!(open.answered + open.errors + open.unanswered, open.sent);
    assert_eq!(open.errors + open.unanswered, 0);

    let closed = run_over_a_stall(Arrivals::Closed);
    let p99 = closed.latency_ms(0.99).expect("answers");
    assert!(
        p99 < 300.0,
        "closed loop p99 {p99} ms: the stall hides in fewer requests"
    );
    assert!(
        closed.latency_ms(1.0).expect("answers") >= 300.0,
        "but its max saw it"
    );
}
