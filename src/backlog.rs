//! How many connections wait in a local listener's accept queue, read from
//! `/proc/net/tcp` (Linux, IPv4).
//!
//! Why the load generator needs it: a client's connect completes in the
//! kernel before the server calls `accept`. A server that accepts slowly
//! (a fresh pool of a thousand threads, each touching its stack for the
//! first time) lets the queue fill up to its backlog (4096 for the
//! project's servers, `shared/src/listen.rs`; 128 for a server that takes
//! std's or mio's default), and past it the kernel drops SYNs: those
//! clients retry after 1 s, then 3 s. Opening connections only while the
//! queue has room keeps every connect prompt, whatever the server's
//! backlog; `--connect burst` does the opposite on purpose.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};

/// `st` of a listening socket in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// Connections waiting to be accepted on the listener at `addr`, or `None`
/// where that cannot be read (another OS, IPv6, no such listener).
pub fn accept_queue(addr: SocketAddr) -> Option<u64> {
    let IpAddr::V4(ip) = addr.ip() else {
        return None;
    };
    // Listeners come first in the table, before every connection (and the
    // thousands in TIME_WAIT a load run leaves): read line by line and
    // stop at the first socket that is not listening, so a check costs a
    // page of text, not megabytes.
    let table = BufReader::new(File::open("/proc/net/tcp").ok()?);
    // The kernel prints the address as a host-order u32 in hex.
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(ip.octets()),
        addr.port()
    );
    let any = format!("00000000:{:04X}", addr.port());
    for line in table.lines().skip(1) {
        let line = line.ok()?;
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (address, state, queues) = (fields.get(1)?, fields.get(3)?, fields.get(4)?);
        if *state != LISTEN {
            return None; // past the listeners
        }
        if *address == local || *address == any {
            // For a listener, rx_queue is the accept queue's length.
            let (_tx, rx) = queues.split_once(':')?;
            return u64::from_str_radix(rx, 16).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn an_unaccepted_connection_is_seen_in_the_queue() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
        let addr = listener.local_addr().expect("has an address");
        if accept_queue(addr).is_none() {
            return; // no /proc/net/tcp here: nothing to test
        }
        assert_eq!(accept_queue(addr), Some(0));
        let _client = std::net::TcpStream::connect(addr).expect("connects");
        assert_eq!(accept_queue(addr), Some(1));
        let _accepted = listener.accept().expect("accepts");
        assert_eq!(accept_queue(addr), Some(0));
    }
}
