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

/// Threads that cannot be started (here: too little address space for
/// their stacks) end the server with one clear line and exit code 1.
///
/// The limit must fail a thread's *stack*, never a small allocation: Rust
/// aborts when `malloc` fails, and so does a thread that cannot map its
/// signal stack. With the address space nearly full, which of those comes
/// first was a race (the test failed about one run in five). So each stack
/// is made 100 MB (`RUST_MIN_STACK`, the default of `thread::Builder`) and
/// glibc keeps one heap for all threads (`MALLOC_ARENA_MAX=1`, no 64 MB
/// reservation per thread): two threads start, the third stack does not
/// fit, and tens of megabytes are left for everything else.
pub fn thread_start_failure_exits_1_with_one_line(binary: &str, many_threads: &[&str]) {
    let out = Command::new("prlimit")
        .env("RUST_MIN_STACK", "100000000")
        .env("MALLOC_ARENA_MAX", "1")
        .args(["--as=300000000", binary, "--addr", "127.0.0.1:0"])
        .args(many_threads)
        .output()
        .expect("prlimit runs the server");
    assert_eq!(out.status.code(), Some(1));
    assert_one_clean_line(&out.stderr);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("thread"),
        "the line says what failed"
    );
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
    spawn(Command::new(binary).args(["--addr", "127.0.0.1:0"]))
}

/// Starts `command` (a server, perhaps behind a wrapper such as `prlimit`
/// that execs it in place) and reads where it listens.
fn spawn(command: &mut Command) -> (Process, BufReader<std::process::ChildStdout>, SocketAddr) {
    let mut child = command
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

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses and may hold
    // spaces: state is the 1st, utime the 12th, stime the 13th.
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap();
    kb.trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .unwrap()
        * 1024
}

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("an answer in time");
    line
}

/// With only 64 file descriptors, 100 clients arrive. The server serves
/// the ones it could accept, uses almost no CPU while it cannot accept more
/// (no spinning on `EMFILE`), and serves the waiting ones once others leave.
pub fn out_of_descriptors_it_idles_and_recovers(binary: &str, extra_args: &[&str]) {
    let (process, _stdout, addr) = spawn(
        Command::new("prlimit")
            .args(["--nofile=64", binary, "--addr", "127.0.0.1:0"])
            .args(extra_args),
    );
    let pid = process.0.id();
    let mut clients: Vec<(TcpStream, BufReader<TcpStream>)> =
        (0..100).map(|_| connect(addr)).collect();
    for (stream, _) in &mut clients {
        stream.write_all(b"PING\n").unwrap();
    }
    assert_eq!(
        read_line(&mut clients[0].1),
        "PONG\n",
        "the first client is served"
    );
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(pid) - before;
    // Spinning would cost about 100 ticks a second; allow a fifth of that.
    assert!(
        spent < 20,
        "{spent} ticks of CPU in 1 s while out of descriptors"
    );
    clients[0].0.write_all(b"PING\n").unwrap();
    assert_eq!(
        read_line(&mut clients[0].1),
        "PONG\n",
        "connections it has are still served"
    );
    clients.drain(..60);
    // Each served client then leaves too, so descriptors keep coming free
    // (the pool needs two per connection, so not all 40 fit at once).
    for (i, (stream, mut reader)) in clients.into_iter().enumerate() {
        let answer = read_line(&mut reader);
        assert_eq!(
            answer,
            "PONG\n",
            "waiting client {} served once descriptors freed",
            60 + i
        );
        drop((stream, reader));
    }
}

/// A client pipelines millions of PINGs and never reads an answer. The
/// server stops reading from it instead of buffering (its memory stays
/// under 50 MB), keeps answering another client, and closes the greedy
/// connection once its output has made no progress for the write timeout.
pub fn a_client_that_never_reads_is_bounded_then_closed(binary: &str, extra_args: &[&str]) {
    let (process, _stdout, addr) = spawn(
        Command::new(binary)
            .args(["--addr", "127.0.0.1:0", "--write-timeout-secs", "2"])
            .args(extra_args),
    );
    let pid = process.0.id();
    let greedy = TcpStream::connect(addr).unwrap();
    let mut writer = greedy.try_clone().unwrap();
    // 20 MB of requests, 20 MB of answers: far more than socket buffers
    // hold, so the server has to push back.
    let flood = std::thread::spawn(move || {
        let batch = b"PING\n".repeat(100_000);
        for _ in 0..40 {
            if writer.write_all(&batch).is_err() {
                return true; // the server closed the connection
            }
        }
        false
    });
    std::thread::sleep(Duration::from_millis(500));
    let (mut other, mut other_reader) = connect(addr);
    let asked = Instant::now();
    other.write_all(b"PING\n").unwrap();
    assert_eq!(read_line(&mut other_reader), "PONG\n");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "another client waited {:?}",
        asked.elapsed()
    );
    let waited = asked.elapsed();
    let rss = rss_bytes(pid);
    eprintln!("flooded server: RSS {rss} bytes, another client's PING answered in {waited:?}");
    assert!(
        rss < 50 * 1024 * 1024,
        "server RSS {rss} bytes while a client floods it"
    );
    let started = Instant::now();
    let closed = flood.join().unwrap();
    assert!(closed, "the flood was never stopped by a close");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "closed only after {:?}",
        started.elapsed()
    );
    // Output that made no progress for the write timeout is an idle close,
    // on both servers, and not an error.
    other.write_all(b"STATS\n").unwrap();
    let stats = read_line(&mut other_reader);
    assert!(
        stats.contains(" idle_closes=1 ") && stats.contains(" error_closes=0 "),
        "{stats}"
    );
    drop(greedy);
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

/// A second signal during a drain exits at once, without waiting for it.
pub fn a_second_signal_exits_at_once(binary: &str) {
    let (mut process, _stdout, addr) = spawn_on_port_0(binary);
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"PING\nDB 1 10000\n").unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap(); // PONG: the query is in flight
    let pid = process.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    // The drain now waits on the 10 s query; a second signal cuts it short.
    let started = Instant::now();
    loop {
        assert!(Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success());
        std::thread::sleep(Duration::from_millis(100));
        if let Some(exit) = process.0.try_wait().unwrap() {
            assert_eq!(exit.code(), Some(130));
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "a second signal did not end the process"
        );
    }
}
