//! Every request a server has read gets its answer: behind backpressure,
//! through a shutdown drain, and on every loop of a multi-loop server.
//!
//! The first two tests reproduce defects the event loop once had (issue 7):
//! a deep pipeline behind a slow answer stalled once backpressure lifted,
//! because no readiness event ever comes for bytes already read; and a drain
//! dropped requests it had read once a turn's budget ran out. They run on
//! every server, the offload variant included. `event_loop_server`'s
//! `connection_model.rs` tests the same class with generated event orders.

mod support;

use std::thread;

use support::{assert_response, start_with, Client, Model, Options, TestServer};

/// A slow request at the front, then more requests than the loop lets one
/// connection have in flight (1,024), all in one write.
fn deep_pipeline_behind(first: &str, first_answer: &str, server: &TestServer) {
    const PINGS: usize = 1_100;
    let mut client = server.connect();
    let mut batch = format!("{first}\n");
    batch.push_str(&"PING\n".repeat(PINGS));
    // Written from another thread: the server stops reading while its
    // answers are unread, so one thread could not both write and read.
    let writer = client.stream().try_clone().expect("clone the socket");
    let sending = thread::spawn(move || {
        let mut writer = writer;
        std::io::Write::write_all(&mut writer, batch.as_bytes())
    });
    assert!(client.line().starts_with(first_answer));
    for i in 0..PINGS {
        let line = client.line();
        assert_eq!(line, "PONG", "answer {} of {PINGS}", i + 1);
    }
    assert!(sending.join().is_ok_and(|r| r.is_ok()));
    assert_response(&client.request("PING"), "PONG");
}

/// Requests read just before shutdown are all answered, then the
/// connection closes.
fn drain_answers_everything_read(server: TestServer) {
    const JOBS: usize = 400;
    let mut client = server.connect();
    assert_response(&client.request("PING"), "PONG");
    let jobs: String = (0..JOBS)
        .map(|i| format!("IMAGE blur 128 128 {i}\n"))
        .collect();
    client.send(jobs);
    // The first answer proves the server has read the batch (one segment
    // on loopback, smaller than one read); then shut down mid-batch.
    assert!(client.line().starts_with("OK IMAGE blur 128x128 seed=0 "));
    let stopping = thread::spawn(move || server.shutdown());
    for i in 1..JOBS {
        let line = client.line();
        let expected = format!("OK IMAGE blur 128x128 seed={i} ");
        assert!(line.starts_with(&expected), "answer {i}: {line:?}");
    }
    client.expect_closed();
    assert!(stopping.join().is_ok());
}

on_both_servers! {
    fn a_deep_pipeline_behind_a_slow_answer_is_answered_in_full(model) {
        let server = start_with(model, &Options::default());
        deep_pipeline_behind("DB 7 200", "OK DB 7 ", &server);
    }

    fn the_drain_answers_every_request_already_read(model) {
        drain_answers_everything_read(start_with(model, &Options::default()));
    }
}

on_event_loops! {
    fn an_offloaded_job_at_the_front_of_a_deep_pipeline(model) {
        let options = Options {
            offload_workers: Some(1),
            ..Options::default()
        };
        let server = start_with(model, &options);
        deep_pipeline_behind("IMAGE blur 512 512 1", "OK IMAGE blur 512x512 seed=1 ", &server);
    }

    fn the_drain_answers_offloaded_jobs_already_read(model) {
        let options = Options {
            offload_workers: Some(2),
            ..Options::default()
        };
        drain_answers_everything_read(start_with(model, &options));
    }
}

/// The `loopN_connections` fields of a `STATS` answer.
fn per_loop(stats: &str) -> Vec<u64> {
    let fields = stats.split(' ').filter_map(|f| f.split_once('='));
    let loops = fields.filter(|(key, _)| key.starts_with("loop") && key.ends_with("_connections"));
    loops.filter_map(|(_, v)| v.parse().ok()).collect()
}

#[test]
fn connections_spread_over_every_loop() {
    connections_spread(Model::TwoEventLoops);
}

#[test]
fn async_connections_spread_over_every_loop() {
    connections_spread(Model::AsyncTwoEventLoops);
}

fn connections_spread(model: Model) {
    let server = start_with(model, &Options::default());
    let mut clients: Vec<Client> = (0..6).map(|_| server.connect()).collect();
    for client in &mut clients {
        assert_response(&client.request("PING"), "PONG");
    }
    let stats = clients[0].request("STATS");
    assert!(stats.contains(" loops=2 "), "{stats}");
    let spread = per_loop(&stats);
    assert_eq!(spread.len(), 2, "{stats}");
    assert_eq!(spread.iter().sum::<u64>(), 6, "{stats}");
    assert_eq!(spread, vec![3, 3], "least-loaded placement: {stats}");
}

#[test]
fn the_drain_covers_every_loop() {
    drain_covers_every_loop(Model::TwoEventLoops);
}

#[test]
fn the_async_drain_covers_every_loop() {
    drain_covers_every_loop(Model::AsyncTwoEventLoops);
}

fn drain_covers_every_loop(model: Model) {
    let server = start_with(model, &Options::default());
    let mut clients: Vec<Client> = (0..4).map(|_| server.connect()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        // PING's answer proves the query behind it has been read too.
        client.send(format!("PING\nDB {i} 300\n"));
        assert_response(&client.line(), "PONG");
    }
    let stats = server.connect().request("STATS");
    assert!(per_loop(&stats).iter().all(|&n| n >= 2), "{stats}");
    let stopping = thread::spawn(move || server.shutdown());
    for (i, client) in clients.iter_mut().enumerate() {
        assert!(client.line().starts_with(&format!("OK DB {i} ")));
        client.expect_closed();
    }
    assert_eq!(
        stopping.join().ok(),
        Some(4),
        "the drain sent the 4 replies"
    );
}
