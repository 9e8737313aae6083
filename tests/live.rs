//! The live view's figures (`GET /stats.json` on `--stats-addr`), against
//! both servers and `--loops 2`: valid JSON, the same counts `STATS` gives,
//! the fields docs/PROTOCOL.md lists, and pool workers shown in the state
//! they are held in on purpose. The page itself is checked in a real
//! browser by tests/live_browser.rs.

mod support;

use serde_json::Value;

use support::live::{get, number, stats_json, wait_for};
use support::{start_with, Model, Options};

fn live() -> Options {
    Options {
        live: true,
        ..Options::default()
    }
}

/// The `key=value` fields of a `STATS` line, as numbers.
fn stats_fields(line: &str) -> Vec<(String, u64)> {
    line.split(' ')
        .filter_map(|field| field.split_once('='))
        .map(|(key, value)| (key.to_string(), value.parse().expect("a number")))
        .collect()
}

on_both_servers! {
    fn stats_json_agrees_with_stats(model) {
        let server = start_with(model, &live());
        let mut client = server.connect();
        for _ in 0..3 {
            assert_eq!(client.request("PING"), "PONG");
        }
        assert_eq!(client.request("DB 7 0"), format!("OK DB 7 value={:016x}", shared::db::value(7)));
        // Read between two STATS, nothing else running: the totals match.
        let stats = stats_json(server.stats_addr());
        let line = client.request("STATS");
        for (key, value) in stats_fields(&line) {
            let key = match key.strip_prefix("loop").and_then(|k| k.strip_suffix("_connections")) {
                Some(n) => {
                    let loop_index: usize = n.parse().expect("loopN_connections");
                    let each = &stats["per_loop"][loop_index];
                    assert_eq!(number(each, "connections"), value, "{key}: {stats}");
                    continue;
                }
                None => key,
            };
            assert_eq!(number(&stats, &key), value, "{key}: STATS {line}, /stats.json {stats}");
        }
        assert_eq!(stats["model"], match model {
            Model::ThreadPool => "thread_pool_server",
            _ => "event_loop_server",
        });
        assert!(stats["uptime_s"].as_f64().is_some_and(|s| s >= 0.0), "{stats}");
        if let Some(loops) = stats["per_loop"].as_array() {
            let two = matches!(model, Model::TwoEventLoops | Model::AsyncTwoEventLoops);
            let expected = if two { 2 } else { 1 };
            assert_eq!(loops.len(), expected, "{stats}");
            let requests: u64 = loops.iter().map(|l| number(l, "requests")).sum();
            assert_eq!(requests, number(&stats, "requests"));
            for each in loops {
                let share = each["utilisation"].as_f64().expect("a utilisation");
                assert!((0.0..=1.0).contains(&share), "{stats}");
            }
        }
    }

    fn stats_json_fields_are_the_ones_the_protocol_lists(model) {
        let server = start_with(model, &live());
        let stats = stats_json(server.stats_addr());
        let protocol = include_str!("../docs/PROTOCOL.md");
        let section = &protocol[protocol.find("### /stats.json").expect("a /stats.json section")..];
        let section = &section[..section[4..].find("\n### ").map_or(section.len(), |end| end + 4)];
        // Each table row names a field as `path`, the first backticked word.
        let listed: Vec<&str> = section
            .lines()
            .filter(|line| line.starts_with("| `"))
            .filter_map(|line| line.split('`').nth(1))
            .collect();
        let mut written = Vec::new();
        paths("", &stats, &mut written);
        let pool = model == Model::ThreadPool;
        for path in &written {
            assert!(listed.contains(&path.as_str()), "/stats.json writes {path}, docs/PROTOCOL.md does not list it");
        }
        for path in &listed {
            let only_other = if pool {
                path.starts_with("per_loop") || path.starts_with("offload") || ["max_connections", "db_waiting", "loops", "flags.max_connections", "flags.loops", "flags.offload_workers"].contains(path)
            } else {
                path.starts_with("pool") || ["workers", "queued", "flags.workers", "flags.queue"].contains(path)
            };
            assert!(only_other || written.iter().any(|w| w == path), "docs/PROTOCOL.md lists {path}, /stats.json does not write it: {stats}");
        }
    }

    fn the_main_port_points_at_the_monitoring_port(model) {
        let server = start_with(model, &live());
        let mut client = server.connect();
        assert!(client.request("HELP").contains("/live"));
        let page = get(server.stats_addr(), "/live");
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n") && page.contains("text/html"), "{page}");
        assert!(page.contains("/stats.json") && page.contains("</html>"));
    }
}

/// Every leaf's path: `flags.workers`, `pool.counts.idle`; an array's
/// elements as `per_loop[].utilisation`.
fn paths(prefix: &str, value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(fields) => {
            for (key, inner) in fields {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                paths(&path, inner, out);
            }
        }
        Value::Array(items) => {
            for item in items.iter().take(1) {
                paths(&format!("{prefix}[]"), item, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// One worker held asleep in `DB`, another computing images, on purpose:
/// the pool's figures show each in its state, and the rest idle.
#[test]
fn pool_workers_show_asleep_and_computing() {
    let options = Options {
        workers: Some(3),
        ..live()
    };
    let server = start_with(Model::ThreadPool, &options);
    let mut sleeper = server.connect();
    sleeper.send("DB 1 3000\n");
    let mut computer = server.connect();
    // Enough blurs, pipelined, to keep a worker computing for seconds.
    computer.send("IMAGE blur 4096 4096\n".repeat(30));
    let stats = wait_for(
        server.stats_addr(),
        "one asleep and one computing",
        |stats| {
            let counts = &stats["pool"]["counts"];
            counts["asleep_in_db"] == 1 && counts["computing"] == 1
        },
    );
    let states = stats["pool"]["states"].as_str().expect("a states string");
    assert_eq!(states.len(), 3);
    assert_eq!(states.matches('d').count(), 1, "{stats}");
    assert_eq!(states.matches('c').count(), 1, "{stats}");
    assert_eq!(number(&stats["pool"]["counts"], "idle"), 1, "{stats}");
    // Let go: the sleeper's answer comes, the computer is closed.
    assert!(sleeper.line().starts_with("OK DB 1 "));
    drop(computer);
}

/// Pending timers per loop are the queries waiting on that loop.
#[test]
fn loops_show_their_pending_timers() {
    pending_timers_per_loop(Model::TwoEventLoops);
}

#[test]
fn async_loops_show_their_pending_timers() {
    pending_timers_per_loop(Model::AsyncTwoEventLoops);
}

fn pending_timers_per_loop(model: Model) {
    let server = start_with(model, &live());
    let mut clients: Vec<_> = (0..4).map(|_| server.connect()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(format!("DB {i} 3000\n"));
    }
    let stats = wait_for(server.stats_addr(), "four pending timers", |stats| {
        stats["db_waiting"] == 4
    });
    let loops = stats["per_loop"].as_array().expect("per_loop");
    let pending: u64 = loops.iter().map(|l| number(l, "pending_timers")).sum();
    assert_eq!(pending, 4, "{stats}");
    let connections: u64 = loops.iter().map(|l| number(l, "connections")).sum();
    assert_eq!(connections, 4, "{stats}");
}
