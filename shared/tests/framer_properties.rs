//! Properties of the framer and the parser over arbitrary input: however a
//! byte stream is cut into reads, it frames into the same lines and errors
//! as when it arrives whole; nothing panics; between reads the framer never
//! holds more than the line limit (plus a `\r`).

mod common;

use proptest::prelude::*;
use shared::limits::MAX_LINE;
use shared::protocol::{parse_request, LineFramer, LineTooLong};

/// What a stream frames into: each line (parsed, to exercise the parser
/// too) or the too-long error, then the final unterminated line.
fn frame(stream: &[u8], cuts: &[usize]) -> Vec<Result<Vec<u8>, LineTooLong>> {
    let mut framer = LineFramer::new();
    let mut out = Vec::new();
    for piece in common::pieces(stream, cuts) {
        framer.push(piece);
        while let Some(line) = framer.next_line() {
            if let Ok(line) = line {
                let _ = parse_request(line);
            }
            out.push(line.map(<[u8]>::to_vec));
        }
        // Once it has no complete line left, only a partial line remains.
        assert!(
            framer.buffered() <= MAX_LINE + 1,
            "framer holds {} bytes",
            framer.buffered()
        );
    }
    if let Some(line) = framer.finish() {
        out.push(line.map(<[u8]>::to_vec));
    }
    out
}

/// Streams rich in the bytes that matter: newlines, `\r`, spaces, command
/// words, and runs long enough to cross the line limit.
fn stream() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"PING".to_vec()),
        Just(b"DB 1 0".to_vec()),
        Just(b" \t".to_vec()),
        Just(vec![b'x'; MAX_LINE - 2]),
        prop::collection::vec(any::<u8>(), 0..40),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_cutting_frames_like_the_whole(stream in stream(), cuts in prop::collection::vec(0usize..300, 0..20)) {
        prop_assert_eq!(frame(&stream, &cuts), frame(&stream, &[]));
    }

    #[test]
    fn any_bytes_parse_without_panicking(line in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_request(&line);
    }
}
