//! One connection as an `async fn` (`--style async`): the same contract as
//! the state machine in connection.rs, written as code that waits.
//!
//! Read [`answer`] first: it is the blocking pool's session with `.await`
//! where the pool blocks. A database query is "sleep until the reply is
//! due, then reply", and the sleep gives the loop back instead of holding a
//! thread:
//!
//! ```text
//!   Request::Db { id, .. } => { sleep_until(&env, due).await; response::db(id, ..) }
//! ```
//!
//! [`serve`] is the connection: read a request, start its answer, write
//! the answers in order. Were it `loop { read().await; answer().await;
//! write().await }`, pipelined queries would wait one after another (a Rust
//! future does nothing until polled, in_order.rs says more). So each step
//! waits for whichever comes first, a new request, the oldest answer, or
//! room in the socket ([`next_step`]): the one place where this code stops
//! reading top to bottom.
//!
//! What the state machine spells out as states, the compiler builds here
//! from the `.await` points: `serve`'s locals (the reader, the answers in
//! flight, the output) live in its future, which the executor keeps in the
//! slab. Backpressure is not reading while `MAX_IN_FLIGHT` answers are owed
//! or `MAX_UNSENT` bytes wait; the turn's budget is leaf.rs's `yield_now`.

use std::future::{poll_fn, Future};
use std::io::{self, ErrorKind, Write};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use shared::protocol::framer::READ_CHUNK;
use shared::protocol::{response, Incoming, Reply, Request, RequestReader, Work};
use shared::socket::try_now;

use crate::connection::{Input, MAX_IN_FLIGHT, MAX_UNSENT, REQUESTS_PER_TURN, SHORT_READ_DRAINS};
use crate::in_order::InOrder;
use crate::leaf::{readable, sleep_until, writable, yield_now, Io, Offloaded};
use crate::reactor::Env;

/// One request's answer. Lazy, as every Rust future: nothing here runs
/// until the connection's join (in_order.rs) polls it.
async fn answer(env: Rc<Env>, work: Work) -> String {
    let request = match work {
        Work::Answered(line) => return line, // a parse error, `BYE`...
        Work::Serve(request) => request,
    };
    match request {
        Request::Db { id, delay_ms } => {
            let default = env.shared.config.common.default_db_delay;
            let due = Instant::now() + delay_ms.map_or(default, Duration::from_millis);
            let _waiting = env.db_query();
            sleep_until(&env, due).await; // the loop serves others meanwhile
            env.db_replied(due);
            response::db(id, shared::db::value(id))
        }
        Request::Image(job) if env.has_offload() => match env.offload(job) {
            Some(slot) => Offloaded(slot).await, // woken from the worker's thread
            None => response::busy_image_queue(),
        },
        other => env.answer_now(other),
    }
}

/// The connection. Returns when the client is done and every answer owed
/// has been written; an error when the socket broke. The loop closes the
/// socket either way.
pub(crate) async fn serve(io: Rc<Io>, env: Rc<Env>) -> io::Result<()> {
    let mut requests = Requests::new(&io, &env);
    let mut answers = InOrder::new();
    let mut out = Output::new(&io);
    let mut reading = true;
    loop {
        let room = reading && answers.len() < MAX_IN_FLIGHT && !out.full();
        match next_step(&mut requests, room, &mut answers, &out).await? {
            Step::Request(Some(Incoming { work, reply })) => {
                answers.push(reply, Box::pin(answer(Rc::clone(&env), work)));
            }
            Step::Request(None) => reading = false,
            Step::Answer(reply, line) => {
                out.push(&reply, &line);
                env.counters().requests_answered.add(1);
            }
            Step::Flush => out.flush()?,
        }
        io.answers_owed.set(!answers.is_empty());
        io.unsent.set(!out.bytes.is_empty());
        if !reading && answers.is_empty() && out.bytes.is_empty() {
            return Ok(());
        }
    }
}

enum Step {
    /// A request read (`None`: the input is over).
    Request(Option<Incoming>),
    /// The oldest answer is ready.
    Answer(Reply, String),
    /// Nothing else to do now, and the socket may take output.
    Flush,
}

/// Waits for whichever comes first: the oldest answer, a new request (when
/// `room`), or a writable socket with output waiting. Writing comes last,
/// so that answers ready together leave in one `write`.
async fn next_step(
    requests: &mut Requests<'_>,
    room: bool,
    answers: &mut InOrder,
    out: &Output<'_>,
) -> io::Result<Step> {
    let io = requests.io;
    // Lazy: made every step, polled only with room. Dropping it unpolled,
    // or while it waits for a readable edge, loses nothing: what it read is
    // in `requests`.
    let mut request = pin!(requests.next());
    poll_fn(|cx| {
        if let Poll::Ready((reply, line)) = answers.poll_front(cx) {
            return Poll::Ready(Ok(Step::Answer(reply, line)));
        }
        if room {
            if let Poll::Ready(item) = request.as_mut().poll(cx) {
                return Poll::Ready(item.map(Step::Request));
            }
        }
        if !out.bytes.is_empty() && pin!(writable(io)).poll(cx).is_ready() {
            return Poll::Ready(Ok(Step::Flush));
        }
        Poll::Pending
    })
    .await
}

