//! `tokio_line`: the line protocol's PING, DB, STATS and QUIT on tokio, the
//! way a tokio engineer would write it, to measure our event loop against.
//!
//! One task per connection. It reads lines through a `BufReader`, turns
//! each into a future of its answer and queues it in a `FuturesOrdered`, so
//! answers leave in request order however the database waits overlap. Ready
//! answers go into a `BufWriter`, which is flushed once nothing more is
//! immediately ready (no answer due, no complete line buffered), so a
//! pipelined burst leaves in one write.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::time::Duration;

use baselines::{answered, count_answer, db_answer, Flavor, MAX_DB_DELAY_MS};
use futures::future::{ready, Either, Ready};
use futures::stream::{FuturesOrdered, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

/// The longest request line, `\n` and a `\r` before it not counted.
const MAX_LINE: usize = 1024;
/// Answers a connection may owe before it is no longer read from (as in
/// the event loop).
const MAX_PENDING: usize = 1024;

fn main() {
    let args = baselines::parse_args("tokio_line", Flavor::Current);
    let default_delay = args.db_delay;
    baselines::runtime(&args).block_on(async move {
        let listener = baselines::bind(args.addr).await;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(async move {
                        let _ = serve(stream, default_delay).await;
                    });
                }
                // Out of file descriptors, most likely: let some close.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    });
}

/// One answer line and whether it is the connection's last.
struct Reply {
    text: Cow<'static, str>,
    ends: bool,
}

impl Reply {
    fn text(text: impl Into<Cow<'static, str>>) -> Self {
        Reply { text: text.into(), ends: false }
    }
    fn last(text: &'static str) -> Self {
        Reply { text: text.into(), ends: true }
    }
}

async fn serve(mut stream: TcpStream, default_delay: Duration) -> io::Result<()> {
    let (rd, wr) = stream.split();
    let mut reader = BufReader::new(rd);
    let mut writer = BufWriter::new(wr);
    let mut line = Vec::with_capacity(128);
    let mut pending = FuturesOrdered::new();
    let mut reading = true;
    let mut dirty = false;
    loop {
        tokio::select! {
            // Answers first, then more requests, and a flush only once
            // neither is ready.
            biased;
            Some(Reply { text, ends }) = pending.next(), if !pending.is_empty() => {
                writer.write_all(text.as_bytes()).await?;
                count_answer();
                dirty = true;
                if ends {
                    break;
                }
            }
            got = read_line(&mut reader, &mut line), if reading && pending.len() < MAX_PENDING => {
                let complete = line.last() == Some(&b'\n');
                if got? == 0 && line.is_empty() {
                    reading = false; // end of stream
                } else if !complete && line.len() > MAX_LINE + 1 {
                    pending.push_back(Either::Left(ready(Reply::last("ERR line too long\n"))));
                    reading = false;
                } else {
                    if !complete {
                        reading = false; // an unterminated last line
                    }
                    if let Some((answer, last)) = respond(&line, default_delay) {
                        pending.push_back(answer);
                        reading &= !last;
                    }
                    line.clear();
                }
            }
            flushed = writer.flush(), if dirty => {
                flushed?;
                dirty = false;
            }
            else => break,
        }
    }
    writer.flush().await
}

/// Reads up to the next `\n` (kept) into `buf`, but never more than one
/// byte past the longest line, so a client cannot make it grow without end.
/// Cancel-safe: bytes read before a cancellation stay in `buf`.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
) -> io::Result<usize> {
    let room = (MAX_LINE + 2).saturating_sub(buf.len()) as u64;
    reader.take(room).read_until(b'\n', buf).await
}

/// The answer to one request line (`None` for a blank line), as a future
/// that is ready at once except for a database wait, and whether nothing
/// after this line is to be read.
fn respond(
    line: &[u8],
    default_delay: Duration,
) -> Option<(Either<Ready<Reply>, impl Future<Output = Reply>>, bool)> {
    let mut words = line
        .split(|&b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .filter(|w| !w.is_empty());
    let command = words.next()?;
    let args: Vec<&[u8]> = words.collect();
    let now = |reply: Reply| {
        let last = reply.ends;
        Some((Either::Left(ready(reply)), last))
    };
    let is = |name: &str| command.eq_ignore_ascii_case(name.as_bytes());
    if is("PING") {
        return now(match args.len() {
            0 => Reply::text("PONG\n"),
            _ => Reply::text("ERR usage: PING\n"),
        });
    }
    if is("STATS") {
        return now(Reply::text(format!("OK STATS requests={}\n", answered())));
    }
    if is("QUIT") {
        return now(Reply::last("BYE\n"));
    }
    if !is("DB") {
        return now(Reply::text("ERR unknown command\n"));
    }
    let (id, delay) = match args[..] {
        [id] => (number(id), Some(default_delay)),
        [id, ms] => (
            number(id),
            number(ms)
                .filter(|&ms| ms <= MAX_DB_DELAY_MS)
                .map(Duration::from_millis),
        ),
        _ => (None, None),
    };
    let (Some(id), Some(delay)) = (id, delay) else {
        return now(Reply::text("ERR usage: DB <id> [delay_ms]\n"));
    };
    if delay.is_zero() {
        return now(Reply::text(db_answer(id)));
    }
    let wait = async move {
        tokio::time::sleep(delay).await;
        Reply::text(db_answer(id))
    };
    Some((Either::Right(wait), false))
}

/// ASCII digits only, like the workspace's parser.
fn number(text: &[u8]) -> Option<u64> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}
