//! A closed-loop load generator: C connections, each sending a request (or a
//! pipelined batch of P), waiting for every answer, and sending again, until
//! the time is up or enough requests were made.
//!
//! It is itself an event loop (one thread, `mio`, non-blocking sockets), so
//! it can hold thousands of connections without becoming the bottleneck it
//! is meant to measure. Every answer is checked against the request that
//! asked for it; a wrong line, an `ERR`, or a connection that drops with
//! requests outstanding counts as an error, never silently.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// What each request asks for; `i` is a counter shared by all connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// `PING`
    Ping,
    /// `DB {i} {delay_ms}`
    Db { delay_ms: u64 },
    /// `IMAGE blur {side} {side} {i}`
    Blur { side: u32 },
}

impl Workload {
    fn request(self, i: u64) -> String {
        match self {
            Workload::Ping => "PING\n".to_string(),
            Workload::Db { delay_ms } => format!("DB {i} {delay_ms}\n"),
            Workload::Blur { side } => format!("IMAGE blur {side} {side} {i}\n"),
        }
    }

    /// Is `line` the right answer to request `i`? (Image checksums are not
    /// recomputed here: that would cost the client what it costs the server.)
    fn is_answer(self, i: u64, line: &str) -> bool {
        let expected = match self {
            Workload::Ping => return line == "PONG",
            Workload::Db { .. } => format!("OK DB {i} value={:016x}", shared::db::value(i)),
            Workload::Blur { side } => format!("OK IMAGE blur {side}x{side} seed={i} checksum="),
        };
        let Some(rest) = line.strip_prefix(&expected) else {
            return false;
        };
        match self {
            Workload::Blur { .. } => {
                rest.len() >= 16 && rest[..16].bytes().all(|b| b.is_ascii_hexdigit())
            }
            _ => rest.is_empty() || rest.starts_with(' '),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub clients: usize,
    /// Requests each connection sends before waiting for their answers.
    pub pipeline: usize,
    pub workload: Workload,
    /// Stop starting requests after this long...
    pub duration: Duration,
    /// ...or after this many, whichever comes first.
    pub max_requests: Option<u64>,
}

#[derive(Debug)]
pub struct LoadReport {
    /// Requests answered correctly.
    pub answered: u64,
    /// Wrong answers, `ERR` lines, and requests lost with their connection.
    pub errors: u64,
    /// Requests still unanswered when the run ended (after a grace period).
    pub unanswered: u64,
    /// Connections that never received a single answer.
    pub starved_clients: usize,
    pub elapsed: Duration,
    /// Latency of each correct answer, in microseconds.
    pub latency_us: Histogram<u64>,
}

impl LoadReport {
    pub fn requests_per_sec(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A latency quantile in milliseconds (`None` with no answers at all).
    pub fn latency_ms(&self, quantile: f64) -> Option<f64> {
        (!self.latency_us.is_empty())
            .then(|| self.latency_us.value_at_quantile(quantile) as f64 / 1000.0)
    }
}

/// The longest that outstanding requests may still be answered after the
/// run (no longer than the run itself).
const MAX_GRACE: Duration = Duration::from_secs(3);
/// Connections opened at once; more would overflow the server's backlog.
const CONNECTS_IN_FLIGHT: usize = 256;

struct Client {
    stream: Option<TcpStream>,
    connected: bool,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    /// Requests sent and not yet answered: their `i` and when they left.
    outstanding: VecDeque<(u64, Instant)>,
    answered_any: bool,
}

/// Runs the load and reports. Fails only if the first connection cannot be
/// made at all; every later failure is counted in the report.
pub fn run(spec: &LoadSpec) -> io::Result<LoadReport> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut clients: Vec<Client> = Vec::with_capacity(spec.clients);
    let mut histogram = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let (mut answered, mut errors, mut next_i) = (0u64, 0u64, 0u64);
    let mut connecting = 0usize;
    let started = Instant::now();
    let mut last_answer = started;
    let stop_sending = started + spec.duration;
    // Outstanding answers may still come in a while after sending stops.
    let give_up = stop_sending + spec.duration.min(MAX_GRACE);
    loop {
        // Open connections a batch at a time.
        while clients.len() < spec.clients && connecting < CONNECTS_IN_FLIGHT {
            let mut stream = TcpStream::connect(spec.addr)?;
            let token = Token(clients.len());
            poll.registry().register(
                &mut stream,
                token,
                Interest::READABLE | Interest::WRITABLE,
            )?;
            let _ = stream.set_nodelay(true);
            clients.push(Client {
                stream: Some(stream),
                connected: false,
                out: Vec::new(),
                inbuf: Vec::new(),
                outstanding: VecDeque::new(),
                answered_any: false,
            });
            connecting += 1;
        }
        let now = Instant::now();
        let sending = now < stop_sending && spec.max_requests.is_none_or(|max| next_i < max);
        let busy = clients
            .iter()
            .any(|c| c.stream.is_some() && !c.outstanding.is_empty());
        if (!sending && !busy) || now >= give_up {
            break;
        }
        let wait = if sending { stop_sending } else { give_up };
        poll.poll(
            &mut events,
            Some(
                wait.saturating_duration_since(now)
                    .min(Duration::from_millis(100)),
            ),
        )?;
        for event in events.iter() {
            let client = &mut clients[event.token().0];
            if client.stream.is_none() {
                continue;
            }
            if !client.connected && (event.is_writable() || event.is_error()) {
                connecting = connecting.saturating_sub(1);
                let peer_ok = client
                    .stream
                    .as_ref()
                    .is_some_and(|s| s.peer_addr().is_ok());
                if !peer_ok {
                    client.stream = None; // refused: it made no requests
                    continue;
                }
                client.connected = true;
            }
            let mut lines = Vec::new();
            let alive = read_lines(client, &mut lines);
            for line in lines {
                let Some((i, sent)) = client.outstanding.pop_front() else {
                    errors += 1; // an answer nobody asked for
                    continue;
                };
                if spec.workload.is_answer(i, &line) {
                    answered += 1;
                    client.answered_any = true;
                    last_answer = Instant::now();
                    let _ = histogram.record((sent.elapsed().as_micros() as u64).max(1));
                } else {
                    errors += 1;
                }
            }
            if !alive {
                errors += client.outstanding.len() as u64;
                client.outstanding.clear();
                client.stream = None;
                continue;
            }
            let now = Instant::now();
            let may_send = now < stop_sending && client.connected && client.outstanding.is_empty();
            if may_send {
                for _ in 0..spec.pipeline.max(1) {
                    if spec.max_requests.is_some_and(|max| next_i >= max) {
                        break;
                    }
                    client
                        .out
                        .extend_from_slice(spec.workload.request(next_i).as_bytes());
                    client.outstanding.push_back((next_i, now));
                    next_i += 1;
                }
            }
            if !flush(client) {
                errors += client.outstanding.len() as u64;
                client.outstanding.clear();
                client.stream = None;
            }
        }
    }
    let unanswered = clients.iter().map(|c| c.outstanding.len() as u64).sum();
    let starved_clients = clients.iter().filter(|c| !c.answered_any).count();
    Ok(LoadReport {
        answered,
        errors,
        unanswered,
        starved_clients,
        elapsed: last_answer
            .saturating_duration_since(started)
            .max(Duration::from_millis(1)),
        latency_us: histogram,
    })
}

/// Reads what has arrived; returns `false` once the server has closed.
fn read_lines(client: &mut Client, lines: &mut Vec<String>) -> bool {
    let Some(stream) = client.stream.as_mut() else {
        return false;
    };
    let mut chunk = [0u8; 16 * 1024];
    let mut open = true;
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => {
                open = false;
                break;
            }
            Ok(n) => client.inbuf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                open = false;
                break;
            }
        }
    }
    let mut start = 0;
    while let Some(newline) = client.inbuf[start..].iter().position(|&b| b == b'\n') {
        lines.push(String::from_utf8_lossy(&client.inbuf[start..start + newline]).into_owned());
        start += newline + 1;
    }
    client.inbuf.drain(..start);
    open
}

/// Writes what the socket takes; returns `false` if the connection broke.
fn flush(client: &mut Client) -> bool {
    let Some(stream) = client.stream.as_mut() else {
        return false;
    };
    while !client.out.is_empty() {
        match stream.write(&client.out) {
            Ok(n) => {
                client.out.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

/// Raises this process's soft open-file limit to its hard limit, and
/// returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` through a pointer to a valid,
    // properly aligned local, and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `setrlimit` only reads the `rlimit` behind a valid pointer
        // to a local; raising the soft limit up to the hard one needs no
        // privilege and affects only this process (and its children).
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}
