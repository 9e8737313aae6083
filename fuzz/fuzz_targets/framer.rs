//! Any bytes, cut into reads of any sizes, must frame into the same lines
//! and errors as the same bytes in one read; framing and parsing must never
//! panic; between reads the framer holds no more than the line limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::limits::MAX_LINE;
use shared::protocol::{parse_request, LineFramer, LineTooLong};

fn frame(data: &[u8], read_size: usize) -> Vec<Result<Vec<u8>, LineTooLong>> {
    let mut framer = LineFramer::new();
    let mut out = Vec::new();
    for piece in data.chunks(read_size) {
        framer.push(piece);
        while let Some(line) = framer.next_line() {
            if let Ok(line) = line {
                let _ = parse_request(line);
            }
            out.push(line.map(<[u8]>::to_vec));
        }
        assert!(framer.buffered() <= MAX_LINE + 1);
    }
    if let Some(line) = framer.finish() {
        out.push(line.map(<[u8]>::to_vec));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let read_size = usize::from(first) % 64 + 1;
    assert_eq!(frame(rest, read_size), frame(rest, rest.len().max(1)));
});
