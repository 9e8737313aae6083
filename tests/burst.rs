//! A burst of clients: thousands connect at the same instant, as real
//! clients do after a deploy or a network blip, and every one is answered
//! (`PONG`, or a busy refusal) before the kernel would resend a handshake.
//!
//! Why 0.9 s is a structural bound, not a speed test: while a server's
//! listen queue (its backlog) is full, the kernel drops new handshakes,
//! and a client whose handshake was dropped tries again only after 1 s. So
//! one overflow is enough to push some client past 0.9 s, however fast the
//! server is, and a server whose backlog holds the burst finishes well
//! inside it (0.1-0.6 s here in a debug build on a busy 2-core machine).
//! With std's backlog of 128 it fails in nearly every run (the numbers are
//! in docs/ARCHITECTURE.md; the backlog is set in `shared/src/listen.rs`).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use support::{start_with, Model, Options};

/// Clients in one burst, unless the kernel's backlog cap is lower.
const BURST: usize = 3000;
/// The kernel resends a dropped handshake after 1 s; this is just under.
const DEADLINE: Duration = Duration::from_millis(900);
/// How long the client waits before reporting who never got an answer.
const GIVE_UP: Duration = Duration::from_secs(5);
/// Descriptors per client: its own, the server's, and the pool's second
/// handle on each connection (for shutdown).
const DESCRIPTORS_PER_CLIENT: u64 = 3;

/// One burst at a time: three at once would need three times the
/// descriptors and would share the two cores three ways.
static ONE_BURST_AT_A_TIME: Mutex<()> = Mutex::new(());

on_both_servers! {
    fn every_client_of_a_burst_is_answered_before_a_handshake_is_resent(model) {
        let _turn = ONE_BURST_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
        let clients = burst_size();
        // Room for every client: the pool queues them for its workers (each
        // client closes after its answer), the loop keeps them all.
        let options = Options {
            queue: Some(clients),
            max_connections: Some(clients),
            ..Options::default()
        };
        let server = start_with(model, &options);
        let outcome = burst(server.addr(), clients);
        eprintln!("{model:?}: {outcome}");
        assert_eq!(outcome.unexpected, Vec::<String>::new(), "{model:?}: unexpected answers");
        assert_eq!(outcome.answered, clients, "{model:?}: every client answered ({outcome})");
        assert_eq!(outcome.late, 0, "{model:?}: answers after {DEADLINE:?} ({outcome})");
    }
}

/// `BURST`, shrunk to what the kernel's backlog cap and this process's
/// open-file limit allow, saying so when it shrinks.
fn burst_size() -> usize {
    let descriptors = parallel_vs_async::loadgen::raise_open_file_limit();
    let by_descriptors = (descriptors.saturating_sub(100) / DESCRIPTORS_PER_CLIENT) as usize;
    let by_backlog = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .unwrap_or(BURST);
    let clients = BURST.min(by_backlog).min(by_descriptors);
    if clients < BURST {
        eprintln!(
            "burst shrunk to {clients} clients: net.core.somaxconn is {by_backlog}, \
             the open-file limit allows {by_descriptors}"
        );
    }
    clients
}

/// What a burst's clients got back.
struct Outcome {
    /// Clients that got `PONG` or `ERR busy`.
    answered: usize,
    busy: usize,
    /// From the first connect to the last one issued.
    connecting: Duration,
    /// Answered, or still waiting, past `DEADLINE`.
    late: usize,
    /// From the first connect to the last answer.
    slowest: Duration,
    /// Handshakes the kernel dropped for a full listen queue meanwhile, on
    /// the whole machine (`None` where it does not say): what tells an
    /// overflow from a slow machine when this test fails.
    overflows: Option<u64>,
    /// Anything else: other lines, errors, closes without an answer.
    unexpected: Vec<String>,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} answered ({} busy), {} late, connects issued in {:?}, \
             last answer {:?} after the first connect",
            self.answered, self.busy, self.late, self.connecting, self.slowest
        )?;
        match self.overflows {
            Some(n) => write!(f, ", {n} listen-queue overflows on this machine meanwhile"),
            None => Ok(()),
        }
    }
}

