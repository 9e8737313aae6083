//! The command line both servers share: flags, `--help`, exit codes, the
//! start-up line, and graceful shutdown on Ctrl-C or SIGTERM.
//!
//! A server binary is a thin shell: it describes its own flags, how they
//! build its config, and how it starts, in a [`ServerCommand`]. Everything a
//! person sees at the terminal is decided here, so both servers behave the
//! same: usage on `--help` (exit 0), one line on stderr for a bad flag
//! (exit 2) or an address that cannot be bound (exit 1), never a backtrace.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::Display;
use std::io::{self, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use crate::limits;

/// One `--name VALUE` flag, as `--help` shows it.
pub struct Flag {
    pub name: &'static str,
    pub value: &'static str,
    pub help: &'static str,
}

/// The flags every server takes.
pub const COMMON_FLAGS: &[Flag] = &[
    Flag {
        name: "addr",
        value: "HOST:PORT",
        help: "address to listen on; port 0 picks a free one",
    },
    Flag {
        name: "idle-timeout-secs",
        value: "N",
        help: "close a connection that sends no complete request for N seconds [60]",
    },
    Flag {
        name: "write-timeout-secs",
        value: "N",
        help: "close a connection whose output makes no progress for N seconds [30]",
    },
    Flag {
        name: "stats-addr",
        value: "HOST:PORT",
        help: "serve the live view (GET /live, GET /stats.json) on this address too [off]",
    },
    Flag {
        name: "db-delay-ms",
        value: "N",
        help: "delay of `DB <id>` without a delay, 0 to 10000 [50]",
    },
];

/// Why the command line did not yield a config.
#[derive(Debug, PartialEq, Eq)]
pub enum CliError {
    /// `--help` or `-h`: print usage, exit 0.
    HelpRequested,
    /// Anything wrong: the one-line reason, exit 2.
    Invalid(String),
}

/// `--name value` pairs, checked against the flags a server knows.
#[derive(Debug, Default)]
pub struct ParsedFlags {
    values: HashMap<&'static str, String>,
}

impl ParsedFlags {
    pub fn parse(
        args: impl IntoIterator<Item = OsString>,
        known: &[&[Flag]],
    ) -> Result<Self, CliError> {
        let mut values = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = arg
                .into_string()
                .map_err(|bad| CliError::Invalid(format!("argument is not UTF-8: {bad:?}")))?;
            if arg == "--help" || arg == "-h" {
                return Err(CliError::HelpRequested);
            }
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(CliError::Invalid(format!("unexpected argument '{arg}'")));
            };
            let (name, inline_value) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (flag, None),
            };
            let Some(spec) = known
                .iter()
                .flat_map(|flags| flags.iter())
                .find(|f| f.name == name)
            else {
                return Err(CliError::Invalid(format!("unknown flag '--{name}'")));
            };
            let value = match inline_value {
                Some(value) => value,
                None => args
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or_else(|| {
                        CliError::Invalid(format!("--{name} needs a value ({})", spec.value))
                    })?,
            };
            values.insert(spec.name, value);
        }
        Ok(ParsedFlags { values })
    }

    /// The flag's number, if given, checked to lie in `min..=max`.
    pub fn number<T>(&self, name: &str, min: T, max: T) -> Result<Option<T>, CliError>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        let Some(text) = self.values.get(name) else {
            return Ok(None);
        };
        match text.parse::<T>() {
            Ok(n) if n >= min && n <= max => Ok(Some(n)),
            _ => Err(CliError::Invalid(format!(
                "--{name} must be a whole number from {min} to {max}, not '{text}'"
            ))),
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// Settings every server has.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    pub addr: SocketAddr,
    pub idle_timeout: Duration,
    pub write_timeout: Duration,
    pub default_db_delay: Duration,
    /// Where the monitoring thread serves `/live` (`shared::live`); `None`:
    /// no monitoring thread.
    pub stats_addr: Option<SocketAddr>,
}

