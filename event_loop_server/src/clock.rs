//! How precisely a loop keeps time, and how late its timers actually fire.
//!
//! A loop has no thread to put to sleep for each timer: it waits in `poll`,
//! and `poll` waits no longer than the time to the earliest timer. The catch
//! is the unit. `epoll_wait` counts its timeout in whole milliseconds, so
//! mio rounds a timeout *up* (rounding down would wake early and spin). A
//! reply due in 9.2 ms then waits 10 ms, and every timer leaves on average
//! half a millisecond late, up to a whole one. A thread in `thread::sleep`
//! has nanosecond resolution and does not pay that.
//!
//! On Linux the loop waits in two steps ([`Clock::poll_timeout`]):
//! 1. `poll` with the timeout rounded *down* to whole milliseconds, which
//!    ends at or before the deadline; while timers are far apart, that is
//!    all, and costs nothing extra;
//! 2. once the earliest timer is less than a millisecond away, a `timerfd`
//!    (a kernel timer that shows up as a readable descriptor) is armed for
//!    it, with nanosecond resolution, and registered with the same poll. The
//!    loop then waits for sockets and the timer at once, and wakes at
//!    whichever comes first.
//!
//! The `timerfd` costs one `timerfd_settime` each time the earliest
//! deadline moves inside its last millisecond, and needs `unsafe` calls,
//! proven sound below. The other ways to be as precise cost more: a poll
//! with a zero timeout through the last millisecond keeps a core busy; a
//! `thread::sleep` for the last fraction is idle, but a request that
//! arrives meanwhile waits for the sleep to end. Elsewhere than Linux the
//! loop keeps mio's rounded-up timeout.
//!
//! Due timers fire once per turn (`EventLoop::fire_due_timers` in
//! event_loop.rs), after the batch of events `poll` returned, so replies
//! that fall due together leave together. Firing them
//! between events as well would make each a little more punctual, at the
//! price of a turn per reply: batches of replies become trickles.
//! (docs/RESULTS.md has what each of these ways cost when tried.)
//!
//! `shared::stats::Lateness` (recorded in service.rs's `db_reply`) records
//! how late each database reply leaves,
//! on the server's own clock, so the figure does not depend on any load
//! generator: `STATS` reports its 50th and 99th percentiles. The thread
//! pool records its `thread::sleep` the same way, so the two clocks can be
//! compared under the same load.

use std::io;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

const MILLISECOND: Duration = Duration::from_millis(1);

/// The loop's way of waiting for its next timer.
pub(crate) struct Clock {
    precise: precise::Timer,
}

impl Clock {
    /// `token` is what `poll` reports when the precise timer fires; the loop
    /// needs to do nothing for it but fire its due timers.
    pub(crate) fn new(registry: &Registry, token: Token) -> io::Result<Self> {
        Ok(Clock {
            precise: precise::Timer::new(registry, token)?,
        })
    }

    /// The timeout for `poll` at `now`: none without timers; else whole
    /// milliseconds that end before the next deadline, and under the last
    /// millisecond the precise timer. (A turn with work left over polls
    /// with a zero timeout and does not ask.) `now` is the loop's own clock
    /// read, which also times its utilisation (live.rs).
    pub(crate) fn poll_timeout(&mut self, next: Option<Instant>, now: Instant) -> Option<Duration> {
        let next = next?;
        let left = next.saturating_duration_since(now);
        if left >= MILLISECOND || left.is_zero() || !precise::AVAILABLE {
            return Some(rounded_for_poll(left));
        }
        match self.precise.arm(next, left) {
            // The timer wakes the poll; the millisecond is only a backstop.
            Ok(()) => Some(MILLISECOND),
            // mio rounds up: late, but never a spin.
            Err(_) => Some(left),
        }
    }
}

/// Whole milliseconds: down where the precise timer finishes the wait, up
/// (mio's own rounding) where there is none.
fn rounded_for_poll(left: Duration) -> Duration {
    if precise::AVAILABLE {
        Duration::from_millis(left.as_millis() as u64)
    } else {
        left
    }
}

