//! The whole `RequestReader`, HTTP dialect first: any bytes after an HTTP
//! request line, cut into reads of any sizes, must give the same items and
//! the same encoded responses as the same bytes in one read; nothing may
//! panic; between reads the reader holds no more than one partial line.
//! The first input byte picks the read size and whether to lead with a
//! request line (without one, the line protocol is exercised instead).
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::limits::MAX_LINE;
use shared::protocol::{busy_answer, Incoming, RequestReader, Work};

fn read(data: &[u8], read_size: usize) -> Vec<(Incoming, Vec<u8>)> {
    let mut reader = RequestReader::new();
    let mut out = Vec::new();
    let mut take = |item: Incoming| {
        let answer = match &item.work {
            Work::Serve(_) => "PONG\n".to_string(),
            Work::Answered(text) => text.clone(),
        };
        let mut bytes = Vec::new();
        item.reply.encode(&answer, &mut bytes);
        // The Date header may tick between the two runs: compare the rest.
        let bytes = bytes
            .split(|&b| b == b'\n')
            .filter(|line| !line.starts_with(b"Date: "))
            .flat_map(|line| line.iter().copied().chain([b'\n']))
            .collect();
        out.push((item, bytes));
    };
    for piece in data.chunks(read_size) {
        reader.push(piece);
        while let Some(item) = reader.next() {
            take(item);
        }
        assert!(reader.buffered() <= MAX_LINE + 1);
    }
    if let Some(item) = reader.finish() {
        take(item);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let read_size = usize::from(first & 0x3f) + 1;
    let mut stream = Vec::new();
    if first & 0x40 != 0 {
        stream.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    stream.extend_from_slice(rest);
    assert_eq!(read(&stream, read_size), read(&stream, stream.len().max(1)));
    let _ = busy_answer(rest);
});
