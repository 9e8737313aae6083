//! Reading the live view's figures in a test: `GET /stats.json` on the
//! monitoring port, parsed by serde_json, and waiting (bounded) for them to
//! show something.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::READ_LIMIT;

/// The whole response to `GET path` (the monitor closes after one answer).
pub fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the monitoring port");
    stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("a whole response");
    response
}

/// `/stats.json`, parsed; fails the test if it is not JSON.
pub fn stats_json(addr: SocketAddr) -> Value {
    let response = get(addr, "/stats.json");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: application/json\r\n"),
        "{head}"
    );
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Polls `/stats.json` until `wanted` holds of it (10 s at most): the
/// figures change as the server runs, so a test waits for the state it set
/// up rather than sleeping a guessed time.
pub fn wait_for(addr: SocketAddr, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = stats_json(addr);
        if wanted(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {stats}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A number field of `/stats.json`, or a test failure naming it.
pub fn number(stats: &Value, key: &str) -> u64 {
    stats[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {key}: {stats}"))
}