#[cfg(target_os = "linux")]
mod precise {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use mio::unix::SourceFd;
    use mio::{Interest, Registry, Token};

    pub(super) const AVAILABLE: bool = true;

    pub(super) struct Timer {
        fd: OwnedFd,
        /// The deadline it is armed for, so an unchanged one costs nothing.
        armed_for: Option<Instant>,
    }

    impl Timer {
        pub(super) fn new(registry: &Registry, token: Token) -> io::Result<Self> {
            let flags = libc::TFD_NONBLOCK | libc::TFD_CLOEXEC;
            // SAFETY: timerfd_create takes two integers and touches no
            // memory of ours; it returns a new descriptor or -1.
            let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, flags) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a descriptor just returned to us and owned by
            // nothing else, so `OwnedFd` may take it and close it once.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // Edge-triggered: each expiry is a new edge, and re-arming
            // resets the count, so the descriptor never needs reading.
            registry.register(&mut SourceFd(&fd.as_raw_fd()), token, Interest::READABLE)?;
            Ok(Timer {
                fd,
                armed_for: None,
            })
        }

        /// Fires once, `left` from now (the deadline `at`).
        pub(super) fn arm(&mut self, at: Instant, left: Duration) -> io::Result<()> {
            if self.armed_for == Some(at) {
                return Ok(());
            }
            let value = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: timespec(left.max(Duration::from_nanos(1))),
            };
            // SAFETY: `self.fd` is an open timerfd we own; `value` is a valid
            // itimerspec on our stack that the call only reads during the
            // call; a null old-value pointer is allowed by timerfd_settime(2).
            let rc = unsafe {
                libc::timerfd_settime(self.fd.as_raw_fd(), 0, &value, std::ptr::null_mut())
            };
            if rc < 0 {
                self.armed_for = None;
                return Err(io::Error::last_os_error());
            }
            self.armed_for = Some(at);
            Ok(())
        }
    }

    fn timespec(d: Duration) -> libc::timespec {
        libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        }
    }
}

/// Elsewhere: no precise timer; `poll` keeps mio's rounding.
#[cfg(not(target_os = "linux"))]
mod precise {
    use std::io;
    use std::time::{Duration, Instant};

    use mio::{Registry, Token};

    pub(super) const AVAILABLE: bool = false;

    pub(super) struct Timer;

    impl Timer {
        pub(super) fn new(_: &Registry, _: Token) -> io::Result<Self> {
            Ok(Timer)
        }

        pub(super) fn arm(&mut self, _: Instant, _: Duration) -> io::Result<()> {
            Err(io::ErrorKind::Unsupported.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_timeout_never_reaches_past_the_deadline() {
        let poll = mio::Poll::new().expect("a poll");
        let mut clock = Clock::new(poll.registry(), Token(9)).expect("a clock");
        let soon = Instant::now() + Duration::from_micros(9_700);
        let timeout = clock.poll_timeout(Some(soon), Instant::now());
        if precise::AVAILABLE {
            assert!(timeout.is_some_and(|t| t <= Duration::from_millis(9)));
        }
        assert_eq!(clock.poll_timeout(None, Instant::now()), None);
    }

    #[test]
    fn under_a_millisecond_the_precise_timer_wakes_the_poll() {
        let mut poll = mio::Poll::new().expect("a poll");
        let mut clock = Clock::new(poll.registry(), Token(9)).expect("a clock");
        let at = Instant::now() + Duration::from_micros(300);
        let mut events = mio::Events::with_capacity(4);
        while Instant::now() < at {
            let timeout = clock.poll_timeout(Some(at), Instant::now());
            poll.poll(&mut events, timeout).expect("poll");
        }
        if precise::AVAILABLE {
            assert!(events.iter().any(|e| e.token() == Token(9)));
        }
    }
}
