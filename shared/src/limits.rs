//! Every bound the wire contract puts on what a client can ask for, and the
//! defaults both servers share. One place, so that the parser, the servers,
//! the tests and the docs cannot disagree.

use std::time::Duration;

/// Longest request line, in bytes, not counting `\n` or `\r\n`.
pub const MAX_LINE: usize = 1024;
/// Most header lines one HTTP request may have (each also within
/// [`MAX_LINE`]).
pub const MAX_HEADER_LINES: usize = 64;
/// Most bytes of header lines, `\r\n` counted, one HTTP request may have.
/// Memory is bounded without it (headers are looked at line by line and
/// never kept); this bounds how much a client can make the server parse
/// before its request is even complete.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Largest image side; 4096 x 4096 is 16 MiB of source pixels per job.
pub const MAX_IMAGE_SIDE: u32 = 4096;
/// Longest fake-database delay a client may ask for.
pub const MAX_DB_DELAY_MS: u64 = 10_000;
/// Delay of `DB <id>` when the client names none (`--db-delay-ms`).
pub const DEFAULT_DB_DELAY_MS: u64 = 50;
/// A connection with no complete request for this long is closed
/// (`--idle-timeout-secs`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection whose unsent output makes no progress for this long is
/// closed (`--write-timeout-secs`): a client that never reads cannot hold a
/// worker or a buffer for ever.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
