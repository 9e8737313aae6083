//! A closed-loop load generator: C connections, each sending a request (or a
//! pipelined batch of P), waiting for every answer, and sending again, until
//! the time is up or enough requests were made.
//!
//! It is itself an event loop (one thread, `mio`, non-blocking sockets), so
//! it can hold thousands of connections without becoming the bottleneck it
//! is meant to measure. Every answer is checked against the request that
//! asked for it; a wrong answer, an `ERR` (or a non-2xx status over HTTP),
//! or a connection that drops with requests outstanding counts as an error,
//! never silently.
//!
//! All connections are opened before the clock starts. Otherwise a short
//! run measures the connecting, not the server: a client still waiting for
//! its TCP handshake (a full listen backlog retries a SYN after a second)
//! when the run ends would be reported as starved by the server.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

pub use crate::workload::{Answer, Framing, Workload};
use crate::{backlog, http};

#[derive(Debug, Clone)]
pub struct LoadSpec {
    pub addr: SocketAddr,
    pub clients: usize,
    /// Requests each connection sends before waiting for their answers.
    pub pipeline: usize,
    pub workload: Workload,
    /// Stop starting requests this long after every client connected...
    pub duration: Duration,
    /// ...or after this many, whichever comes first.
    pub max_requests: Option<u64>,
    /// How long outstanding requests may still be answered after sending
    /// stops; later, they count as unanswered.
    pub grace: Duration,
    /// Stop sending as soon as this is set (checked at least every 100 ms):
    /// for a background load that must last exactly as long as another.
    pub stop: Option<Arc<AtomicBool>>,
}

impl LoadSpec {
    /// One request at a time per client, no request limit, a grace period
    /// as long as the run up to 3 s.
    pub fn new(addr: SocketAddr, clients: usize, workload: Workload, duration: Duration) -> Self {
        LoadSpec {
            addr,
            clients,
            pipeline: 1,
            workload,
            duration,
            max_requests: None,
            grace: duration.min(MAX_GRACE),
            stop: None,
        }
    }
}

#[derive(Debug)]
pub struct LoadReport {
    /// Requests answered correctly.
    pub answered: u64,
    /// Wrong answers, `ERR` lines (non-2xx over HTTP), answers nobody asked
    /// for, and requests lost with their connection.
    pub errors: u64,
    /// Requests still unanswered when the run ended (after the grace period).
    pub unanswered: u64,
    /// Connections that never received a single correct answer (those that
    /// could not connect included).
    pub starved_clients: usize,
    /// Connections that were open when the clock started.
    pub connected: usize,
    /// How long opening every connection took, before the clock started.
    pub connect_time: Duration,
    /// From the clock's start to the last correct answer.
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

/// The longest default grace period.
const MAX_GRACE: Duration = Duration::from_secs(3);
/// Handshakes in flight at once. Both servers listen with std's and mio's
/// backlog of 128; past it the kernel drops SYNs, and the client retries
/// only after a second.
const CONNECTS_IN_FLIGHT: usize = 100;
/// Connections allowed to wait in a local server's accept queue (of 128)
/// before more are opened: see `backlog.rs`.
const ACCEPT_QUEUE_ROOM: u64 = 64;
/// Clients not connected by then take no part in the run.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where one client's connection is.
enum Link {
    Connecting(TcpStream),
    Open(TcpStream),
    /// Refused, broken, or closed by the server.
    Closed,
}

struct Client {
    link: Link,
    out: Vec<u8>,
    inbuf: Vec<u8>,
    /// Requests sent and not yet answered: their `i` and when they left.
    outstanding: VecDeque<(u64, Instant)>,
    answered_any: bool,
}

/// The running totals, and what decides when requests stop.
struct Tally {
    answered: u64,
    errors: u64,
    next_i: u64,
    /// Requests sent and not answered, over all clients.
    in_flight: u64,
    last_answer: Instant,
    stop_sending: Instant,
    histogram: Histogram<u64>,
}

/// Runs the load and reports. Fails only if the poller itself fails; every
/// connection that fails is counted in the report.
pub fn run(spec: &LoadSpec) -> io::Result<LoadReport> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let connecting_since = Instant::now();
    let mut clients = connect_all(spec, &mut poll, &mut events)?;
    let connected = clients
        .iter()
        .filter(|c| matches!(c.link, Link::Open(_)))
        .count();
    let started = Instant::now();
    let mut tally = Tally {
        answered: 0,
        errors: 0,
        next_i: 0,
        in_flight: 0,
        last_answer: started,
        stop_sending: started + spec.duration,
        histogram: Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
            .map_err(|e| io::Error::other(e.to_string()))?,
    };
    let mut give_up = tally.stop_sending + spec.grace;
    // One read buffer for every client: a buffer per client would be
    // 16 KiB times thousands, and a fresh one per read a 16 KiB memset.
    let mut chunk = vec![0u8; 16 * 1024].into_boxed_slice();
    // Readiness is edge-triggered: whatever arrived while connecting (an
    // `ERR busy`, say) had its event already. Serve every client once,
    // reading to `WouldBlock`.
    for client in clients.iter_mut() {
        drive(client, spec, &mut tally, &mut chunk, ReadUntil::WouldBlock);
    }
    loop {
        let now = Instant::now();
        if now < tally.stop_sending
            && spec
                .stop
                .as_ref()
                .is_some_and(|s| s.load(Ordering::Relaxed))
        {
            tally.stop_sending = now;
            give_up = now + spec.grace;
        }
        let sending =
            now < tally.stop_sending && spec.max_requests.is_none_or(|max| tally.next_i < max);
        if (!sending && tally.in_flight == 0) || now >= give_up {
            break;
        }
        let wait = if sending { tally.stop_sending } else { give_up };
        let timeout = wait
            .saturating_duration_since(now)
            .min(Duration::from_millis(100));
        poll.poll(&mut events, Some(timeout))?;
        for event in events.iter() {
            // A short read drains the socket unless the peer also closed:
            // then read on, to see the end (no later edge will show it).
            let until = if event.is_read_closed() || event.is_error() {
                ReadUntil::WouldBlock
            } else {
                ReadUntil::ShortRead
            };
            let client = &mut clients[event.token().0];
            drive(client, spec, &mut tally, &mut chunk, until);
        }
    }
    Ok(LoadReport {
        answered: tally.answered,
        errors: tally.errors,
        unanswered: tally.in_flight,
        // Clients never opened (the connect deadline passed) starved too.
        starved_clients: spec.clients - clients.iter().filter(|c| c.answered_any).count(),
        connected,
        connect_time: started - connecting_since,
        elapsed: tally
            .last_answer
            .saturating_duration_since(started)
            .max(Duration::from_millis(1)),
        latency_us: tally.histogram,
    })
}

