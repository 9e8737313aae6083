//! One generator thread: its own `Poll`, its share of the clients, and a
//! loop that connects them, sends, and checks every answer.
//!
//! Threads share nothing while they run but the counter behind `{i}` (one
//! atomic add per request) and the stop flag; each keeps its own tally and
//! histogram, and `mod.rs` adds them up at the end. So a thread added is a
//! core's worth of sending and reading added, with no lock between them.
//!
//! The loop has one shape for every kind of load:
//! 1. **send what is due**: in an open loop, the requests the schedule says
//!    are due, round-robin over this thread's open clients, pipelined
//!    whatever is outstanding; in a closed loop nothing is due by the
//!    clock: a client sends when its last answer arrives (step 3);
//! 2. **wait** in `poll` until an event, the next due time, or the end;
//! 3. **drive** each client with an event: finish its connect, read and
//!    check what arrived, send its next requests (closed loop), and write
//!    what the socket takes.
//!
//! The time spent outside step 2 is the thread's *busy* time; a thread busy
//! nearly all the time was on the critical path, and `mod.rs` warns.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use super::schedule::Schedule;
use super::{Arrivals, Connect, Framing, LoadSpec, Shared};
use crate::workload::Answer;
use crate::{backlog, http, os};

/// Handshakes in flight at once when pacing, over all threads.
const CONNECTS_IN_FLIGHT: usize = 100;
/// Connections allowed to wait in a local server's accept queue before more
/// are opened, over all threads: see `backlog.rs`.
const ACCEPT_QUEUE_ROOM: u64 = 64;
/// Clients not connected by then take no part in the run.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one thread is given: how many clients, and its share of the rate.
pub(super) struct Share {
    pub(super) clients: usize,
    /// Requests per second this thread sends in an open loop.
    pub(super) rate: Option<f64>,
    /// Threads pacing connects at once (to split the pacing limits).
    pub(super) threads: usize,
}

/// One thread's results, added up with the others' by `mod.rs`.
pub(super) struct Tally {
    pub(super) answered: u64,
    /// Of which arrived before sending stopped: an open loop's achieved
    /// rate is these over the sending window.
    pub(super) answered_in_window: u64,
    pub(super) errors: u64,
    pub(super) sent: u64,
    /// Requests sent and not answered.
    pub(super) in_flight: u64,
    pub(super) connected: usize,
    /// Clients that got at least one correct answer.
    pub(super) answered_clients: usize,
    pub(super) connect_time: Duration,
    /// When this thread's clock started: after every client connected, or
    /// at the burst's first connect.
    pub(super) started: Instant,
    pub(super) last_answer: Instant,
    /// When sending stopped.
    pub(super) sending_end: Instant,
    pub(super) histogram: Histogram<u64>,
    /// CPU seconds this thread used, connecting included.
    pub(super) cpu_secs: f64,
    /// From `started` to the end, and how much of it was spent outside
    /// `poll` (working, or waiting for a core).
    pub(super) window: Duration,
    pub(super) busy: Duration,
}

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
    /// Requests sent and not yet answered: their `i`, and the moment their
    /// latency counts from (when sent, or when due in an open loop).
    outstanding: VecDeque<(u64, Instant)>,
    answered_any: bool,
    sent_any: bool,
}

/// How far a read goes. On epoll a read shorter than the buffer has emptied
/// the socket and anything later raises a new edge, so the read that would
/// say `WouldBlock` can be skipped (the event loop's rule too;
/// docs/ARCHITECTURE.md); after the peer closed, no later edge will come.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ReadUntil {
    ShortRead,
    WouldBlock,
}

/// The state of a run that every client's drive reads or updates.
struct Run<'a> {
    spec: &'a LoadSpec,
    shared: &'a Shared,
    tally: Tally,
    /// When sending stops (the duration, a request limit, or the stop flag).
    stop_sending: Instant,
    sending: bool,
    /// The read buffer every client shares: one per client would be 16 KiB
    /// times thousands.
    chunk: Box<[u8]>,
}

impl Run<'_> {
    /// Stops sending now (the duration, the stop flag, the request limit,
    /// or no client left): answers then have `grace` to arrive.
    fn stop_sending_at(&mut self, now: Instant) {
        self.sending = false;
        self.stop_sending = self.stop_sending.min(now);
    }
}

