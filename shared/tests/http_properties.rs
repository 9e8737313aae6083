//! Properties of the HTTP dialect over generated input, through the whole
//! `RequestReader`: however the bytes are cut into reads, they come out as
//! the same items as when they arrive whole; nothing panics; between reads
//! the reader holds no more than one partial line; and every valid request
//! a client could build comes out as the request the line protocol would
//! make of the same command, with the same refusals for bad arguments.

mod common;

use proptest::prelude::*;
use shared::limits::MAX_LINE;
use shared::protocol::{parse_request, response, Incoming, RequestReader, Work};

/// The items a stream gives, cut at `cuts`, each with its encoded response
/// (for a served request, as if the server answered `PONG`), Date removed.
fn read(stream: &[u8], cuts: &[usize]) -> Vec<(Incoming, String)> {
    let mut reader = RequestReader::new();
    let mut out = Vec::new();
    for piece in common::pieces(stream, cuts) {
        reader.push(piece);
        while let Some(item) = reader.next() {
            out.push(encoded(item));
        }
        assert!(
            reader.buffered() <= MAX_LINE + 1,
            "reader holds {} bytes",
            reader.buffered()
        );
    }
    out.extend(reader.finish().map(encoded));
    out
}

fn encoded(item: Incoming) -> (Incoming, String) {
    let answer = match &item.work {
        Work::Serve(_) => "PONG\n",
        Work::Answered(text) => text,
    };
    let mut bytes = Vec::new();
    item.reply.encode(answer, &mut bytes);
    let text = String::from_utf8_lossy(&bytes)
        .split("\r\n")
        .filter(|line| !line.starts_with("Date: "))
        .collect::<Vec<_>>()
        .join("\r\n");
    (item, text)
}

/// Streams made of the pieces HTTP requests are made of, good and bad,
/// with runs long enough to cross every limit.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"GET /ping HTTP/1.1\r\n".to_vec()),
        Just(b"HEAD /db/7?delay_ms=0 HTTP/1.0\r\n".to_vec()),
        Just(b"POST /image/blur/2/2 HTTP/1.1\r\n".to_vec()),
        Just(b"GET /x HTTP/3.0\r\n".to_vec()),
        Just(b"Host: x\r\n".to_vec()),
        Just(b"Connection: keep-alive\r\n".to_vec()),
        Just(b"Connection: close\r\n".to_vec()),
        Just(b"Content-Length: 2\r\n".to_vec()),
        Just(b" folded\r\n".to_vec()),
        Just(b"X-Pad: ".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"PING\n".to_vec()),
        Just(vec![b'a'; 1000]),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    prop::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// A word a client might put where an argument goes: digits mostly, and
/// the things that are not quite numbers.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..20_000).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        Just("18446744073709551616".to_string()),
        // Not empty: the line protocol has no way to spell an empty word.
        "[0-9a-z+.%-]{1,6}",
    ]
}

/// A command in both spellings: an HTTP target and a line-protocol line.
fn command() -> impl Strategy<Value = (String, String)> {
    prop_oneof![
        Just(("/ping".to_string(), "PING".to_string())),
        Just(("/help".to_string(), "HELP".to_string())),
        Just(("/stats".to_string(), "STATS".to_string())),
        (word(), prop::option::of(word())).prop_map(|(id, delay)| match delay {
            Some(d) => (format!("/db/{id}?delay_ms={d}"), format!("DB {id} {d}")),
            None => (format!("/db/{id}"), format!("DB {id}")),
        }),
        (
            prop_oneof![Just("blur"), Just("edge"), Just("Blur"), Just("sharpen")],
            word(),
            word(),
            prop::option::of(word())
        )
            .prop_map(|(op, w, h, seed)| match seed {
                Some(s) => (
                    format!("/image/{op}/{w}/{h}?seed={s}"),
                    format!("IMAGE {op} {w} {h} {s}")
                ),
                None => (
                    format!("/image/{op}/{w}/{h}"),
                    format!("IMAGE {op} {w} {h}")
                ),
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn any_cutting_reads_like_the_whole(stream in stream(), cuts in prop::collection::vec(0usize..600, 0..30)) {
        // The first line decides the dialect, so lead with a request line
        // half the time to exercise HTTP rather than the line protocol.
        let mut http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        http.extend_from_slice(&stream);
        prop_assert_eq!(read(&http, &cuts), read(&http, &[]));
        prop_assert_eq!(read(&stream, &cuts), read(&stream, &[]));
    }

    #[test]
    fn any_bytes_after_a_request_line_never_panic(rest in prop::collection::vec(any::<u8>(), 0..3000), one_read in any::<bool>()) {
        let mut stream = b"GET / HTTP/1.1\r\n".to_vec();
        stream.extend_from_slice(&rest);
        let cuts = if one_read { vec![] } else { vec![7; stream.len() / 7] };
        let _ = read(&stream, &cuts);
    }

    #[test]
    fn a_valid_request_means_what_its_line_means(
        (target, line) in command(),
        head in any::<bool>(),
        http10 in any::<bool>(),
        extra in prop::collection::vec("[A-Za-z-]{1,12}: [ -~]{0,30}", 0..5),
    ) {
        let method = if head { "HEAD" } else { "GET" };
        let version = if http10 { "1.0" } else { "1.1" };
        let headers: String = extra
            .iter()
            .filter(|h| {
                // Headers that change the outcome have tests of their own.
                let name = h.split(':').next().unwrap_or("").to_ascii_lowercase();
                !["host", "connection", "content-length", "transfer-encoding"].contains(&name.as_str())
            })
            .map(|h| format!("{h}\r\n"))
            .collect();
        let request = format!("{method} {target} HTTP/{version}\r\nHost: h\r\n{headers}\r\n");
        let items = read(request.as_bytes(), &[]);
        prop_assert_eq!(items.len(), 1);
        let expected = match parse_request(line.as_bytes()) {
            Some(Ok(request)) => Work::Serve(request),
            Some(Err(e)) => Work::Answered(response::error(&e)),
            None => unreachable!("no command is blank"),
        };
        let (item, text) = &items[0];
        prop_assert_eq!(&item.work, &expected);
        let status = if matches!(expected, Work::Serve(_)) { "200" } else { "400" };
        prop_assert!(text.starts_with(&format!("HTTP/1.1 {status} ")), "{}", text);
        prop_assert_eq!(item.reply.ends_connection(), http10);
    }
}
