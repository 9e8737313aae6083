//! The HTTP dialect through the whole [`RequestReader`], bytes in and
//! responses out, one test per rule of the dialect; no sockets.

use crate::image::{ImageJob, ImageOp};
use crate::limits::{MAX_HEADER_BYTES, MAX_HEADER_LINES, MAX_LINE};
use crate::protocol::dialect::items;
use crate::protocol::{busy_answer, Incoming, Request, RequestReader, Work};

fn one(input: &str) -> Incoming {
    let got = items(input.as_bytes());
    assert_eq!(got.len(), 1, "{input:?}: {got:?}");
    got.into_iter().next().unwrap()
}

/// The response an item gets, given the answer a server would make for a
/// request it serves; the Date header is left out.
fn response(item: &Incoming, served_answer: &str) -> String {
    let answer = match &item.work {
        Work::Serve(_) => served_answer,
        Work::Answered(text) => text,
    };
    let mut out = Vec::new();
    item.reply.encode(answer, &mut out);
    String::from_utf8(out)
        .unwrap()
        .split("\r\n")
        .filter(|line| !line.starts_with("Date: "))
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn status(item: &Incoming) -> String {
    response(item, "OK\n")[9..12].to_string()
}

fn get(target: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n")
}

#[test]
fn a_request_line_decides_the_dialect() {
    assert!(super::is_request_line(b"GET / HTTP/1.1"));
    assert!(super::is_request_line(b"BREW /pot HTTP/9.9"));
    for line in [
        "GET /",
        "GET  / HTTP/1.1",
        "GET / HTTP/1.1 ",
        "GET / http/1.1",
        "GET / HTTP/11",
        "G(T / HTTP/1.1",
        "DB 1 0",
        "",
    ] {
        assert!(!super::is_request_line(line.as_bytes()), "{line:?}");
    }
    // The line protocol is untouched, blank lines before the first line too.
    let got = items(b"\r\n\nPING\nGET / HTTP/1.1\n");
    assert_eq!(got[0].work, Work::Serve(Request::Ping));
    assert_eq!(got[1].work, Work::Answered("ERR unknown command\n".into()));
}

#[test]
fn a_get_is_served_once_its_header_block_is_complete() {
    let mut reader = RequestReader::new();
    reader.push(b"\r\nGET /db/42 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n");
    assert_eq!(reader.next(), None);
    reader.push(b"\r\n");
    let item = reader.next().expect("a complete request");
    assert_eq!(
        item.work,
        Work::Serve(Request::Db {
            id: 42,
            delay_ms: None
        })
    );
    assert!(!item.reply.ends_connection());
    assert_eq!(
        response(&item, "OK DB 42 value=bdd732262feb6e95\n"),
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: 32\r\n\r\nOK DB 42 value=bdd732262feb6e95\n"
    );
}

#[test]
fn every_route_with_get_and_head() {
    let job = ImageJob {
        op: ImageOp::Edge,
        width: 4,
        height: 3,
        seed: 9,
    };
    let routes = [
        ("/ping", Work::Serve(Request::Ping)),
        ("/help", Work::Serve(Request::Help)),
        ("/stats", Work::Serve(Request::Stats)),
        (
            "/db/5?delay_ms=0",
            Work::Serve(Request::Db {
                id: 5,
                delay_ms: Some(0),
            }),
        ),
        ("/image/edge/4/3?seed=9", Work::Serve(Request::Image(job))),
        ("/", Work::Answered(super::route::INDEX.into())),
    ];
    for (target, work) in routes {
        for method in ["GET", "HEAD"] {
            let item = one(&format!("{method} {target} HTTP/1.1\r\nHost: x\r\n\r\n"));
            assert_eq!(item.work, work, "{method} {target}");
            let got = response(&item, "PONG\n");
            assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got}");
            assert_eq!(got.ends_with("\r\n\r\n"), method == "HEAD", "{got}");
        }
    }
}