/// Runs this thread's share of the load. Every thread reaches `ready` once,
/// error or not, so no thread waits forever on one that failed.
pub(super) fn run(
    spec: &LoadSpec,
    share: Share,
    shared: &Shared,
    ready: &Barrier,
) -> io::Result<Tally> {
    let cpu_at_start = os::thread_cpu_secs();
    let connecting_since = Instant::now();
    let set_up = Poll::new().and_then(|mut poll| {
        let clients = match spec.connect {
            Connect::Paced => connect_paced(spec, &share, &mut poll)?,
            Connect::Burst => Vec::new(),
        };
        Ok((poll, clients))
    });
    ready.wait();
    let (mut poll, mut clients) = set_up?;
    let started = Instant::now();
    if spec.connect == Connect::Burst {
        clients = connect_burst(spec, &share, &poll);
    }
    let histogram = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut run = Run {
        spec,
        shared,
        tally: Tally {
            answered: 0,
            answered_in_window: 0,
            errors: 0,
            sent: 0,
            in_flight: 0,
            connected: clients
                .iter()
                .filter(|c| matches!(c.link, Link::Open(_)))
                .count(),
            answered_clients: 0,
            connect_time: started - connecting_since,
            started,
            last_answer: started,
            sending_end: started,
            histogram,
            cpu_secs: 0.0,
            window: Duration::ZERO,
            busy: Duration::ZERO,
        },
        stop_sending: started + spec.duration,
        sending: true,
        chunk: vec![0u8; 16 * 1024].into_boxed_slice(),
    };
    let mut schedule = share.rate.map(|rate| Schedule::new(started, rate));
    let mut next_client = 0usize;
    // Readiness is edge-triggered: whatever arrived while connecting (an
    // `ERR busy`, say) had its event already. Drive every client once.
    for client in clients.iter_mut() {
        drive(client, &mut run, ReadUntil::WouldBlock);
    }
    let mut events = Events::with_capacity(1024);
    let mut waited = Duration::ZERO;
    loop {
        let now = Instant::now();
        // 1. Send what is due (open loop), up to the end of sending.
        if let Some(schedule) = schedule.as_mut() {
            while run.sending {
                let Some(due) = schedule.take_due(now, run.stop_sending) else {
                    break;
                };
                if !send_due(&mut clients, &mut next_client, &mut run, due) {
                    run.stop_sending_at(now); // no client left, or the limit
                }
            }
        }
        if run.sending && (now >= run.stop_sending || stopped(spec)) {
            run.stop_sending_at(now);
        }
        // Answers may still come this long after sending stopped.
        let give_up = run.stop_sending + spec.grace;
        if (!run.sending && run.tally.in_flight == 0 && !any_connecting(&clients)) || now >= give_up
        {
            break;
        }
        // 2. Wait.
        let mut wake = if run.sending {
            run.stop_sending
        } else {
            give_up
        };
        if let (Some(schedule), true) = (schedule.as_ref(), run.sending) {
            wake = wake.min(schedule.next_due());
        }
        let timeout = wake
            .saturating_duration_since(now)
            .min(Duration::from_millis(100));
        let before_poll = Instant::now();
        poll.poll(&mut events, Some(timeout))?;
        waited += before_poll.elapsed();
        // 3. Drive each client with an event.
        for event in events.iter() {
            let until = if event.is_read_closed() || event.is_error() {
                ReadUntil::WouldBlock
            } else {
                ReadUntil::ShortRead
            };
            let client = &mut clients[event.token().0];
            if matches!(client.link, Link::Connecting(_)) {
                if !(event.is_writable() || event.is_error()) {
                    continue;
                }
                finish_connect(client);
                if matches!(client.link, Link::Open(_)) {
                    run.tally.connected += 1;
                }
            }
            drive(client, &mut run, until);
        }
    }
    let mut tally = run.tally;
    tally.sending_end = run.stop_sending;
    tally.answered_clients = clients.iter().filter(|c| c.answered_any).count();
    tally.window = started.elapsed();
    tally.busy = tally.window.saturating_sub(waited);
    tally.cpu_secs = os::thread_cpu_secs() - cpu_at_start;
    Ok(tally)
}

