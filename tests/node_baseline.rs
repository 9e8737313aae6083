//! The Node.js baseline (`baselines/node/`) held to the same wire contract
//! as the Rust servers: every vector of `tests/data/protocol-vectors.txt`,
//! the framing rules, image checksums equal to the Rust kernel's (on the
//! loop, and on worker threads with `--offload`), one port for
//! `--cluster`, and a clean exit on SIGTERM. The comparison only means
//! something if the Node server answers exactly what the Rust ones answer.
//!
//! Where `node` is not on the PATH every test here passes without doing
//! anything: the baseline is optional, the Rust servers are not.

mod support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use shared::image::{ImageJob, ImageOp, ImageScratch};
use support::{assert_response, vectors, Client, READ_LIMIT};

const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/baselines/node/server.js");

fn node_is_installed() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

/// A Node server process on port 0, stopped (SIGKILL) when dropped. With
/// `--cluster`, the workers exit when their primary does: node:cluster
/// ends a worker whose channel to the primary closes.
struct NodeServer {
    child: Child,
    addr: SocketAddr,
    /// Read by a thread, so a server that never prints cannot hang a test.
    stdout: mpsc::Receiver<String>,
}

impl NodeServer {
    /// `None` when node is not installed.
    fn start(flags: &[&str]) -> Option<NodeServer> {
        if !node_is_installed() {
            return None;
        }
        let mut child = Command::new("node")
            .arg(SERVER)
            .args(["--addr", "127.0.0.1:0"])
            .args(flags)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node starts");
        let stdout = child.stdout.take().expect("a piped stdout");
        let lines = read_lines(stdout);
        let first = lines
            .recv_timeout(READ_LIMIT)
            .expect("the node server prints its address");
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("not a listening line: {first:?}"));
        Some(NodeServer {
            child,
            addr,
            stdout: lines,
        })
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Sends SIGTERM and returns the exit status and the rest of stdout.
    fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) takes two integers and touches no memory of ours;
        // the pid is our own child's, not yet waited for, so not reused.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM)");
        let deadline = Instant::now() + READ_LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for node") {
                break status;
            }
            assert!(Instant::now() < deadline, "node did not exit after SIGTERM");
            thread::sleep(Duration::from_millis(10));
        };
        let rest = self.stdout.iter().collect();
        (status, rest)
    }
}

impl Drop for NodeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (send, receive) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

#[test]
fn every_contract_vector() {
    let Some(server) = NodeServer::start(&[]) else {
        return;
    };
    let mut client = server.connect();
    let pairs = vectors();
    assert!(pairs.len() >= 30, "the vectors file was not read");
    for (request, expected) in &pairs {
        assert_response(&client.request(request), expected);
    }
    client.expect_closed(); // the last vector is QUIT
}

#[test]
fn framing_rules() {
    let Some(server) = NodeServer::start(&[]) else {
        return;
    };
    let db = |id: u64| format!("OK DB {id} value={:016x}", shared::db::value(id));

    // CRLF, one byte at a time, blank lines, bytes that are not UTF-8.
    let mut client = server.connect();
    client.send("PING\r\nDB 1 0\r\n\n\r\n \t \n");
    assert_eq!(client.line(), "PONG");
    assert_eq!(client.line(), db(1));
    for byte in b"IMAGE blur 16 9 7\n" {
        client.send([*byte]);
    }
    assert_response(
        &client.line(),
        "OK IMAGE blur 16x9 seed=7 checksum=ee88e055dc78ac5b",
    );
    client.send(b"\xff\xfe\xfd\nDB \xc3\x28\nPING\x0b\nPING\n");
    assert_eq!(client.line(), "ERR unknown command");
    assert_response(&client.line(), "ERR");
    assert_eq!(client.line(), "ERR unknown command"); // \v is part of the word
    assert_eq!(client.line(), "PONG");

    // Pipelining, answers in request order though a later one finishes first.
    let batch: String = (0..500).map(|i| format!("DB {i} 0\nPING\n")).collect();
    client.send(batch);
    for i in 0..500 {
        assert_eq!(client.line(), db(i));
        assert_eq!(client.line(), "PONG");
    }
    let sent = Instant::now();
    client.send("DB 1 300\nPING\nDB 2 0\n");
    assert_eq!(client.line(), db(1));
    assert!(
        sent.elapsed() >= Duration::from_millis(300),
        "DB 1 300 answered early"
    );
    assert_eq!(client.line(), "PONG");
    assert_eq!(client.line(), db(2));

    // The line limit: 1024 bytes are served, 1025 refused after the
    // earlier answers, and nothing after it is answered.
    let line = format!("PING{}", " ".repeat(1020));
    assert_eq!(client.request(&line), "PONG");
    assert_eq!(client.request(&format!("{line}\r")), "PONG");
    client.send(format!("DB 5 100\nPING\nPING{}\nPING\n", " ".repeat(1021)));
    assert_eq!(client.line(), db(5));
    assert_eq!(client.line(), "PONG");
    assert_eq!(client.line(), "ERR line too long");
    client.expect_closed();

    let mut endless = server.connect();
    endless.send(vec![b'x'; 5000]);
    assert_eq!(endless.line(), "ERR line too long");
    endless.expect_closed();

    // Half-close: a query in flight and an unterminated last line are
    // still answered, then the connection closes.
    let mut half = server.connect();
    half.send("DB 7 200\nPING\nDB 42 0");
    half.finish_sending();
    assert_eq!(half.line(), db(7));
    assert_eq!(half.line(), "PONG");
    assert_eq!(half.line(), db(42));
    half.expect_closed();

    // QUIT: earlier answers, BYE, close; the PING after it is not answered.
    let mut quit = server.connect();
    quit.send("DB 3 50\nQUIT\nPING\n");
    assert_eq!(quit.line(), db(3));
    assert_eq!(quit.line(), "BYE");
    quit.expect_closed();
}

