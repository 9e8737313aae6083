//! The property the two servers exist to show, and the limits each one puts
//! on what clients can make it spend.
//!
//! Timing here only proves properties, with wide margins: 300 queries of
//! 400 ms finishing together (well under 2.5 s) is only possible if nothing
//! waited for anything else; 4 queries on 2 workers taking at least 750 ms
//! is only possible if they waited in turn.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::{assert_response, assert_starts_with, start_with, Client, Model, Options};

/// Sends `DB i delay_ms` on `clients` connections at once; returns how long
/// until the last answer arrived.
fn concurrent_queries(addr: std::net::SocketAddr, clients: u64, delay_ms: u64) -> Duration {
    let mut connections: Vec<Client> = (0..clients).map(|_| Client::connect(addr)).collect();
    let started = Instant::now();
    for (i, client) in connections.iter_mut().enumerate() {
        client.send(format!("DB {i} {delay_ms}\n"));
    }
    for (i, client) in connections.iter_mut().enumerate() {
        let expected = format!("OK DB {i} value={:016x}", shared::db::value(i as u64));
        assert_response(&client.line(), &expected);
    }
    started.elapsed()
}

on_event_loops! {
    fn event_loop_waits_on_300_queries_at_once(model) {
        let server = start_with(model, &Options::default());
        let took = concurrent_queries(server.addr(), 300, 400);
        assert!(
            took >= Duration::from_millis(400),
            "answered before the delay: {took:?}"
        );
        assert!(
            took < Duration::from_millis(2500),
            "300 waiting queries did not overlap: {took:?}"
        );
    }
}

#[test]
fn two_workers_wait_on_four_queries_two_at_a_time() {
    let options = Options {
        workers: Some(2),
        ..Options::default()
    };
    let server = start_with(Model::ThreadPool, &options);
    // One thread per client, so all four connect and send at once.
    let addr = server.addr();
    let started = Instant::now();
    let clients: Vec<_> = (0..4)
        .map(|i| {
            thread::spawn(move || {
                let mut client = Client::connect(addr);
                let expected = format!("OK DB {i} value={:016x}", shared::db::value(i));
                assert_response(&client.request(&format!("DB {i} 400")), &expected);
            })
        })
        .collect();
    for client in clients {
        client.join().expect("client thread");
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(750),
        "4 queries on 2 workers cannot overlap fully: {took:?}"
    );
}

#[test]
fn a_full_pool_queue_answers_busy_and_keeps_serving() {
    let options = Options {
        workers: Some(1),
        queue: Some(1),
        ..Options::default()
    };
    let server = start_with(Model::ThreadPool, &options);
    let mut served = server.connect();
    assert_eq!(served.request("PING"), "PONG"); // the one worker is on it
    let mut queued = server.connect(); // waits in the queue of one
                                       // Connections are accepted in order, so the queue is full by now.
    let mut turned_away = server.connect();
    assert_eq!(turned_away.line(), "ERR busy");
    turned_away.expect_closed();
    assert_eq!(served.request("QUIT"), "BYE");
    assert_eq!(queued.request("PING"), "PONG");
}

on_event_loops! {
    fn max_connections_answers_busy_and_keeps_serving(model) {
        let options = Options {
            max_connections: Some(2),
            ..Options::default()
        };
        let server = start_with(model, &options);
        let mut first = server.connect();
        let mut second = server.connect();
        assert_eq!(first.request("PING"), "PONG");
        assert_eq!(second.request("PING"), "PONG");
        let mut third = server.connect();
        assert_eq!(third.line(), "ERR busy");
        third.expect_closed();
        assert_eq!(first.request("QUIT"), "BYE");
        first.expect_closed();
        // A place came free; STATS also proves the loop counted the refusal.
        let mut fourth = server.connect();
        let stats = fourth.request("STATS");
        assert!(stats.contains("busy_rejections=1"), "{stats}");
    }
}

on_both_servers! {
    fn an_idle_connection_is_closed(model) {
        let options = Options { idle_timeout: Some(Duration::from_secs(1)), ..Options::default() };
        let server = start_with(model, &options);
        let mut client = server.connect();
        assert_eq!(client.request("PING"), "PONG");
        let quiet_since = Instant::now();
        client.expect_closed();
        assert!(quiet_since.elapsed() >= Duration::from_millis(900), "closed before the idle timeout");
        // The server itself is fine.
        assert_eq!(server.connect().request("PING"), "PONG");
    }

    fn a_line_trickled_byte_by_byte_does_not_hold_the_connection(model) {
        let options = Options { idle_timeout: Some(Duration::from_secs(1)), ..Options::default() };
        let server = start_with(model, &options);
        let mut client = server.connect();
        let mut writer = client.stream().try_clone().unwrap();
        let started = Instant::now();
        // A byte every 200 ms for 6 s: the line never completes, but bytes
        // keep coming, so only a deadline on the whole line can end it.
        let trickle = thread::spawn(move || {
            for _ in 0..30 {
                if std::io::Write::write_all(&mut writer, b"P").is_err() {
                    return;
                }
                thread::sleep(Duration::from_millis(200));
            }
        });
        client.expect_closed();
        assert!(started.elapsed() < Duration::from_secs(5), "a trickled line kept the connection open");
        trickle.join().unwrap();
    }
}

// With offload on, the loop keeps serving while image jobs run on the
// pool: a PING on another connection is answered while a batch of big jobs
// is still running (inline, it would wait behind every one of them).
on_event_loops! {
    fn offloaded_image_jobs_do_not_stall_other_connections(model) {
        const JOBS: u64 = 16;
        let options = Options {
            offload_workers: Some(1),
            ..Options::default()
        };
        let server = start_with(model, &options);
        let mut images = server.connect();
        let batch: String = (0..JOBS)
            .map(|seed| format!("IMAGE blur 4096 4096 {seed}\n"))
            .collect();
        images.send(batch);
        let mut other = server.connect();
        assert_eq!(other.request("PING"), "PONG");
        // Sixteen 16-MPixel jobs on one worker take a good fraction of a
        // second; a PING takes a round trip. Count the results already back.
        let mut arrived = vec![0u8; 64 * 1024];
        images.stream().set_nonblocking(true).unwrap();
        let results_so_far = images
            .stream()
            .peek(&mut arrived)
            .map_or(0, |n| arrived[..n].iter().filter(|&&b| b == b'\n').count());
        images.stream().set_nonblocking(false).unwrap();
        assert!(
            (results_so_far as u64) < JOBS,
            "the PING waited for every image job"
        );
        for seed in 0..JOBS {
            assert_starts_with(
                &images.line(),
                &format!("OK IMAGE blur 4096x4096 seed={seed} checksum="),
            );
        }
    }
}

// Results computed on several workers, finishing in any order, still go
// back in request order, mixed with answers the loop gives itself.
on_event_loops! {
    fn offloaded_results_keep_request_order(model) {
        let options = Options {
            offload_workers: Some(3),
            ..Options::default()
        };
        let server = start_with(model, &options);
        let mut client = server.connect();
        // Big and small jobs alternate, so later small ones finish first.
        let mut batch = String::new();
        for seed in 0..12u64 {
            let side = if seed % 2 == 0 { 1024 } else { 8 };
            batch.push_str(&format!("IMAGE edge {side} {side} {seed}\nPING\n"));
        }
        client.send(batch);
        for seed in 0..12u64 {
            let side = if seed % 2 == 0 { 1024 } else { 8 };
            assert_starts_with(
                &client.line(),
                &format!("OK IMAGE edge {side}x{side} seed={seed} checksum="),
            );
            assert_eq!(client.line(), "PONG");
        }
    }
}
