//! What both baseline servers share: the fake database's value, the command
//! line, the runtime and the listener. Kept tiny and copied (not imported)
//! from the workspace, so the baselines build on their own.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;

/// Copied from `shared/src/lib.rs`.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Copied from `shared/src/db.rs`: the stored value of `id`.
pub fn db_value(id: u64) -> u64 {
    splitmix64(id)
}

/// The longest database wait a request may ask for, as in `shared::limits`.
pub const MAX_DB_DELAY_MS: u64 = 10_000;

/// Answers sent (queued for sending), for `STATS`: the same meaning as the
/// workspace servers' `requests_answered`.
pub static ANSWERED: AtomicU64 = AtomicU64::new(0);

pub fn count_answer() {
    ANSWERED.fetch_add(1, Ordering::Relaxed);
}

pub fn answered() -> u64 {
    ANSWERED.load(Ordering::Relaxed)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    Current,
    Multi,
}

#[derive(Debug)]
pub struct Args {
    pub addr: SocketAddr,
    pub flavor: Flavor,
    /// Worker threads of the multi-thread runtime; `None`: tokio's default
    /// (one per core).
    pub workers: Option<usize>,
    pub db_delay: Duration,
}

/// Parses `--addr HOST:PORT --flavor current|multi --workers N
/// --db-delay-ms MS` (also `--name=value`). Exits 2 with one line on error.
pub fn parse_args(name: &str, default_flavor: Flavor) -> Args {
    let usage = format!(
        "usage: {name} [--addr HOST:PORT (127.0.0.1:7878)] [--flavor current|multi] \
         [--workers N] [--db-delay-ms MS (50)]"
    );
    let mut args = Args {
        addr: "127.0.0.1:7878".parse().unwrap(),
        flavor: default_flavor,
        workers: None,
        db_delay: Duration::from_millis(50),
    };
    let mut it = std::env::args().skip(1);
    let fail = |msg: String| -> ! {
        eprintln!("{name}: {msg}\n{usage}");
        std::process::exit(2)
    };
    while let Some(arg) = it.next() {
        if arg == "-h" || arg == "--help" {
            println!("{usage}");
            std::process::exit(0);
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let value = match inline.or_else(|| it.next()) {
            Some(v) => v,
            None => fail(format!("{flag} needs a value")),
        };
        match flag.as_str() {
            "--addr" => {
                args.addr = value
                    .parse()
                    .unwrap_or_else(|_| fail(format!("bad --addr '{value}'")))
            }
            "--flavor" => {
                args.flavor = match value.as_str() {
                    "current" | "current_thread" => Flavor::Current,
                    "multi" | "multi_thread" => Flavor::Multi,
                    _ => fail(format!("bad --flavor '{value}'")),
                }
            }
            "--workers" => match value.parse::<usize>() {
                Ok(n) if n >= 1 => args.workers = Some(n),
                _ => fail(format!("bad --workers '{value}'")),
            },
            "--db-delay-ms" => match value.parse::<u64>() {
                Ok(ms) if ms <= MAX_DB_DELAY_MS => args.db_delay = Duration::from_millis(ms),
                _ => fail(format!("bad --db-delay-ms '{value}'")),
            },
            _ => fail(format!("unknown flag '{flag}'")),
        }
    }
    args
}

/// The runtime `args` ask for.
pub fn runtime(args: &Args) -> tokio::runtime::Runtime {
    let mut builder = match args.flavor {
        Flavor::Current => tokio::runtime::Builder::new_current_thread(),
        Flavor::Multi => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            if let Some(n) = args.workers {
                b.worker_threads(n);
            }
            b
        }
    };
    builder.enable_all().build().expect("tokio runtime")
}

/// Binds `addr` and prints `listening on ADDR` as the first stdout line,
/// like the workspace servers, so scripts can use port 0.
pub async fn bind(addr: SocketAddr) -> TcpListener {
    use std::io::Write;
    // tokio's bind is mio's: SO_REUSEADDR and a backlog of 128, as std's.
    // Our servers ask for 4096 (shared/src/listen.rs; baselines/README.md).
    let listener = match TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", listener.local_addr().unwrap());
    let _ = out.flush();
    listener
}

/// `OK DB <id> value=<16 hex digits>\n`, as the workspace servers answer.
pub fn db_answer(id: u64) -> String {
    format!("OK DB {id} value={:016x}\n", db_value(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_the_protocol_vectors() {
        assert_eq!(db_answer(0), "OK DB 0 value=e220a8397b1dcdaf\n");
        assert_eq!(db_answer(42), "OK DB 42 value=bdd732262feb6e95\n");
        assert_eq!(
            db_answer(u64::MAX),
            "OK DB 18446744073709551615 value=e4d971771b652c20\n"
        );
    }
}
