//! What every end-to-end test needs: a server of either model on port 0,
//! and a client that reads lines with a time limit, so a bug makes a test
//! fail with a message instead of hanging it.
#![allow(dead_code)] // each test file uses a different part of this

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use shared::cli::CommonConfig;

pub mod live;

/// How long any single read in a test may wait before the test fails.
pub const READ_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    ThreadPool,
    EventLoop,
    /// The event loop server with `--loops 2`: everything the single loop
    /// guarantees must hold for several.
    TwoEventLoops,
    /// The event loop server with `--style async`: each connection an
    /// `async fn` on the hand-written executor, the same guarantees.
    AsyncEventLoop,
    /// `--style async --loops 2`.
    AsyncTwoEventLoops,
}

impl Model {
    /// The event loop server, in either style.
    pub fn is_event_loop(self) -> bool {
        self != Model::ThreadPool
    }
}

/// Settings a test may change; `None` keeps the server's default.
#[derive(Debug, Default, Clone)]
pub struct Options {
    pub workers: Option<usize>,
    pub queue: Option<usize>,
    pub max_connections: Option<usize>,
    pub idle_timeout: Option<Duration>,
    pub write_timeout: Option<Duration>,
    pub offload_workers: Option<usize>,
    /// Start the live view's monitoring thread on a port of its own.
    pub live: bool,
}

pub enum TestServer {
    ThreadPool(Option<thread_pool_server::ServerHandle>),
    EventLoop(Option<event_loop_server::ServerHandle>),
}

pub fn start(model: Model) -> TestServer {
    start_with(model, &Options::default())
}

pub fn start_with(model: Model, options: &Options) -> TestServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut common = CommonConfig::new(addr);
    if let Some(idle) = options.idle_timeout {
        common.idle_timeout = idle;
    }
    if let Some(write) = options.write_timeout {
        common.write_timeout = write;
    }
    if options.live {
        common.stats_addr = Some(addr);
    }
    match model {
        Model::ThreadPool => {
            let mut config = thread_pool_server::Config::new(addr);
            config.common = common;
            // Four workers unless asked: tests run beside each other, and a
            // 2-core machine's default of two would make them queue.
            config.workers = options.workers.unwrap_or(4);
            config.queue = options.queue.unwrap_or(config.queue);
            TestServer::ThreadPool(Some(
                thread_pool_server::start(config).expect("thread pool server starts"),
            ))
        }
        Model::EventLoop
        | Model::TwoEventLoops
        | Model::AsyncEventLoop
        | Model::AsyncTwoEventLoops => {
            let mut config = event_loop_server::Config::new(addr);
            config.common = common;
            let two = matches!(model, Model::TwoEventLoops | Model::AsyncTwoEventLoops);
            config.loops = if two { 2 } else { 1 };
            let written_async = matches!(model, Model::AsyncEventLoop | Model::AsyncTwoEventLoops);
            if written_async {
                config.style = event_loop_server::Style::Async;
            }
            config.max_connections = options.max_connections.unwrap_or(config.max_connections);
            config.offload_workers = options.offload_workers.unwrap_or(0);
            TestServer::EventLoop(Some(
                event_loop_server::start(config).expect("event loop server starts"),
            ))
        }
    }
}

impl TestServer {
    pub fn addr(&self) -> SocketAddr {
        match self {
            TestServer::ThreadPool(handle) => handle.as_ref().unwrap().local_addr(),
            TestServer::EventLoop(handle) => handle.as_ref().unwrap().local_addr(),
        }
    }

    /// Where `/live` and `/stats.json` are served (`Options::live`).
    pub fn stats_addr(&self) -> SocketAddr {
        let addr = match self {
            TestServer::ThreadPool(handle) => handle.as_ref().unwrap().stats_addr(),
            TestServer::EventLoop(handle) => handle.as_ref().unwrap().stats_addr(),
        };
        addr.expect("the server was started with Options::live")
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// Shuts the server down and returns how many responses the drain sent.
    pub fn shutdown(mut self) -> u64 {
        self.stop()
    }

    fn stop(&mut self) -> u64 {
        match self {
            TestServer::ThreadPool(handle) => handle.take().map_or(0, |h| h.shutdown()),
            TestServer::EventLoop(handle) => handle.take().map_or(0, |h| h.shutdown()),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to the test server");
        stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.reader
            .get_mut()
            .write_all(bytes.as_ref())
            .expect("send to the test server");
    }

    /// Sends one request line and returns the response line.
    pub fn request(&mut self, line: &str) -> String {
        self.send(format!("{line}\n"));
        self.line()
    }

    /// The next response line, without its `\n`. Fails the test on end of
    /// stream, on a timeout, or on a line that does not end in `\n`.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("server closed the connection; a response line was expected"),
            Ok(_) => {}
            Err(e) => panic!("no response line within {READ_LIMIT:?}: {e}"),
        }
        assert!(
            line.ends_with('\n'),
            "response line without newline: {line:?}"
        );
        line.pop();
        line
    }