/// One client of the burst.
struct Client {
    stream: TcpStream,
    phase: Phase,
    /// The answer so far, up to its `\n`.
    answer: Vec<u8>,
}

#[derive(PartialEq, Eq)]
enum Phase {
    /// Connect issued; `PING` goes out once the socket is connected.
    Connecting,
    /// `PING` sent; collecting the answer line.
    Sent,
}

enum Step {
    Waiting,
    /// The answer line, or what went wrong instead.
    Line(String),
}

impl Client {
    /// Moves this client as far as its socket allows, never waiting.
    fn step(&mut self) -> Step {
        if self.phase == Phase::Connecting {
            if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
                return Step::Line(format!("connect failed: {e}"));
            }
            if self.stream.peer_addr().is_err() {
                return Step::Waiting; // still connecting: a later event says when
            }
            // Five bytes always fit a new socket's send buffer.
            if let Err(e) = self.stream.write_all(b"PING\n") {
                return Step::Line(format!("cannot send PING: {e}"));
            }
            self.phase = Phase::Sent;
        }
        let mut buffer = [0u8; 256];
        loop {
            match self.stream.read(&mut buffer) {
                Ok(0) => return Step::Line(format!("closed after {:?}", self.answer)),
                Ok(n) => self.answer.extend_from_slice(&buffer[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Waiting,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Step::Line(format!("read failed: {e}")),
            }
            if let Some(end) = self.answer.iter().position(|&b| b == b'\n') {
                return Step::Line(String::from_utf8_lossy(&self.answer[..end]).into_owned());
            }
        }
    }
}

/// Opens `clients` connections back to back without waiting for any, sends
/// `PING` on each as soon as it connects, and reads one line from each.
fn burst(addr: SocketAddr, clients: usize) -> Outcome {
    let mut poll = Poll::new().expect("a poll for the burst");
    let mut outcome = Outcome {
        answered: 0,
        busy: 0,
        connecting: Duration::ZERO,
        late: 0,
        slowest: Duration::ZERO,
        overflows: None,
        unexpected: Vec::new(),
    };
    let overflows_before = listen_overflows();
    let first_connect = Instant::now();
    // `None` once answered and closed, so a pool worker can move on.
    let mut all: Vec<Option<Client>> = (0..clients)
        .map(|i| {
            let mut stream = TcpStream::connect(addr).expect("a non-blocking connect");
            let interest = Interest::READABLE | Interest::WRITABLE;
            poll.registry()
                .register(&mut stream, Token(i), interest)
                .expect("register a client");
            Some(Client {
                stream,
                phase: Phase::Connecting,
                answer: Vec::new(),
            })
        })
        .collect();
    outcome.connecting = first_connect.elapsed();
    let mut events = Events::with_capacity(1024);
    let mut open = clients;
    while open > 0 && first_connect.elapsed() < GIVE_UP {
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .expect("poll the burst");
        for event in events.iter() {
            let slot = &mut all[event.token().0];
            let Some(client) = slot else {
                continue; // an event left over for a closed client
            };
            let Step::Line(line) = client.step() else {
                continue;
            };
            *slot = None;
            open -= 1;
            let took = first_connect.elapsed();
            outcome.slowest = outcome.slowest.max(took);
            outcome.late += usize::from(took > DEADLINE);
            match line.as_str() {
                "PONG" => outcome.answered += 1,
                busy if busy.starts_with("ERR busy") => {
                    outcome.answered += 1;
                    outcome.busy += 1;
                }
                other => outcome.unexpected.push(other.to_string()),
            }
        }
    }
    outcome.late += open; // never answered at all
    if let (Some(before), Some(after)) = (overflows_before, listen_overflows()) {
        outcome.overflows = Some(after.saturating_sub(before));
    }
    outcome
}

/// The kernel's count of handshakes dropped because a listen queue was
/// full (`ListenOverflows` in `/proc/net/netstat`, a line of names and a
/// line of values).
fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    let mut tcp_ext = text.lines().filter(|line| line.starts_with("TcpExt:"));
    let (names, values) = (tcp_ext.next()?, tcp_ext.next()?);
    let at = names
        .split_whitespace()
        .position(|n| n == "ListenOverflows")?;
    values.split_whitespace().nth(at)?.parse().ok()
}
