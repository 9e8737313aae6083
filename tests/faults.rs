//! Faults a client can cause, provoked for real: connections reset with
//! answers pending, and requests whose handling panics.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use support::{assert_response, reset_on_close, start_with, Client, Model, Options};

fn db_answer(id: u64) -> String {
    format!("OK DB {id} value={:016x}", shared::db::value(id))
}

on_both_servers! {
    fn a_flood_of_blank_lines_does_not_take_the_server(model) {
        // Blank lines ask nothing, so they are never answered; a loop that
        // counted only requests against a turn would read them for ever.
        let server = start_with(model, &Options::default());
        let mut flood = server.connect();
        let writer = flood.stream().try_clone().expect("clone the socket");
        let flooding = thread::spawn(move || {
            let mut writer = writer;
            let blank = vec![b'\n'; 64 * 1024];
            for _ in 0..64 {
                if std::io::Write::write_all(&mut writer, &blank).is_err() {
                    break;
                }
            }
            std::io::Write::write_all(&mut writer, b"PING\n")
        });
        let mut other = server.connect();
        for _ in 0..20 {
            assert_response(&other.request("PING"), "PONG");
        }
        assert_response(&flood.line(), "PONG");
        assert!(flooding.join().is_ok_and(|r| r.is_ok()));
    }

    fn a_greedy_pipeline_does_not_starve_other_clients(model) {
        let server = start_with(model, &Options::default());
        let greedy = server.connect();
        let mut reader = std::io::BufReader::new(greedy.stream().try_clone().unwrap());
        let mut writer = greedy.stream().try_clone().unwrap();
        // 2,000,000 PINGs written by one thread and read by another, so the
        // greedy client keeps the server as busy as it can.
        const FLOOD: usize = 2_000_000;
        let sender = thread::spawn(move || {
            std::io::Write::write_all(&mut writer, &b"PING\n".repeat(FLOOD)).unwrap();
        });
        let receiver = thread::spawn(move || {
            let mut line = String::new();
            for _ in 0..FLOOD {
                line.clear();
                std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
                assert_eq!(line, "PONG\n");
            }
        });
        // Meanwhile another client is served promptly, again and again.
        let mut other = server.connect();
        for _ in 0..20 {
            let asked = Instant::now();
            assert_eq!(other.request("PING"), "PONG");
            assert!(asked.elapsed() < Duration::from_secs(1), "waited {:?} behind the pipeline", asked.elapsed());
        }
        sender.join().unwrap();
        receiver.join().unwrap();
    }

    fn a_reset_connection_never_leaks_its_answer_to_a_newcomer(model) {
        // Room for everyone in the pool's queue; the loop ignores it.
        let options = Options { queue: Some(200), ..Options::default() };
        let server = start_with(model, &options);
        for i in 0..50u64 {
            let mut doomed = server.connect();
            doomed.send(format!("DB {i} 200\n"));
            reset_on_close(doomed.stream());
        } // each one is reset here, its query still waiting
        // Newcomers take the freed slots (and tokens) while the dead
        // queries' timers fire; each must get exactly its own answers.
        let addr = server.addr();
        let newcomers: Vec<_> = (0..20u64)
            .map(|j| {
                thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    let id = 1000 + j;
                    client.send(format!("DB {id} 300\nPING\nQUIT\n"));
                    assert_response(&client.line(), &db_answer(id));
                    assert_eq!(client.line(), "PONG");
                    assert_eq!(client.line(), "BYE");
                    client.expect_closed();
                })
            })
            .collect();
        for newcomer in newcomers {
            newcomer.join().expect("a newcomer got a line it did not ask for");
        }
    }

    fn a_connection_reset_under_its_answer_is_an_error_close(model) {
        let server = start_with(model, &Options::default());
        let mut doomed = server.connect();
        doomed.send("DB 1 100\n");
        reset_on_close(doomed.stream());
        drop(doomed);
        // The loop sees the reset at once, the pool's worker when it writes
        // the answer after its sleep; either way the count comes.
        let mut watcher = server.connect();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let stats = watcher.request("STATS");
            if stats.contains(" error_closes=1 ") {
                assert!(stats.contains(" idle_closes=0 "), "{stats}");
                break;
            }
            assert!(Instant::now() < deadline, "never counted: {stats}");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn a_panicking_request_is_answered_and_the_server_goes_on(model) {
        let server = start_with(model, &Options::default());
        let mut client = server.connect();
        let panic = format!("IMAGE blur 8 8 {}", shared::image::PANIC_SEED);
        assert_eq!(client.request(&panic), "ERR internal error");
        // The same connection, so the same worker (or the loop): still fine,
        // and its image buffers still give right answers.
        assert_eq!(client.request("PING"), "PONG");
        let ok = client.request("IMAGE blur 16 9 7");
        assert!(ok.starts_with("OK IMAGE blur 16x9 seed=7 checksum=ee88e055dc78ac5b"), "{ok}");
        // Other connections, one after another (so on the pool they land on
        // whichever workers are free), recover the same way.
        for _ in 0..6 {
            let mut other = server.connect();
            assert_eq!(other.request(&panic), "ERR internal error");
            assert_eq!(other.request("DB 1 0"), db_answer(1));
        }
        let stats = client.request("STATS");
        assert!(stats.contains(" panics=7"), "{stats}");
    }
}

on_event_loops! {
    fn a_panicking_offloaded_job_is_answered_and_counted(model) {
        let options = Options {
            offload_workers: Some(2),
            ..Options::default()
        };
        let server = start_with(model, &options);
        let mut client = server.connect();
        client.send(format!(
            "IMAGE edge 8 8 {}\nIMAGE edge 16 9 7\n",
            shared::image::PANIC_SEED
        ));
        assert_eq!(client.line(), "ERR internal error");
        let ok = client.line();
        assert!(
            ok.starts_with("OK IMAGE edge 16x9 seed=7 checksum=89eb0a4a6540b00c"),
            "{ok}"
        );
        let stats = client.request("STATS");
        assert!(stats.contains(" panics=1"), "{stats}");
    }
}