    /// Asserts the server closes the connection with nothing more to say.
    pub fn expect_closed(&mut self) {
        expect_closed(&mut self.reader);
    }

    /// Half-closes: the server sees end of stream but may still answer.
    pub fn finish_sending(&mut self) {
        self.reader.get_ref().shutdown(Shutdown::Write).unwrap();
    }
}

/// The contract's request/response pairs, copied from `../shared/` into
/// `tests/data/` so the tests never read outside the repository.
pub fn vectors() -> Vec<(String, String)> {
    let text = include_str!("../data/protocol-vectors.txt");
    let mut pairs = Vec::new();
    let mut request = None;
    for line in text.lines() {
        if let Some(sent) = line.strip_prefix("> ") {
            request = Some(sent.to_string());
        } else if let Some(expected) = line.strip_prefix("< ") {
            pairs.push((
                request.take().expect("a request before each response"),
                expected.to_string(),
            ));
        }
    }
    pairs
}

/// Asserts `response` is `expected` or `expected` followed by further
/// ` key=value` fields, which the contract allows.
pub fn assert_response(response: &str, expected: &str) {
    let ok = response == expected
        || (response.starts_with(expected) && response[expected.len()..].starts_with(' '))
        || (expected == "ERR" && response.starts_with("ERR "));
    assert!(ok, "expected {expected:?}, got {response:?}");
}

/// Asserts the server closes `reader`'s connection with nothing more to
/// say (a reset counts as closed).
pub fn expect_closed(reader: &mut impl Read) {
    let mut rest = Vec::new();
    match reader.read_to_end(&mut rest) {
        Ok(_) => assert!(
            rest.is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(&rest)
        ),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("connection not closed within {READ_LIMIT:?}: {e}"),
    }
}

/// Runs each test body once against each server model.
#[macro_export]
macro_rules! on_both_servers {
    ($(fn $name:ident($model:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                fn body($model: Model) $body
                #[test]
                fn thread_pool() { body(Model::ThreadPool) }
                #[test]
                fn event_loop() { body(Model::EventLoop) }
                #[test]
                fn two_event_loops() { body(Model::TwoEventLoops) }
                #[test]
                fn async_event_loop() { body(Model::AsyncEventLoop) }
                #[test]
                fn async_two_event_loops() { body(Model::AsyncTwoEventLoops) }
            }
        )*
    };
}

/// Runs each test body against the event loop server with one loop and
/// with two, each as state machines and as `async fn`.
#[macro_export]
macro_rules! on_event_loops {
    ($(fn $name:ident($model:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                fn body($model: Model) $body
                #[test]
                fn event_loop() { body(Model::EventLoop) }
                #[test]
                fn two_event_loops() { body(Model::TwoEventLoops) }
                #[test]
                fn async_event_loop() { body(Model::AsyncEventLoop) }
                #[test]
                fn async_two_event_loops() { body(Model::AsyncTwoEventLoops) }
            }
        )*
    };
}

/// Asserts `response` begins with `prefix` (for answers whose end, such as
/// an image checksum, the test does not recompute).
pub fn assert_starts_with(response: &str, prefix: &str) {
    assert!(
        response.starts_with(prefix),
        "expected {prefix:?}..., got {response:?}"
    );
}

/// Makes closing `stream` send a reset (RST) instead of a FIN, as a client
/// that crashes or is killed does.
pub fn reset_on_close(stream: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: `setsockopt` reads `size_of::<linger>()` bytes from a pointer
    // to a live local `linger`, on a descriptor `stream` owns and keeps open
    // for the whole call.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
}