#[test]
fn stats_counts_connections_and_answers() {
    let Some(server) = NodeServer::start(&[]) else {
        return;
    };
    let mut first = server.connect();
    let stats = first.request("STATS");
    assert!(
        stats.starts_with("OK STATS connections=1 requests=0"),
        "{stats}"
    );
    let mut second = server.connect();
    assert_eq!(second.request("PING"), "PONG");
    assert_eq!(first.request("PING"), "PONG");
    let stats = first.request("STATS");
    assert!(
        stats.starts_with("OK STATS connections=2 requests=3"),
        "{stats}"
    );
}

/// Every small shape (each mix of clamped and inner columns and rows) and a
/// few large ones, against the Rust kernel itself.
fn image_jobs() -> Vec<ImageJob> {
    let mut jobs = Vec::new();
    for op in [ImageOp::Blur, ImageOp::Edge] {
        for width in 1..=9 {
            for height in 1..=9 {
                let seed = u64::from(width * 31 + height) << 40 | u64::from(width);
                jobs.push(ImageJob {
                    op,
                    width,
                    height,
                    seed,
                });
            }
        }
        for (width, height, seed) in [(64, 48, 5), (300, 7, u64::MAX), (512, 512, 1 << 63)] {
            jobs.push(ImageJob {
                op,
                width,
                height,
                seed,
            });
        }
    }
    jobs
}

fn expected_image(scratch: &mut ImageScratch, job: &ImageJob) -> String {
    format!(
        "OK IMAGE {} {}x{} seed={} checksum={:016x}",
        job.op.name(),
        job.width,
        job.height,
        job.seed,
        scratch.run(job)
    )
}

fn image_checksums_agree(flags: &[&str], worker_field: bool) {
    let Some(server) = NodeServer::start(flags) else {
        return;
    };
    let mut scratch = ImageScratch::new();
    // Two connections, each with its whole list pipelined, so offload
    // workers run jobs of both at once and answers come back out of order.
    let mut clients = [server.connect(), server.connect()];
    let jobs = image_jobs();
    for client in &mut clients {
        let batch: String = jobs
            .iter()
            .map(|j| {
                format!(
                    "IMAGE {} {} {} {}\n",
                    j.op.name(),
                    j.width,
                    j.height,
                    j.seed
                )
            })
            .collect();
        client.send(batch);
    }
    for client in &mut clients {
        for job in &jobs {
            let answer = client.line();
            assert_response(&answer, &expected_image(&mut scratch, job));
            assert_eq!(answer.contains(" worker="), worker_field, "{answer}");
        }
    }
}

#[test]
fn image_checksums_agree_with_the_rust_kernel_on_the_loop() {
    image_checksums_agree(&[], false);
}

#[test]
fn image_checksums_agree_with_the_rust_kernel_on_two_worker_threads() {
    image_checksums_agree(&["--offload", "2"], true);
}

#[test]
fn a_cluster_of_two_shares_one_port_and_drains_on_sigterm() {
    let Some(server) = NodeServer::start(&["--cluster", "2"]) else {
        return;
    };
    let db = |id: u64| format!("OK DB {id} value={:016x}", shared::db::value(id));
    // Several connections, so both workers get some (node:cluster hands
    // them out in turn).
    let mut clients: Vec<Client> = (0..4).map(|_| server.connect()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.request("PING"), "PONG");
        assert_eq!(client.request(&format!("DB {i} 1")), db(i as u64));
    }
    // One write, so one read on the server: the PONG shows DB 9 was read.
    clients[0].send("PING\nDB 9 300\n");
    assert_eq!(clients[0].line(), "PONG");
    let (status, stdout) = server.terminate();
    assert_eq!(clients[0].line(), db(9), "a query in flight is answered");
    clients[0].expect_closed();
    assert!(status.success(), "{status}");
    assert!(
        stdout
            .iter()
            .any(|l| l.starts_with("shut down cleanly; drained ")),
        "{stdout:?}"
    );
}

#[test]
fn sigterm_answers_what_was_asked_then_exits_0() {
    let Some(server) = NodeServer::start(&[]) else {
        return;
    };
    let mut client = server.connect();
    // One write, so one read on the server: the PONG shows DB 1 was read.
    client.send("PING\nDB 1 300\n");
    assert_eq!(client.line(), "PONG");
    let (status, stdout) = server.terminate();
    assert_response(&client.line(), "OK DB 1 value=910a2dec89025cc1");
    client.expect_closed();
    assert!(status.success(), "{status}");
    assert_eq!(stdout, ["shut down cleanly; drained 1 requests"]); // the DB
}

#[test]
fn usage_bad_flags_and_a_taken_port() {
    if !node_is_installed() {
        return;
    }
    let run = |args: &[&str]| {
        Command::new("node")
            .arg(SERVER)
            .args(args)
            .output()
            .expect("node runs")
    };
    let help = run(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let usage = String::from_utf8_lossy(&help.stdout);
    for flag in ["--addr", "--db-delay-ms", "--offload", "--cluster"] {
        assert!(usage.contains(flag), "usage lacks {flag}: {usage}");
    }
    for args in [
        &["--no-such-flag"][..],
        &["--offload", "x"],
        &["--cluster", "0"],
        &["--db-delay-ms", "10001"],
        &["--addr", "nowhere"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).lines().count(),
            1,
            "{args:?}"
        );
    }
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let addr = taken.local_addr().expect("its address").to_string();
    let out = run(&["--addr", &addr]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
