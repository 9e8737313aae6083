//! What an event is for: every `mio::Token` a loop registers, decoded in
//! one place.
//!
//! A token is the number a loop hands `poll` with each thing it registers,
//! and gets back with each event. The ranges, all here:
//!
//! ```text
//!   0                       the listener (loop 0 only)
//!   1                       the waker: another thread has something for us
//!   2                       the clock's precise timer (clock.rs)
//!   3 ..  FIRST_REFUSED     a connection: 3 + its slot in the loop's slab
//!   FIRST_REFUSED ..        a refused connection waiting for its first
//!                           bytes: FIRST_REFUSED + its slot (refuse.rs)
//! ```
//!
//! The refused range starts halfway up `usize` (`FIRST_REFUSED`), and a
//! slab never holds anywhere near that many entries (each is a descriptor),
//! so the two ranges cannot meet. A token says only which slot an event is for; whether the slot
//! still holds the connection it was meant for is the slab's question
//! (its generations, slab.rs).

use mio::Token;

const LISTENER: usize = 0;
const WAKER: usize = 1;
const CLOCK: usize = 2;
const FIRST_CONNECTION: usize = 3;
const FIRST_REFUSED: usize = usize::MAX / 2;

/// What an event's token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The listening socket: connections are waiting to be accepted.
    Listener,
    /// Another thread woke the loop: a connection handed over, an
    /// offloaded answer, or shutdown.
    Waker,
    /// The precise timer: a timer is due, nothing more.
    Clock,
    /// The connection in this slot of the loop's slab.
    Connection(usize),
    /// The refused connection in this slot of the acceptor's refusals.
    Refused(usize),
}

impl Target {
    pub(crate) fn of(token: Token) -> Target {
        match token.0 {
            LISTENER => Target::Listener,
            WAKER => Target::Waker,
            CLOCK => Target::Clock,
            n if n >= FIRST_REFUSED => Target::Refused(n - FIRST_REFUSED),
            n => Target::Connection(n - FIRST_CONNECTION),
        }
    }

    pub(crate) fn token(self) -> Token {
        Token(match self {
            Target::Listener => LISTENER,
            Target::Waker => WAKER,
            Target::Clock => CLOCK,
            Target::Connection(slot) => FIRST_CONNECTION + slot,
            Target::Refused(slot) => FIRST_REFUSED + slot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_decodes_from_its_own_token() {
        let all = [
            Target::Listener,
            Target::Waker,
            Target::Clock,
            Target::Connection(0),
            Target::Connection(41),
            Target::Refused(0),
            Target::Refused(63),
        ];
        for target in all {
            assert_eq!(Target::of(target.token()), target);
        }
    }
}