impl CommonConfig {
    /// Defaults, listening on `addr`.
    pub fn new(addr: SocketAddr) -> Self {
        CommonConfig {
            addr,
            idle_timeout: limits::DEFAULT_IDLE_TIMEOUT,
            write_timeout: limits::DEFAULT_WRITE_TIMEOUT,
            default_db_delay: Duration::from_millis(limits::DEFAULT_DB_DELAY_MS),
            stats_addr: None,
        }
    }

    /// How often an event loop needs to look at a connection to enforce
    /// both timeouts: the shorter of the two.
    pub fn watchdog_period(&self) -> Duration {
        self.idle_timeout.min(self.write_timeout)
    }

    pub fn from_flags(flags: &ParsedFlags, default_addr: SocketAddr) -> Result<Self, CliError> {
        let mut config = CommonConfig::new(default_addr);
        if let Some(text) = flags.text("addr") {
            config.addr = resolve("addr", text)?;
        }
        if let Some(text) = flags.text("stats-addr") {
            config.stats_addr = Some(resolve("stats-addr", text)?);
        }
        let day = 24 * 60 * 60;
        if let Some(secs) = flags.number("idle-timeout-secs", 1u64, day)? {
            config.idle_timeout = Duration::from_secs(secs);
        }
        if let Some(secs) = flags.number("write-timeout-secs", 1u64, day)? {
            config.write_timeout = Duration::from_secs(secs);
        }
        if let Some(ms) = flags.number("db-delay-ms", 0u64, limits::MAX_DB_DELAY_MS)? {
            config.default_db_delay = Duration::from_millis(ms);
        }
        Ok(config)
    }
}

fn resolve(flag: &str, text: &str) -> Result<SocketAddr, CliError> {
    let invalid = || {
        CliError::Invalid(format!(
            "--{flag} must be HOST:PORT, such as 127.0.0.1:7878, not '{text}'"
        ))
    };
    text.to_socket_addrs()
        .map_err(|_| invalid())?
        .next()
        .ok_or_else(invalid)
}

/// What [`ServerCommand`] needs of a running server.
pub trait RunningServer {
    fn local_addr(&self) -> SocketAddr;
    /// Where the live view is served, if `--stats-addr` was given (a
    /// server without a live view keeps this default).
    fn stats_addr(&self) -> Option<SocketAddr> {
        None
    }
    /// Stops accepting, answers every request already read, closes every
    /// connection, and returns how many responses that drain sent.
    fn shutdown(self) -> u64;
}

/// A server binary: what `--help` says, its own flags, and how it starts.
/// Each server crate has one, `COMMAND`, and everything that runs the
/// binary (its `main`, the comparison's child processes, the docs test)
/// goes through it.
pub struct ServerCommand<C, S> {
    pub name: &'static str,
    pub about: &'static str,
    /// Where the server listens without `--addr`.
    pub default_addr: &'static str,
    pub flags: &'static [Flag],
    /// The server's config from the common settings and its own flags.
    pub config: fn(CommonConfig, &ParsedFlags) -> Result<C, CliError>,
    pub start: fn(C) -> io::Result<S>,
}

impl<C, S: RunningServer> ServerCommand<C, S> {
    /// Every flag this command takes, the common ones first. Parsing,
    /// `--help` and [`ServerCommand::accepted_flags`] all read this one
    /// list, so they cannot disagree.
    fn flag_lists(&self) -> [&'static [Flag]; 2] {
        [COMMON_FLAGS, self.flags]
    }

