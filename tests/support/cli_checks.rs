//! Checks of a server *binary* as a person meets it at the terminal: usage,
//! exit codes, one-line errors, the start-up line, and a graceful drain on
//! SIGTERM. Each server package runs these against its own binary (cargo
//! only tells a package's own tests where its binary is), through
//! `#[path]`, so there is one copy of the checks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn run(binary: &str, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .output()
        .expect("the server binary runs")
}

fn assert_one_clean_line(stderr: &[u8]) {
    let text = String::from_utf8_lossy(stderr);
    assert_eq!(
        text.lines().count(),
        1,
        "expected one line on stderr, got {text:?}"
    );
    assert!(
        !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
        "{text}"
    );
}

pub fn help_prints_usage_and_exits_0(binary: &str) {
    let out = run(binary, &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let usage = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--addr",
        "--idle-timeout-secs",
        "--db-delay-ms",
        "--write-timeout-secs",
    ] {
        assert!(usage.contains(flag), "usage lacks {flag}: {usage}");
    }
    assert!(out.stderr.is_empty());
}

pub fn bad_flags_and_values_exit_2_with_one_line(binary: &str, bad_value: &[&str]) {
    for args in [
        &["--no-such-flag"][..],
        &["--addr", "not an address"],
        &["--db-delay-ms", "10001"],
        &["--addr"],
        bad_value,
    ] {
        let out = run(binary, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_one_clean_line(&out.stderr);
    }
}

pub fn an_address_in_use_exits_1_with_one_line(binary: &str) {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = run(binary, &["--addr", &addr]);
    assert_eq!(out.status.code(), Some(1));
    assert_one_clean_line(&out.stderr);
}

/// A running server process, killed if a check fails half-way.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_on_port_0(binary: &str) -> (Process, BufReader<std::process::ChildStdout>, SocketAddr) {
    let mut child = Command::new(binary)
        .args(["--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server binary starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line should say where it listens: {first:?}"))
        .parse()
        .expect("a socket address");
    (Process(child), stdout, addr)
}

/// 200 slow queries are in flight when SIGTERM arrives: every one is still
/// answered, then the connection closes, then the process exits 0.
///
/// `delay_ms` is per query. One pool worker answers one connection's queries
/// one after another (200 x 300 ms would be a minute), so the pool is given
/// shorter ones; the event loop waits on all 200 at once.
pub fn sigterm_drains_every_request_in_flight(binary: &str, delay_ms: u64) {
    let (mut process, mut stdout, addr) = spawn_on_port_0(binary);
    let mut client = TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let batch: String = (0..200).map(|i| format!("DB {i} {delay_ms}\n")).collect();
    client.write_all(batch.as_bytes()).unwrap();
    // One answer back proves the server has read the batch (the pool reads
    // in 16 KiB chunks, the batch is under 3 KiB).
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("OK DB 0 "), "{line}");
    let status = Command::new("kill")
        .args(["-TERM", &process.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    for i in 1..200 {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(
            line.starts_with(&format!("OK DB {i} ")),
            "answer {i} lost in shutdown: {line:?}"
        );
    }
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the last answer, then close");
    let exit = process.0.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    let mut said = String::new();
    stdout.read_to_string(&mut said).unwrap();
    assert!(said.contains("drained"), "{said}");
    assert!(started.elapsed() < Duration::from_secs(120));
}