fn stopped(spec: &LoadSpec) -> bool {
    spec.stop
        .as_ref()
        .is_some_and(|stop| stop.load(Ordering::Relaxed))
}

fn any_connecting(clients: &[Client]) -> bool {
    clients
        .iter()
        .any(|c| matches!(c.link, Link::Connecting(_)))
}

fn new_client(link: Link) -> Client {
    Client {
        link,
        out: Vec::new(),
        inbuf: Vec::new(),
        outstanding: VecDeque::new(),
        answered_any: false,
        sent_any: false,
    }
}

/// Starts one non-blocking connect and registers it as `token`; a client
/// that cannot even start (out of descriptors or ports) takes no part.
fn start_connect(spec: &LoadSpec, poll: &Poll, token: Token) -> Link {
    let Ok(mut stream) = TcpStream::connect(spec.addr) else {
        return Link::Closed;
    };
    let interest = Interest::READABLE | Interest::WRITABLE;
    match poll.registry().register(&mut stream, token, interest) {
        Ok(()) => Link::Connecting(stream),
        Err(_) => Link::Closed,
    }
}

/// A connect has finished, one way or the other: a refused one has no peer.
fn finish_connect(client: &mut Client) {
    let link = std::mem::replace(&mut client.link, Link::Closed);
    client.link = match link {
        Link::Connecting(stream) if stream.peer_addr().is_ok() => {
            let _ = stream.set_nodelay(true);
            Link::Open(stream)
        }
        Link::Connecting(_) => Link::Closed,
        other => other,
    };
}

/// Every client of this thread connects at once, as real clients arriving
/// together do: the server's listen backlog is all that stands between
/// them and a dropped handshake.
fn connect_burst(spec: &LoadSpec, share: &Share, poll: &Poll) -> Vec<Client> {
    (0..share.clients)
        .map(|i| new_client(start_connect(spec, poll, Token(i))))
        .collect()
}

