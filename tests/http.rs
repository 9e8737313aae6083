//! The HTTP dialect end to end, against both servers: every route with GET
//! and HEAD, every status code the dialect sends, persistence, pipelining,
//! half-close, the refusals RFC 9112 asks for, the header limits, the idle
//! deadline, both dialects on one server at once, and a real HTTP client
//! library that nobody here wrote.
//!
//! The servers know nothing of HTTP: they hand bytes to the shared
//! `RequestReader` and frame answers with its `Reply`. So these tests are
//! as much about that seam as about HTTP.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use support::{start, start_with, Model, Options, READ_LIMIT};

/// One response as read off the wire.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A raw HTTP client: writes whatever bytes a test wants and reads
/// responses framed by their Content-Length.
struct HttpClient {
    reader: BufReader<TcpStream>,
}

impl HttpClient {
    fn connect(addr: SocketAddr) -> HttpClient {
        let stream = TcpStream::connect(addr).expect("connect to the test server");
        stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        HttpClient {
            reader: BufReader::new(stream),
        }
    }

    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.reader
            .get_mut()
            .write_all(bytes.as_ref())
            .expect("send to the test server");
    }

    /// GET (or another method) of `target` with a Host header, and its
    /// response.
    fn request(&mut self, method: &str, target: &str) -> Response {
        self.send(format!("{method} {target} HTTP/1.1\r\nHost: test\r\n\r\n"));
        self.response(method == "HEAD")
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("server closed the connection; a response was expected"),
            Ok(_) => {}
            Err(e) => panic!("no response within {READ_LIMIT:?}: {e}"),
        }
        line.strip_suffix("\r\n")
            .unwrap_or_else(|| panic!("header line without CRLF: {line:?}"))
            .to_string()
    }

    /// The next response; `head` says it answers a HEAD, so has no body.
    fn response(&mut self, head: bool) -> Response {
        let status_line = self.line();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(": ").expect("a header line");
            headers.push((name.to_string(), value.to_string()));
        }
        let mut response = Response {
            status,
            headers,
            body: String::new(),
        };
        let length: usize = response
            .header("Content-Length")
            .expect("every response has a Content-Length")
            .parse()
            .unwrap();
        assert_eq!(
            response.header("Content-Type"),
            Some("text/plain; charset=utf-8")
        );
        let date = response.header("Date").expect("every response has a Date");
        assert!(date.len() == 29 && date.ends_with(" GMT"), "{date}");
        if !head {
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body).expect("the whole body");
            response.body = String::from_utf8(body).unwrap();
        }
        response
    }

    /// Asserts the server closes with nothing more to say.
    fn expect_closed(&mut self) {
        support::expect_closed(&mut self.reader);
    }
}

fn http(server: &support::TestServer) -> HttpClient {
    HttpClient::connect(server.addr())
}

fn db_body(id: u64) -> String {
    format!("OK DB {id} value={:016x}\n", shared::db::value(id))
}

