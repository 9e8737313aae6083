//! The wire contract, end to end, against both servers: every vector of the
//! contract, then the framing rules (CRLF, partial reads, pipelining, blank
//! lines, the line limit, half-close, bytes that are not UTF-8).

mod support;

use std::time::{Duration, Instant};

use support::{assert_response, start, vectors, Model};

on_both_servers! {
    fn every_contract_vector(model) {
        let server = start(model);
        let mut client = server.connect();
        let pairs = vectors();
        assert!(pairs.len() >= 30, "the vectors file was not read");
        for (request, expected) in &pairs {
            let response = client.request(request);
            assert_response(&response, expected);
        }
        client.expect_closed(); // the last vector is QUIT
    }

    fn crlf_line_endings(model) {
        let server = start(model);
        let mut client = server.connect();
        client.send("PING\r\nDB 1 0\r\n");
        assert_eq!(client.line(), "PONG");
        assert_eq!(client.line(), "OK DB 1 value=910a2dec89025cc1");
    }

    fn a_request_sent_one_byte_at_a_time(model) {
        let server = start(model);
        let mut client = server.connect();
        for byte in b"IMAGE blur 16 9 7\n" {
            client.send([*byte]);
        }
        assert_response(&client.line(), "OK IMAGE blur 16x9 seed=7 checksum=ee88e055dc78ac5b");
    }

    fn five_hundred_requests_in_one_write(model) {
        let server = start(model);
        let mut client = server.connect();
        let batch: String = (0..500).map(|i| format!("DB {i} 0\nPING\n")).collect();
        client.send(batch);
        for i in 0..500u64 {
            let expected = format!("OK DB {i} value={:016x}", shared::db::value(i));
            assert_response(&client.line(), &expected);
            assert_eq!(client.line(), "PONG");
        }
    }

    fn blank_lines_get_no_response(model) {
        let server = start(model);
        let mut client = server.connect();
        client.send("\n\r\n \t \nPING\n\n");
        assert_eq!(client.line(), "PONG");
        assert_eq!(client.request("PING"), "PONG");
    }

    fn final_line_without_newline_is_answered_after_half_close(model) {
        let server = start(model);
        let mut client = server.connect();
        client.send("PING\nDB 42 0");
        client.finish_sending();
        assert_eq!(client.line(), "PONG");
        assert_response(&client.line(), "OK DB 42 value=bdd732262feb6e95");
        client.expect_closed();
    }

    fn a_line_of_1024_bytes_is_served(model) {
        let server = start(model);
        let mut client = server.connect();
        let line = format!("PING{}", " ".repeat(1020));
        assert_eq!(line.len(), 1024);
        assert_eq!(client.request(&line), "PONG");
        assert_eq!(client.request(&format!("{line}\r")), "PONG");
    }

    fn a_line_of_1025_bytes_is_refused_after_earlier_answers(model) {
        let server = start(model);
        let mut client = server.connect();
        client.send(format!("DB 5 100\nPING\nPING{}\nPING\n", " ".repeat(1021)));
        assert_response(&client.line(), &format!("OK DB 5 value={:016x}", shared::db::value(5)));
        assert_eq!(client.line(), "PONG");
        assert_eq!(client.line(), "ERR line too long");
        client.expect_closed();
    }

    fn an_endless_line_is_refused_without_waiting_for_its_end(model) {
        let server = start(model);
        let mut client = server.connect();
        client.send(vec![b'x'; 5000]);
        assert_eq!(client.line(), "ERR line too long");
        client.expect_closed();
    }

    fn bytes_that_are_not_utf8(model) {
        let server = start(model);
        let mut client = server.connect();
        client.send(b"\xff\xfe\xfd\nDB \xc3\x28\nPING\n");
        assert_eq!(client.line(), "ERR unknown command");
        assert_response(&client.line(), "ERR");
        assert_eq!(client.line(), "PONG");
    }

    fn answers_keep_request_order_when_a_later_one_finishes_first(model) {
        let server = start(model);
        let mut client = server.connect();
        let sent = Instant::now();
        client.send("DB 1 300\nPING\nDB 2 0\n");
        assert_response(&client.line(), "OK DB 1 value=910a2dec89025cc1");
        assert!(sent.elapsed() >= Duration::from_millis(300), "DB 1 300 answered early");
        assert_eq!(client.line(), "PONG");
        assert_response(&client.line(), "OK DB 2 value=975835de1c9756ce");
    }

    fn half_close_with_a_query_in_flight(model) {
        let server = start(model);
        let mut client = server.connect();
        client.send("DB 7 200\n");
        client.finish_sending();
        assert_response(&client.line(), &format!("OK DB 7 value={:016x}", shared::db::value(7)));
        client.expect_closed();
    }

    fn quit_says_bye_and_closes(model) {
        let server = start(model);
        let mut client = server.connect();
        client.send("DB 3 50\nQUIT\nPING\n");
        assert_response(&client.line(), &format!("OK DB 3 value={:016x}", shared::db::value(3)));
        assert_eq!(client.line(), "BYE");
        client.expect_closed();
    }

    fn stats_counts_connections_and_answers(model) {
        let server = start(model);
        let mut first = server.connect();
        let stats = first.request("STATS");
        assert!(stats.starts_with("OK STATS connections=1 requests=0"), "{stats}");
        let mut second = server.connect();
        assert_eq!(second.request("PING"), "PONG");
        assert_eq!(first.request("PING"), "PONG");
        // Answered so far: STATS, PONG, PONG. Open: two.
        let stats = first.request("STATS");
        assert!(stats.starts_with("OK STATS connections=2 requests=3"), "{stats}");
    }

    fn stats_fields_are_the_ones_the_protocol_lists(model) {
        let server = start(model);
        let mut client = server.connect();
        assert_response(&client.request("DB 1 1"), &format!("OK DB 1 value={:016x}", shared::db::value(1)));
        let stats = client.request("STATS");
        // Per-loop fields are documented once, as `loopN_connections`.
        let written: Vec<String> = stats
            .split(' ')
            .skip(2)
            .filter_map(|field| field.split_once('='))
            .map(|(key, _)| {
                match key.strip_prefix("loop").and_then(|rest| rest.strip_suffix("_connections")) {
                    Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => "loopN_connections".to_string(),
                    _ => key.to_string(),
                }
            })
            .collect();
        assert_eq!(&written[..2], ["connections", "requests"], "{stats}");
        let row_name = match model {
            Model::ThreadPool => "| thread pool |",
            _ => "| event loop |",
        };
        let protocol = include_str!("../docs/PROTOCOL.md");
        let section = &protocol[protocol.find("### STATS").expect("a STATS section")..];
        let row = section.lines().find(|line| line.starts_with(row_name)).expect("a row for this server");
        // The first backticked word of each comma-separated item is a field.
        let listed: Vec<&str> = row
            .split(',')
            .filter_map(|item| item.split('`').nth(1))
            .collect();
        for key in &written[2..] {
            assert!(listed.contains(&key.as_str()), "STATS writes {key}, docs/PROTOCOL.md does not list it: {row}");
        }
        for key in &listed {
            assert!(written.iter().any(|k| k == key), "docs/PROTOCOL.md lists {key}, STATS does not write it: {stats}");
        }
    }

    fn help_summarises_the_commands(model) {
        let server = start(model);
        let mut client = server.connect();
        let help = client.request("help");
        assert!(help.starts_with("OK ") && help.contains("IMAGE") && help.contains("DB"), "{help}");
    }
}