#[test]
fn statuses_for_what_goes_wrong() {
    let cases = [
        (get("/nope"), "404", false),
        (get("/db/x"), "400", false),
        (
            "POST /ping HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
            "405",
            false,
        ),
        (
            "get /ping HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
            "405",
            false,
        ),
        (
            "GET /ping HTTP/2.0\r\nHost: x\r\n\r\n".to_string(),
            "505",
            true,
        ),
        ("GET /ping HTTP/1.1\r\n\r\n".to_string(), "400", true),
        (
            "GET /ping HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".to_string(),
            "400",
            true,
        ),
        (
            "GET /ping HTTP/1.1\r\nHost : x\r\n\r\n".to_string(),
            "400",
            true,
        ),
        (
            "GET /ping HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n".to_string(),
            "400",
            true,
        ),
        (
            "GET /ping HTTP/1.1\r\nHost x\r\n\r\n".to_string(),
            "400",
            true,
        ),
        (
            "GET /ping HTTP/1.1\r\nHo(st: x\r\n\r\n".to_string(),
            "400",
            true,
        ),
        (
            "GET /p\x01 HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
            "400",
            true,
        ),
    ];
    for (input, code, closes) in cases {
        let item = one(&input);
        assert_eq!(status(&item), code, "{input:?}");
        assert_eq!(item.reply.ends_connection(), closes, "{input:?}");
        assert_eq!(
            response(&item, "").contains("\r\nConnection: close\r\n"),
            closes,
            "{input:?}"
        );
    }
    let refused = one("DELETE /db/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response(&refused, "").contains("\r\nAllow: GET, HEAD\r\n"));
    assert_eq!(
        response(&one(&get("/nope")), "").split("\r\n\r\n").nth(1),
        Some("ERR not found\n")
    );
}

#[test]
fn a_served_answer_gets_its_status_from_the_line() {
    let item = one(&get("/image/blur/8/8"));
    assert!(response(&item, "ERR busy: image queue full\n")
        .starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
    assert!(response(&item, "ERR busy: image queue full\n").contains("\r\nRetry-After: 1\r\n"));
    assert!(response(&item, "ERR internal error\n").starts_with("HTTP/1.1 500 "));
    assert!(!item.reply.ends_connection());
}

#[test]
fn a_malformed_request_line_after_the_first_closes() {
    let got = items(format!("{}FROB\r\n{}", get("/ping"), get("/ping")).as_bytes());
    assert_eq!(got.len(), 2);
    assert_eq!(status(&got[1]), "400");
    assert!(got[1].reply.ends_connection());
}

#[test]
fn bodies_are_refused_and_close() {
    for header in [
        "Content-Length: 5",
        "Transfer-Encoding: chunked",
        "Content-Length: x",
        "content-length: 0, 1",
    ] {
        let input = format!("POST /ping HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\nhello");
        let got = items(input.as_bytes());
        assert_eq!(got.len(), 1, "{header}");
        assert_eq!(status(&got[0]), "400", "{header}");
        assert!(got[0].reply.ends_connection());
    }
    let empty = one("GET /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(empty.work, Work::Serve(Request::Ping));
}

#[test]
fn persistence_follows_the_version_and_connection() {
    let closes = |input: &str| one(input).reply.ends_connection();
    assert!(!closes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert!(closes(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: Close\r\n\r\n"
    ));
    assert!(closes(
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: te, close\r\n\r\n"
    ));
    assert!(closes("GET / HTTP/1.0\r\n\r\n"));
    let kept = one("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert!(!kept.reply.ends_connection());
    assert!(response(&kept, "").contains("\r\nConnection: keep-alive\r\n"));
    // Nothing is handed out after a closing response.
    let got = items(format!("GET / HTTP/1.0\r\n\r\n{}", get("/ping")).as_bytes());
    assert_eq!(got.len(), 1);
}

#[test]
fn pipelined_requests_come_out_in_order() {
    let input: String = (0..100)
        .map(|i| get(&format!("/db/{i}?delay_ms=0")))
        .collect();
    let got = items(input.as_bytes());
    assert_eq!(got.len(), 100);
    for (i, item) in got.iter().enumerate() {
        assert_eq!(
            item.work,
            Work::Serve(Request::Db {
                id: i as u64,
                delay_ms: Some(0)
            })
        );
    }
}

#[test]
fn header_limits_answer_431_and_close() {
    let long = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX: {}\r\n\r\n",
        "a".repeat(MAX_LINE)
    );
    let many: String = (0..=MAX_HEADER_LINES)
        .map(|i| format!("X-{i}: y\r\n"))
        .collect();
    let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let header = format!("X: {}\r\n", "a".repeat(1000));
    let big = header.repeat(MAX_HEADER_BYTES / header.len() + 1);
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\n{big}\r\n");
    let target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(MAX_LINE));
    for input in [long, many, big] {
        let got = items(input.as_bytes());
        assert_eq!(got.len(), 1);
        assert_eq!(status(&got[0]), "431");
        assert!(got[0].reply.ends_connection());
    }
    // A request line over the limit: 431 once the connection is HTTP; the
    // line protocol's answer while nothing has decided the dialect.
    let got = items(format!("{}{target}", get("/ping")).as_bytes());
    assert_eq!(status(&got[1]), "431");
    assert_eq!(
        items(target.as_bytes())[0].work,
        Work::Answered("ERR line too long\n".into())
    );
    // At the limits exactly, all is well.
    let at: String = (1..MAX_HEADER_LINES)
        .map(|i| format!("X-{i}: y\r\n"))
        .collect();
    let at = one(&format!("GET /ping HTTP/1.1\r\nHost: x\r\n{at}\r\n"));
    assert_eq!(at.work, Work::Serve(Request::Ping));
}

#[test]
fn an_incomplete_request_at_end_of_stream_is_not_answered() {
    assert!(items(b"GET /ping HTTP/1.1\r\nHost: x\r\n").is_empty());
    assert!(items(b"GET /ping HTTP/1.1").is_empty());
}

#[test]
fn busy_answers_in_the_clients_dialect() {
    assert_eq!(busy_answer(b""), b"ERR busy\n");
    assert_eq!(busy_answer(b"PING\n"), b"ERR busy\n");
    assert_eq!(
        busy_answer(b"GET / HTTP/1.1"),
        busy_answer(b"\r\nGET / HTTP/1.1\r\nHost: x\r\n")
    );
    let http = String::from_utf8(busy_answer(b"GET /db/1 HTTP/1.1\r\nHost: x\r\n\r\n")).unwrap();
    assert!(
        http.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{http}"
    );
    assert!(http.contains("\r\nRetry-After: 1\r\n"));
    assert!(http.contains("\r\nConnection: close\r\n"));
    assert!(http.ends_with("\r\n\r\nERR busy\n"), "{http}");
    let head = String::from_utf8(busy_answer(b"HEAD / HTTP/1.1\r\n")).unwrap();
    assert!(head.ends_with("\r\n\r\n"), "{head}");
}
