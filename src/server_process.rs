//! Each server measured runs in a process of its own: this binary again,
//! with `--serve MODEL FLAGS...`.
//!
//! Why a process and not a thread: the kernel accounts memory, CPU time and
//! context switches per process (and per thread). In a process of its own,
//! what `/proc` says about the server is the server's alone, with none of
//! the load generator's work in it.
//!
//! The child reports its resident memory and the machine's `KernelStack`
//! before it starts a single server thread (`baseline ...`), then runs the
//! server binary's own `main`, which prints `listening on ADDRESS`. The pool
//! starts its workers at once, so a baseline read later would already hold
//! them.

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};

use crate::procstat;

/// The Node.js baseline's entry point, in this checkout.
pub const NODE_SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/baselines/node/server.js");

/// Whether `node` runs here (the comparison's Node.js rows need it).
pub fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
        && std::path::Path::new(NODE_SERVER).exists()
}

/// What the child measured of itself before any server thread existed.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    pub rss_bytes: u64,
    pub kernel_stack_bytes: Option<u64>,
}

/// A server process, killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// Kept open so the server never writes into a closed pipe.
    _stdout: BufReader<ChildStdout>,
    pub addr: SocketAddr,
    pub baseline: Baseline,
}

impl ServerProcess {
    /// Starts `this binary --serve ARGS --addr 127.0.0.1:0` and waits until
    /// it listens.
    pub fn start(args: &[String]) -> io::Result<ServerProcess> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("--serve")
            .args(args)
            .args(["--addr", "127.0.0.1:0"]);
        let mut process = ServerProcess::spawn(command)?;
        let first = process.line()?;
        process.baseline = parse_baseline(&first)
            .ok_or_else(|| io::Error::other(format!("server did not start: {first:?}")))?;
        process.read_address()?;
        Ok(process)
    }

    /// Starts the Node.js baseline, `node baselines/node/server.js ARGS
    /// --addr 127.0.0.1:0`, pinned to `pin` if given, and waits
    /// until it listens. Its baseline memory is not measured: the memory
    /// scenario does not run it.
    pub fn start_node(args: &[String], pin: Option<&[usize]>) -> io::Result<ServerProcess> {
        let mut command = Command::new("node");
        command
            .arg(NODE_SERVER)
            .args(args)
            .args(["--addr", "127.0.0.1:0"]);
        if let Some(cores) = pin {
            crate::os::pin_command(&mut command, cores)?;
        }
        let mut process = ServerProcess::spawn(command)?;
        process.read_address()?;
        Ok(process)
    }

    /// Spawns `command` with its stdout piped to us, stderr passed through.
    fn spawn(mut command: Command) -> io::Result<ServerProcess> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::other("no stdout from the server process"));
        };
        Ok(ServerProcess {
            child,
            _stdout: BufReader::new(stdout),
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            baseline: Baseline {
                rss_bytes: 0,
                kernel_stack_bytes: None,
            },
        })
    }

    /// Reads `listening on ADDRESS`, the line every server here prints
    /// once it listens.
    fn read_address(&mut self) -> io::Result<()> {
        let line = self.line()?;
        self.addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| io::Error::other(format!("server did not start: {line:?}")))?;
        Ok(())
    }

    fn line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        self._stdout.read_line(&mut line)?;
        Ok(line)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Killed, not drained: the measurement is over, and a pool of
        // thousands of threads would take a while to wind down politely.
        // A process's children (node:cluster's workers) go first: killing
        // only the primary could leave them serving.
        for child in crate::procstat::children_of(self.child.id()) {
            // SAFETY: `kill` sends a signal and touches no memory; the pid
            // was read a moment ago from our own child's children list.
            unsafe { libc::kill(child as libc::pid_t, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_baseline(line: &str) -> Option<Baseline> {
    let mut rss_bytes = None;
    let mut kernel_stack_bytes = None;
    for word in line.strip_prefix("baseline ")?.split_whitespace() {
        match word.split_once('=')? {
            ("rss_bytes", n) => rss_bytes = n.parse().ok(),
            ("kernel_stack_bytes", n) => kernel_stack_bytes = n.parse().ok(),
            _ => {}
        }
    }
    Some(Baseline {
        rss_bytes: rss_bytes?,
        kernel_stack_bytes,
    })
}

/// The child's side: pin itself to `--cores LIST` if given (before any
/// server thread exists, so every one inherits it), report the baseline,
/// then be the server.
pub fn serve(args: &[OsString]) -> ExitCode {
    let mut args = args;
    if args.first().is_some_and(|a| a == "--cores") {
        let list = args.get(1).and_then(|a| a.to_str()).unwrap_or_default();
        let pinned = crate::os::parse_cores(list)
            .ok_or_else(|| format!("--cores takes a list such as 0-7, not '{list}'"))
            .and_then(|cores| {
                crate::os::pin_to(&cores).map_err(|e| format!("--cores {list}: {e}"))
            });
        if let Err(reason) = pinned {
            eprintln!("parallel_vs_async: {reason}");
            return ExitCode::from(2);
        }
        args = &args[2..];
    }
    let rss = procstat::rss_bytes(std::process::id()).unwrap_or(0);
    let kernel_stack =
        procstat::kernel_stack_bytes().map_or("-".to_string(), |bytes| bytes.to_string());
    let mut stdout = io::stdout();
    if writeln!(
        stdout,
        "baseline rss_bytes={rss} kernel_stack_bytes={kernel_stack}"
    )
    .and_then(|()| stdout.flush())
    .is_err()
    {
        return ExitCode::FAILURE; // nobody is listening
    }
    let rest = args.iter().skip(1).cloned();
    match args.first().and_then(|a| a.to_str()) {
        Some("thread_pool") => thread_pool_server::COMMAND.main_with_args(rest),
        Some("event_loop") => event_loop_server::COMMAND.main_with_args(rest),
        _ => {
            eprintln!("parallel_vs_async: --serve takes thread_pool or event_loop");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_baseline_line_round_trips() {
        let b = parse_baseline("baseline rss_bytes=4096 kernel_stack_bytes=-\n").expect("parses");
        assert_eq!((b.rss_bytes, b.kernel_stack_bytes), (4096, None));
        let b = parse_baseline("baseline rss_bytes=1 kernel_stack_bytes=2").expect("parses");
        assert_eq!(b.kernel_stack_bytes, Some(2));
        assert!(parse_baseline("listening on 127.0.0.1:1").is_none());
    }
}