/// Opens every connection, `CONNECTS_IN_FLIGHT` at a time, and waits until
/// each is open or has failed (or `CONNECT_TIMEOUT` passed).
fn connect_all(spec: &LoadSpec, poll: &mut Poll, events: &mut Events) -> io::Result<Vec<Client>> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut clients: Vec<Client> = Vec::with_capacity(spec.clients);
    let mut connecting = 0usize;
    // Pace by the server's accept queue where it can be read (this machine).
    let paced = spec.addr.ip().is_loopback() && backlog::accept_queue(spec.addr).is_some();
    loop {
        let mut room = CONNECTS_IN_FLIGHT.saturating_sub(connecting);
        if paced && clients.len() < spec.clients {
            let queued = backlog::accept_queue(spec.addr).unwrap_or(0);
            room = room.min(ACCEPT_QUEUE_ROOM.saturating_sub(queued) as usize);
        }
        let batch_end = (clients.len() + room).min(spec.clients);
        while clients.len() < batch_end {
            let token = Token(clients.len());
            // Out of descriptors or ports: this client takes no part.
            let link = match TcpStream::connect(spec.addr) {
                Ok(mut stream) => {
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    match poll.registry().register(&mut stream, token, interest) {
                        Ok(()) => {
                            connecting += 1;
                            Link::Connecting(stream)
                        }
                        Err(_) => Link::Closed,
                    }
                }
                Err(_) => Link::Closed,
            };
            clients.push(Client {
                link,
                out: Vec::new(),
                inbuf: Vec::new(),
                outstanding: VecDeque::new(),
                answered_any: false,
            });
        }
        if (clients.len() == spec.clients && connecting == 0) || Instant::now() >= deadline {
            break;
        }
        // While the accept queue is full, look again soon.
        let wait = if room == 0 { 2 } else { 100 };
        poll.poll(events, Some(Duration::from_millis(wait)))?;
        for event in events.iter() {
            let client = &mut clients[event.token().0];
            if !(event.is_writable() || event.is_error()) {
                continue;
            }
            let link = std::mem::replace(&mut client.link, Link::Closed);
            client.link = match link {
                // A refused connection has no peer.
                Link::Connecting(stream) => {
                    connecting -= 1;
                    if stream.peer_addr().is_ok() {
                        let _ = stream.set_nodelay(true);
                        Link::Open(stream)
                    } else {
                        Link::Closed
                    }
                }
                other => other,
            };
        }
    }
    // Still connecting at the deadline: it never got to take part.
    for client in clients.iter_mut() {
        if matches!(client.link, Link::Connecting(_)) {
            client.link = Link::Closed;
        }
    }
    Ok(clients)
}