/// The input side: requests framed from what the socket gives.
struct Requests<'a> {
    io: &'a Io,
    env: &'a Env,
    reader: RequestReader,
    /// Requests taken plus reads made in the loop's turn `turn`.
    used: usize,
    turn: u64,
}

impl<'a> Requests<'a> {
    fn new(io: &'a Io, env: &'a Env) -> Self {
        Requests {
            io,
            env,
            reader: RequestReader::new(),
            used: 0,
            turn: 0,
        }
    }

    /// The next request; `None` once the input is over. Requests already
    /// read come first, whatever the socket's state: no event will come
    /// for bytes already read.
    async fn next(&mut self) -> io::Result<Option<Incoming>> {
        loop {
            if self.budget_spent() {
                yield_now().await; // the rest of the pipeline waits a turn
            }
            let input = self.io.input();
            let item = match input {
                // At end of stream the last line may lack its `\n`.
                Input::PeerClosed => self.reader.next().or_else(|| self.reader.finish()),
                _ => self.reader.next(),
            };
            if let Some(item) = item {
                self.used += 1;
                if item.reply.ends_connection() {
                    self.io.set_input(Input::Stopped);
                }
                let mut activity = self.io.activity.get();
                activity.last_request = Instant::now();
                self.io.activity.set(activity);
                return Ok(Some(item));
            }
            match input {
                Input::Readable | Input::Closing => {
                    self.used += 1; // a read costs a unit of the turn too
                    self.read()?;
                }
                Input::Drained => readable(self.io).await,
                Input::PeerClosed | Input::Stopped => return Ok(None),
            }
        }
    }

    fn budget_spent(&mut self) -> bool {
        let turn = self.env.turn.get();
        if turn != self.turn {
            self.turn = turn;
            self.used = 0;
        }
        self.used >= REQUESTS_PER_TURN
    }

    /// Reads once, as connection.rs's `read` does.
    fn read(&mut self) -> io::Result<()> {
        let mut socket = &self.io.socket;
        match try_now(|| self.reader.read_from(&mut socket))? {
            Some(0) => self.io.set_input(Input::PeerClosed),
            Some(got)
                if got < READ_CHUNK && SHORT_READ_DRAINS && self.io.input() == Input::Readable =>
            {
                self.went_quiet()
            }
            Some(_) => {}
            None => self.went_quiet(),
        }
        Ok(())
    }

    fn went_quiet(&mut self) {
        self.io.set_input(Input::Drained);
        self.reader.shrink();
    }
}

/// The output side: framed answers the socket has not taken yet.
struct Output<'a> {
    io: &'a Io,
    bytes: Vec<u8>,
}

impl<'a> Output<'a> {
    fn new(io: &'a Io) -> Self {
        Output {
            io,
            bytes: Vec::new(),
        }
    }

    fn full(&self) -> bool {
        self.bytes.len() >= MAX_UNSENT
    }

    fn push(&mut self, reply: &Reply, line: &str) {
        if self.bytes.is_empty() {
            self.note_progress(); // output starts moving: a stall counts from here
        }
        reply.encode(line, &mut self.bytes);
    }

    /// Writes what the socket takes now, never waiting.
    fn flush(&mut self) -> io::Result<()> {
        let mut written = 0;
        while written < self.bytes.len() {
            let mut socket = &self.io.socket;
            match try_now(|| socket.write(&self.bytes[written..]))? {
                Some(0) => return Err(ErrorKind::WriteZero.into()),
                Some(n) => written += n,
                None => {
                    self.io.write_blocked(); // until the next writable edge
                    break;
                }
            }
        }
        if written > 0 {
            self.note_progress();
        }
        self.bytes.drain(..written);
        if self.bytes.is_empty() && self.bytes.capacity() > 4096 {
            self.bytes = Vec::new(); // an idle connection keeps no big buffer
        }
        Ok(())
    }

    fn note_progress(&self) {
        let mut activity = self.io.activity.get();
        activity.last_write_progress = Instant::now();
        self.io.activity.set(activity);
    }
}

/// The size of a new connection's future: its state before the first
/// poll, in the slab beside its socket (`cargo test -p event_loop_server
/// sizes -- --nocapture` prints it beside the state machine's).
#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Connection;
    use mio::net::TcpStream;
    use std::net::TcpListener;

    #[test]
    fn sizes() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let std_stream =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let io = Rc::new(Io::new(TcpStream::from_std(std_stream), Instant::now()));
        let env = Rc::new(crate::reactor::Env::for_test());
        let future = serve(Rc::clone(&io), Rc::clone(&env));
        let answer = answer(Rc::clone(&env), Work::Answered(String::new()));
        let machine = std::mem::size_of::<Connection<TcpStream>>();
        println!(
            "async fn connection: future {} bytes + Io {} bytes; one answer's future {} bytes; \
             state machine: Connection {} bytes",
            std::mem::size_of_val(&future),
            std::mem::size_of::<Io>(),
            std::mem::size_of_val(&answer),
            machine,
        );
        assert!(std::mem::size_of_val(&future) < 4096);
    }
}