/// Opens every connection before the clock starts, a few at a time, and
/// waits until each is open or has failed (or `CONNECT_TIMEOUT` passed).
/// Otherwise a short run measures the connecting, not the server: a client
/// whose handshake was dropped retries only after a second.
fn connect_paced(spec: &LoadSpec, share: &Share, poll: &mut Poll) -> io::Result<Vec<Client>> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut events = Events::with_capacity(1024);
    let mut clients: Vec<Client> = Vec::with_capacity(share.clients);
    let threads = share.threads.max(1);
    let in_flight_limit = (CONNECTS_IN_FLIGHT / threads).max(1);
    let queue_room = (ACCEPT_QUEUE_ROOM / threads as u64).max(1);
    let mut connecting = 0usize;
    // Pace by the server's accept queue where it can be read (this machine).
    let paced = spec.addr.ip().is_loopback() && backlog::accept_queue(spec.addr).is_some();
    loop {
        let mut room = in_flight_limit.saturating_sub(connecting);
        if paced && clients.len() < share.clients {
            let queued = backlog::accept_queue(spec.addr).unwrap_or(0);
            room = room.min(queue_room.saturating_sub(queued) as usize);
        }
        let batch_end = (clients.len() + room).min(share.clients);
        while clients.len() < batch_end {
            let link = start_connect(spec, poll, Token(clients.len()));
            connecting += usize::from(matches!(link, Link::Connecting(_)));
            clients.push(new_client(link));
        }
        if (clients.len() == share.clients && connecting == 0) || Instant::now() >= deadline {
            break;
        }
        // While the accept queue is full, look again soon.
        let wait = if room == 0 { 2 } else { 100 };
        poll.poll(&mut events, Some(Duration::from_millis(wait)))?;
        for event in events.iter() {
            let client = &mut clients[event.token().0];
            if matches!(client.link, Link::Connecting(_))
                && (event.is_writable() || event.is_error())
            {
                connecting -= 1;
                finish_connect(client);
            }
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

/// Hands one request, due at `due`, to the next open client (round robin)
/// and writes it; `false` when no client is open to take it, or the
/// request limit is reached.
fn send_due(clients: &mut [Client], next: &mut usize, run: &mut Run, due: Instant) -> bool {
    let count = clients.len();
    for _ in 0..count {
        let client = &mut clients[*next];
        *next = (*next + 1) % count;
        if matches!(client.link, Link::Open(_)) {
            let i = run.shared.next_i.fetch_add(1, Ordering::Relaxed);
            if run.spec.max_requests.is_some_and(|max| i >= max) {
                return false;
            }
            queue_request(client, &mut run.tally, run.spec, i, due);
            write_or_close(client, &mut run.tally);
            return true;
        }
    }
    false
}

fn queue_request(client: &mut Client, tally: &mut Tally, spec: &LoadSpec, i: u64, since: Instant) {
    spec.workload.write_request(i, &mut client.out);
    client.outstanding.push_back((i, since));
    client.sent_any = true;
    tally.sent += 1;
    tally.in_flight += 1;
}

/// Reads and checks what arrived, sends the next requests if this is a
/// closed loop and the client has none outstanding, and writes what the
/// socket takes.
fn drive(client: &mut Client, run: &mut Run, until: ReadUntil) {
    let Link::Open(stream) = &mut client.link else {
        return;
    };
    let framing = run.spec.workload.framing();
    let (tally, workload, sending) = (&mut run.tally, &run.spec.workload, run.sending);
    let outstanding = &mut client.outstanding;
    let answered_any = &mut client.answered_any;
    let alive = read_answers(
        stream,
        &mut client.inbuf,
        &mut run.chunk,
        until,
        framing,
        |answer| {
            let Some((i, since)) = outstanding.pop_front() else {
                tally.errors += 1; // an answer nobody asked for
                return;
            };
            tally.in_flight -= 1;
            if workload.is_answer(i, &answer) {
                tally.answered += 1;
                tally.answered_in_window += u64::from(sending);
                *answered_any = true;
                let now = Instant::now();
                tally.last_answer = now;
                let latency = now.saturating_duration_since(since).as_micros() as u64;
                let _ = tally.histogram.record(latency.max(1));
            } else {
                tally.errors += 1;
            }
        },
    );
    let closed_loop = run.spec.arrivals == Arrivals::Closed;
    if alive && closed_loop && run.sending && client.outstanding.is_empty() {
        // The first request of a burst counts from the burst's first
        // connect: the handshake's wait is part of what a client sees.
        let since = if client.sent_any || run.spec.connect == Connect::Paced {
            Instant::now()
        } else {
            run.tally.started
        };
        for _ in 0..run.spec.pipeline.max(1) {
            let i = run.shared.next_i.fetch_add(1, Ordering::Relaxed);
            if run.spec.max_requests.is_some_and(|max| i >= max) {
                run.stop_sending_at(Instant::now());
                break;
            }
            queue_request(client, &mut run.tally, run.spec, i, since);
        }
    }
    if !alive {
        lose_outstanding(client, &mut run.tally);
    } else {
        write_or_close(client, &mut run.tally);
    }
}

/// Writes what the socket takes; a broken connection loses what it had
/// outstanding.
fn write_or_close(client: &mut Client, tally: &mut Tally) {
    let Link::Open(stream) = &mut client.link else {
        return;
    };
    if !flush(stream, &mut client.out) {
        lose_outstanding(client, tally);
    }
}

fn lose_outstanding(client: &mut Client, tally: &mut Tally) {
    let lost = client.outstanding.len() as u64;
    tally.errors += lost;
    tally.in_flight -= lost;
    client.outstanding.clear();
    client.out.clear();
    client.link = Link::Closed;
}

/// Reads what has arrived into `inbuf` (through `chunk`, the one read
/// buffer every client shares), frames it and hands each answer, in order,
/// to `on_answer`, borrowed where it lies; returns `false` once the server
/// has closed, the connection broke, or an answer could not be framed.
fn read_answers(
    stream: &mut TcpStream,
    inbuf: &mut Vec<u8>,
    chunk: &mut [u8],
    until: ReadUntil,
    framing: Framing,
    mut on_answer: impl FnMut(Answer),
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
                on_answer(Answer::Line(&line));
                start += newline + 1;
            }
        }
        Framing::Http => loop {
            match http::parse_response(&inbuf[start..]) {
                Ok(Some((response, used))) => {
                    on_answer(Answer::Http(response));
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