on_both_servers! {
    fn every_route_with_get_and_head(model) {
        let server = start(model);
        let mut client = http(&server);
        let routes: [(&str, &str); 6] = [
            ("/", "OK routes: "),
            ("/ping", "PONG\n"),
            ("/help", "OK commands: "),
            ("/stats", "OK STATS connections=1 "),
            ("/db/42", "OK DB 42 value=bdd732262feb6e95\n"),
            ("/image/blur/16/9?seed=7", "OK IMAGE blur 16x9 seed=7 checksum=ee88e055dc78ac5b"),
        ];
        // One connection for all: a HEAD with a body would break the
        // framing of the response after it.
        for (target, body) in routes {
            let get = client.request("GET", target);
            assert_eq!(get.status, 200, "GET {target}");
            assert!(get.body.starts_with(body), "GET {target}: {:?}", get.body);
            assert!(get.body.ends_with('\n'));
            assert_eq!(get.header("Connection"), None);
            let head = client.request("HEAD", target);
            assert_eq!(head.status, 200, "HEAD {target}");
            if !target.starts_with("/stats") && !target.starts_with("/image") {
                // Same answer, same length (STATS counts, IMAGE times).
                assert_eq!(head.header("Content-Length"), get.header("Content-Length"));
            }
        }
        assert_eq!(client.request("GET", "/ping").body, "PONG\n");
    }

    fn statuses_that_keep_the_connection(model) {
        let server = start(model);
        let mut client = http(&server);
        let bad = client.request("GET", "/db/x");
        assert_eq!((bad.status, bad.body.as_str()), (400, "ERR id must be a number from 0 to 18446744073709551615\n"));
        let bad = client.request("GET", "/image/blur/0/1");
        assert_eq!((bad.status, bad.body.as_str()), (400, "ERR width must be a number from 1 to 4096\n"));
        let missing = client.request("GET", "/nope");
        assert_eq!((missing.status, missing.body.as_str()), (404, "ERR not found\n"));
        let refused = client.request("DELETE", "/db/1");
        assert_eq!(refused.status, 405);
        assert_eq!(refused.header("Allow"), Some("GET, HEAD"));
        let panic = client.request("GET", &format!("/image/blur/8/8?seed={}", shared::image::PANIC_SEED));
        assert_eq!((panic.status, panic.body.as_str()), (500, "ERR internal error\n"));
        assert_eq!(client.request("GET", "/ping").status, 200);
    }

    fn statuses_that_close(model) {
        let server = start(model);
        let cases: [(&str, u16); 7] = [
            ("GET /ping HTTP/2.0\r\nHost: t\r\n\r\n", 505),
            ("GET /ping HTTP/1.1\r\n\r\n", 400),
            ("GET /ping HTTP/1.1\r\nHost : t\r\n\r\n", 400),
            ("GET /ping HTTP/1.1\r\nHost: t\r\nX: a\r\n folded\r\n\r\n", 400),
            ("POST /ping HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello", 400),
            ("GET /ping HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("GET /ping HTTP/1.1\r\nHost: t\r\n\r\nGET  /ping HTTP/1.1\r\n", 400),
        ];
        for (request, status) in cases {
            let mut client = http(&server);
            client.send(request);
            let mut response = client.response(false);
            if request.matches("GET").count() == 2 {
                assert_eq!(response.status, 200);
                response = client.response(false);
            }
            assert_eq!(response.status, status, "{request:?}");
            assert_eq!(response.header("Connection"), Some("close"), "{request:?}");
            client.expect_closed();
        }
    }

    fn header_limits_answer_431(model) {
        let server = start(model);
        let long = format!("GET /ping HTTP/1.1\r\nHost: t\r\nX: {}\r\n\r\n", "a".repeat(1100));
        let many: String = (0..65).map(|i| format!("X-{i}: y\r\n")).collect();
        let many = format!("GET /ping HTTP/1.1\r\nHost: t\r\n{many}\r\n");
        let big: String = (0..9).map(|i| format!("X-{i}: {}\r\n", "b".repeat(1000))).collect();
        let big = format!("GET /ping HTTP/1.1\r\nHost: t\r\n{big}\r\n");
        for request in [long, many, big] {
            let mut client = http(&server);
            client.send(&request);
            let response = client.response(false);
            assert_eq!(response.status, 431);
            assert_eq!(response.header("Connection"), Some("close"));
            client.expect_closed();
        }
    }

    fn keep_alive_then_connection_close(model) {
        let server = start(model);
        let mut client = http(&server);
        for _ in 0..3 {
            assert_eq!(client.request("GET", "/ping").body, "PONG\n");
        }
        client.send("GET /db/42 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let last = client.response(false);
        assert_eq!((last.status, last.body.as_str()), (200, "OK DB 42 value=bdd732262feb6e95\n"));
        assert_eq!(last.header("Connection"), Some("close"));
        client.expect_closed();
    }

    fn http_10_closes_unless_asked_to_keep_alive(model) {
        let server = start(model);
        let mut client = http(&server);
        client.send("GET /ping HTTP/1.0\r\n\r\n");
        let response = client.response(false);
        assert_eq!((response.status, response.header("Connection")), (200, Some("close")));
        client.expect_closed();
        let mut client = http(&server);
        for _ in 0..2 {
            client.send("GET /ping HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
            let response = client.response(false);
            assert_eq!(response.body, "PONG\n");
            assert_eq!(response.header("Connection"), Some("keep-alive"));
        }
    }

    fn a_hundred_pipelined_requests_in_one_write(model) {
        let server = start(model);
        let mut client = http(&server);
        let batch: String = (0..100)
            .map(|i| format!("GET /db/{i}?delay_ms=0 HTTP/1.1\r\nHost: t\r\n\r\n"))
            .collect();
        client.send(batch);
        for i in 0..100 {
            assert_eq!(client.response(false).body, db_body(i));
        }
    }

    fn half_close_with_a_query_in_flight(model) {
        let server = start(model);
        let mut client = http(&server);
        client.send("GET /db/7?delay_ms=200 HTTP/1.1\r\nHost: t\r\n\r\n");
        client.reader.get_ref().shutdown(Shutdown::Write).unwrap();
        assert_eq!(client.response(false).body, db_body(7));
        client.expect_closed();
    }

    fn trickled_headers_are_closed_by_the_idle_deadline(model) {
        let options = Options { idle_timeout: Some(Duration::from_secs(1)), ..Options::default() };
        let server = start_with(model, &options);
        let mut client = http(&server);
        let mut writer = client.reader.get_ref().try_clone().unwrap();
        let started = Instant::now();
        // A header line every 200 ms for 6 s: lines keep completing, but
        // the request never does, so only the idle deadline can end it.
        let trickle = thread::spawn(move || {
            if writer.write_all(b"GET /ping HTTP/1.1\r\nHost: t\r\n").is_err() {
                return;
            }
            for i in 0..30 {
                thread::sleep(Duration::from_millis(200));
                if writer.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
                    return;
                }
            }
        });
        client.expect_closed();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(900), "closed before the idle timeout: {took:?}");
        assert!(took < Duration::from_secs(5), "trickled headers kept the connection open");
        trickle.join().unwrap();
    }

    fn both_dialects_at_once(model) {
        let server = start(model);
        let mut line = server.connect();
        let mut web = http(&server);
        assert_eq!(line.request("DB 42 0"), "OK DB 42 value=bdd732262feb6e95");
        assert_eq!(web.request("GET", "/db/42?delay_ms=0").body, "OK DB 42 value=bdd732262feb6e95\n");
        // A request line on a line-protocol connection is just a bad command.
        assert_eq!(line.request("GET /ping HTTP/1.1"), "ERR unknown command");
        let stats = web.request("GET", "/stats").body;
        assert!(stats.starts_with("OK STATS connections=2 "), "{stats}");
        assert_eq!(line.request("PING"), "PONG");
        assert_eq!(web.request("GET", "/ping").body, "PONG\n");
    }

    fn a_client_library_nobody_here_wrote(model) {
        let server = start(model);
        let base = format!("http://{}", server.addr());
        // One agent keeps its connection alive between requests.
        let agent = ureq::AgentBuilder::new().timeout(READ_LIMIT).build();
        for _ in 0..2 {
            let db = agent.get(&format!("{base}/db/42")).call().expect("GET /db/42");
            assert_eq!(db.status(), 200);
            assert_eq!(db.content_type(), "text/plain");
            assert_eq!(db.into_string().unwrap(), "OK DB 42 value=bdd732262feb6e95\n");
            let ping = agent.get(&format!("{base}/ping")).call().expect("GET /ping");
            assert_eq!(ping.into_string().unwrap(), "PONG\n");
        }
        // Four requests, one connection: the agent reused it.
        let stats = agent.get(&format!("{base}/stats")).call().unwrap().into_string().unwrap();
        assert!(stats.starts_with("OK STATS connections=1 requests=4"), "{stats}");
        match agent.get(&format!("{base}/db/x")).call() {
            Err(ureq::Error::Status(400, response)) => assert_eq!(
                response.into_string().unwrap(),
                "ERR id must be a number from 0 to 18446744073709551615\n"
            ),
            other => panic!("expected a 400, got {other:?}"),
        }
    }
}

/// A loop with no room answers an HTTP client in HTTP: a 503 with
/// `Retry-After`, then close. The client's request must have arrived by
/// the time the loop accepts it (the loop reads only what is there), so the
/// one loop is kept busy with an inline image job meanwhile: it cannot
/// accept until the job is done, long after the request has arrived.
#[test]
fn a_full_event_loop_turns_http_away_with_503() {
    a_full_loop_turns_http_away(Model::EventLoop);
}

#[test]
fn a_full_async_event_loop_turns_http_away_with_503() {
    a_full_loop_turns_http_away(Model::AsyncEventLoop);
}

/// One loop only: a second could accept while the first computes.
fn a_full_loop_turns_http_away(model: Model) {
    let options = Options {
        max_connections: Some(1),
        ..Options::default()
    };
    let server = start_with(model, &options);
    let mut busy = http(&server);
    assert_eq!(busy.request("GET", "/ping").status, 200);
    // Three jobs of about 50 ms or more each: the loop is inside them long
    // after the short pause below, however slowly this machine schedules it.
    let job = "GET /image/blur/4096/4096 HTTP/1.1\r\nHost: t\r\n\r\n";
    busy.send(job.repeat(3));
    thread::sleep(Duration::from_millis(30)); // the loop is in the jobs now
    let mut turned_away = http(&server);
    turned_away.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = turned_away.response(false);
    assert_eq!(
        (response.status, response.body.as_str()),
        (503, "ERR busy\n")
    );
    assert_eq!(response.header("Retry-After"), Some("1"));
    assert_eq!(response.header("Connection"), Some("close"));
    turned_away.expect_closed();
    for _ in 0..3 {
        assert_eq!(busy.response(false).status, 200);
    }
}

on_event_loops! {
    fn a_refused_http_client_that_sends_late_still_gets_a_503(model) {
        // curl connects first and sends a moment later; the loop has
        // accepted by then. A refusal waits (briefly, boundedly) for the
        // first bytes so it can answer in the client's dialect.
        let options = Options {
            max_connections: Some(1),
            ..Options::default()
        };
        let server = start_with(model, &options);
        let mut holder = http(&server);
        assert_eq!(holder.request("GET", "/ping").status, 200);
        let mut refused = http(&server);
        // A deliberately slow client, not a wait for the server.
        thread::sleep(Duration::from_millis(50));
        refused.send("GET /ping HTTP/1.1\r\nHost: t\r\n\r\n");
        let response = refused.response(false);
        assert_eq!((response.status, response.body.as_str()), (503, "ERR busy\n"));
        assert_eq!(response.header("Retry-After"), Some("1"));
        refused.expect_closed();
        assert_eq!(holder.request("GET", "/ping").status, 200);
    }
}