/// How far a drive reads. The generator shares the machine with the
/// server it measures, so it saves what it can: on epoll, a read that
/// returns less than the buffer has emptied the socket and anything later
/// raises a new edge, so the read that would say `WouldBlock` is skipped
/// (the same rule as the event loop's; docs/ARCHITECTURE.md).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadUntil {
    ShortRead,
    WouldBlock,
}

/// Reads and checks what arrived, sends the next requests if this client
/// has none outstanding, and writes what the socket takes.
fn drive(
    client: &mut Client,
    spec: &LoadSpec,
    tally: &mut Tally,
    chunk: &mut [u8],
    until: ReadUntil,
) {
    let Link::Open(stream) = &mut client.link else {
        return;
    };
    let mut answers = Vec::new();
    let inbuf = &mut client.inbuf;
    let alive = read_answers(
        stream,
        inbuf,
        chunk,
        until,
        spec.workload.framing(),
        &mut answers,
    );
    for answer in answers {
        let Some((i, sent)) = client.outstanding.pop_front() else {
            tally.errors += 1; // an answer nobody asked for
            continue;
        };
        tally.in_flight -= 1;
        if spec.workload.is_answer(i, &answer) {
            tally.answered += 1;
            client.answered_any = true;
            tally.last_answer = Instant::now();
            let _ = tally
                .histogram
                .record((sent.elapsed().as_micros() as u64).max(1));
        } else {
            tally.errors += 1;
        }
    }
    let now = Instant::now();
    if alive && now < tally.stop_sending && client.outstanding.is_empty() {
        for _ in 0..spec.pipeline.max(1) {
            if spec.max_requests.is_some_and(|max| tally.next_i >= max) {
                break;
            }
            let request = spec.workload.request(tally.next_i);
            client.out.extend_from_slice(request.as_bytes());
            client.outstanding.push_back((tally.next_i, now));
            tally.next_i += 1;
            tally.in_flight += 1;
        }
    }
    if !alive || !flush(stream, &mut client.out) {
        let lost = client.outstanding.len() as u64;
        tally.errors += lost;
        tally.in_flight -= lost;
        client.outstanding.clear();
        client.link = Link::Closed;
    }
}

/// Reads what has arrived into this client's `inbuf` (through `chunk`, the
/// one read buffer every client shares) and frames it; returns `false` once
/// the server has closed, the connection broke, or an answer could not be
/// framed.
fn read_answers(
    stream: &mut TcpStream,
    inbuf: &mut Vec<u8>,
    chunk: &mut [u8],
    until: ReadUntil,
    framing: Framing,
    answers: &mut Vec<Answer>,
) -> bool {
    let mut open = true;
    loop {
        match stream.read(chunk) {
            Ok(0) => {
                open = false;
                break;
            }
            Ok(n) => {
                inbuf.extend_from_slice(&chunk[..n]);
                if n < chunk.len() && until == ReadUntil::ShortRead {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => {
                open = false;
                break;
            }
        }
    }
    let mut start = 0;
    match framing {
        Framing::Lines => {
            while let Some(newline) = inbuf[start..].iter().position(|&b| b == b'\n') {
                let line = String::from_utf8_lossy(&inbuf[start..start + newline]);
                answers.push(Answer::Line(line.into_owned()));
                start += newline + 1;
            }
        }
        Framing::Http => loop {
            match http::parse_response(&inbuf[start..]) {
                Ok(Some((response, used))) => {
                    answers.push(Answer::Http(response));
                    start += used;
                }
                Ok(None) => break,
                Err(_) => {
                    open = false;
                    break;
                }
            }
        },
    }
    inbuf.drain(..start);
    open
}

/// Writes what the socket takes; returns `false` if the connection broke.
fn flush(stream: &mut TcpStream, out: &mut Vec<u8>) -> bool {
    while !out.is_empty() {
        match stream.write(out) {
            Ok(n) => {
                out.drain(..n);
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