    /// The name of every flag this command accepts, without its leading
    /// `--`, `help` included. The docs test checks every flag the docs show
    /// against this, so a renamed flag cannot linger in a README.
    pub fn accepted_flags(&self) -> Vec<&'static str> {
        self.flag_lists()
            .into_iter()
            .flatten()
            .map(|flag| flag.name)
            .chain(["help"])
            .collect()
    }

    pub fn usage(&self) -> String {
        let mut text = format!("{}\n\nUsage: {} [FLAGS]\n\nFlags:\n", self.about, self.name);
        for flag in self.flag_lists().into_iter().flatten() {
            let left = format!("--{} {}", flag.name, flag.value);
            text.push_str(&format!("  {left:<28} {}\n", flag.help));
        }
        text.push_str(&format!(
            "  {:<28} {}\n",
            "-h, --help", "print this and exit"
        ));
        text
    }

    /// The binary's whole behaviour, callable from tests: parse `args`
    /// (without the program name), start, print where it listens, wait for
    /// SIGINT or SIGTERM, drain, exit.
    pub fn main_with_args(&self, args: impl IntoIterator<Item = OsString>) -> ExitCode {
        install_one_line_panic_messages();
        let default_addr = self
            .default_addr
            .parse()
            .expect("a server's default address is valid");
        let parsed = ParsedFlags::parse(args, &self.flag_lists()).and_then(|flags| {
            let common = CommonConfig::from_flags(&flags, default_addr)?;
            (self.config)(common, &flags)
        });
        let config = match parsed {
            Ok(config) => config,
            Err(CliError::HelpRequested) => {
                print!("{}", self.usage());
                return ExitCode::SUCCESS;
            }
            Err(CliError::Invalid(reason)) => {
                eprintln!("{}: {reason} (see --help)", self.name);
                return ExitCode::from(2);
            }
        };
        // Signals are set up before the socket, so a Ctrl-C can never arrive
        // in a window where it would kill the process without a drain.
        let mut signals = match signal_hook::iterator::Signals::new([
            signal_hook::consts::SIGINT,
            signal_hook::consts::SIGTERM,
        ]) {
            Ok(signals) => signals,
            Err(e) => {
                eprintln!("{}: cannot handle signals: {e}", self.name);
                return ExitCode::FAILURE;
            }
        };
        let server = match (self.start)(config) {
            Ok(server) => server,
            Err(e) => {
                eprintln!("{}: cannot start: {e}", self.name);
                return ExitCode::FAILURE;
            }
        };
        let mut stdout = io::stdout();
        // Scripts wait for this line to learn the port, so it goes out now.
        let _ = writeln!(stdout, "listening on {}", server.local_addr());
        if let Some(stats) = server.stats_addr() {
            let _ = writeln!(stdout, "live view on http://{stats}/live");
        }
        let _ = stdout.flush();

        signals.forever().next();
        eprintln!(
            "{}: shutting down; press Ctrl-C again to exit at once",
            self.name
        );
        let name = self.name;
        std::thread::spawn(move || {
            if signals.forever().next().is_some() {
                eprintln!("{name}: second signal, exiting without draining");
                std::process::exit(130);
            }
        });
        let drained = server.shutdown();
        let _ = writeln!(stdout, "shut down cleanly; drained {drained} requests");
        let _ = stdout.flush();
        ExitCode::SUCCESS
    }
}

/// A panic is a bug, but a person should see one line saying so, not a
/// backtrace. (Jobs that panic are also caught and answered `ERR internal
/// error` by the servers; this only changes how the message looks.)
fn install_one_line_panic_messages() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("internal error: {}{place}", message.replace('\n', " "));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ParsedFlags, CliError> {
        ParsedFlags::parse(args.iter().map(OsString::from), &[COMMON_FLAGS])
    }

    #[test]
    fn takes_values_after_a_space_or_an_equals_sign() {
        let flags = parse(&["--idle-timeout-secs", "5", "--db-delay-ms=7"]).unwrap();
        assert_eq!(flags.number("idle-timeout-secs", 1u64, 9).unwrap(), Some(5));
        assert_eq!(flags.number("db-delay-ms", 0u64, 9).unwrap(), Some(7));
    }

    #[test]
    fn rejects_unknown_flags_missing_values_and_numbers_out_of_range() {
        assert!(matches!(parse(&["--nope"]), Err(CliError::Invalid(_))));
        assert!(matches!(parse(&["--addr"]), Err(CliError::Invalid(_))));
        assert!(matches!(parse(&["stray"]), Err(CliError::Invalid(_))));
        let flags = parse(&["--db-delay-ms", "10001"]).unwrap();
        assert!(flags.number("db-delay-ms", 0u64, 10_000).is_err());
        assert_eq!(
            parse(&["--addr", "x", "--help"]).unwrap_err(),
            CliError::HelpRequested
        );
    }
}
