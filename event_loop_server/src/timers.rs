//! The loop's timers: a min-heap of deadlines. (`clock.rs` is how
//! precisely the loop wakes for the earliest one.)
//!
//! An event loop cannot sleep, so "answer this in 50 ms" becomes an entry
//! here, and the loop's `poll` waits no longer than the time to the earliest
//! entry. A thousand outstanding database queries are a thousand small heap
//! entries (push and pop are O(log n)), not a thousand sleeping threads.
//!
//! Entries are never cancelled one by one: a connection that closes leaves
//! its timers behind, and each is recognised as stale when it fires (its
//! slot's generation no longer matches) and dropped. That is simpler and
//! cheaper than finding and removing them. So that many short connections
//! cannot fill the heap with dead entries, the loop sweeps them all out in
//! one pass whenever the heap has doubled ([`Timers::sweep_stale`]).

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::slab::ConnectionId;

#[derive(Debug)]
pub(crate) enum Timer {
    /// The fake database has "answered" request number `seq` of a connection.
    DbReply {
        conn: ConnectionId,
        seq: u64,
        id: u64,
    },
    /// Time to check a connection for idleness or a stalled writer.
    Watchdog { conn: ConnectionId },
    /// Accepting failed for lack of descriptors; try again.
    RetryAccept,
    /// A refused connection has waited long enough for its first bytes.
    RefusalDue { refused: ConnectionId },
}

/// Below this many timers the heap is never swept.
const MIN_TIMER_SWEEP: usize = 1024;

struct Entry {
    at: Instant,
    /// Breaks ties between equal deadlines first-in, first-out.
    order: u64,
    timer: Timer,
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    /// Entries ever added: each entry's `order`, so two timers due at the
    /// same instant fire in the order they were set.
    added: u64,
    /// Heap size at which the next stale-timer sweep runs.
    sweep_at: usize,
}

impl Timers {
    pub(crate) fn add(&mut self, at: Instant, timer: Timer) {
        self.added += 1;
        self.heap.push(Entry {
            at,
            order: self.added,
            timer,
        });
    }

    /// Drops the timers of connections that are gone, once the heap has
    /// doubled since the last sweep; `live` says whether a connection still
    /// is. Returns how many database replies were dropped with them.
    ///
    /// Why: with many short connections, thousands of dead watchdogs would
    /// otherwise wait out their period in the heap. Each sweep is O(n) and
    /// at least halves the heap, so its cost is spread over the pushes that
    /// grew it.
    pub(crate) fn sweep_stale(&mut self, live: impl Fn(ConnectionId) -> bool) -> u64 {
        if self.heap.len() < self.sweep_at.max(MIN_TIMER_SWEEP) {
            return 0;
        }
        let mut dropped_replies = 0;
        self.heap.retain(|entry| match entry.timer {
            Timer::DbReply { conn, .. } => {
                let keep = live(conn);
                dropped_replies += u64::from(!keep);
                keep
            }
            Timer::Watchdog { conn } => live(conn),
            Timer::RetryAccept | Timer::RefusalDue { .. } => true,
        });
        self.sweep_at = 2 * self.heap.len();
        dropped_replies
    }

    /// When the earliest timer is due, if any.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|entry| entry.at)
    }

    /// The earliest timer and when it was due, if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Timer)> {
        if self.heap.peek()?.at > now {
            return None;
        }
        self.heap.pop().map(|entry| (entry.at, entry.timer))
    }
}

// `BinaryHeap` is a max-heap, so "greater" here means "due sooner".
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_sweep_drops_only_dead_connections_timers() {
        let now = Instant::now();
        let mut timers = Timers::default();
        let live = ConnectionId {
            slot: 0,
            generation: 1,
        };
        let dead = ConnectionId {
            slot: 1,
            generation: 1,
        };
        for seq in 0..MIN_TIMER_SWEEP as u64 {
            let conn = if seq % 2 == 0 { live } else { dead };
            timers.add(now, Timer::DbReply { conn, seq, id: seq });
        }
        timers.add(now, Timer::RetryAccept);
        let dropped = timers.sweep_stale(|conn| conn == live);
        assert_eq!(dropped, MIN_TIMER_SWEEP as u64 / 2);
        assert_eq!(timers.heap.len(), MIN_TIMER_SWEEP / 2 + 1);
        // Not doubled since: the next sweep waits.
        assert_eq!(timers.sweep_stale(|_| false), 0);
    }

    #[test]
    fn pops_in_deadline_order_then_insertion_order() {
        let now = Instant::now();
        let mut timers = Timers::default();
        let retry = |t: &mut Timers, ms| t.add(now + Duration::from_millis(ms), Timer::RetryAccept);
        retry(&mut timers, 30);
        retry(&mut timers, 10);
        retry(&mut timers, 20);
        assert_eq!(
            timers.next_deadline(),
            Some(now + Duration::from_millis(10))
        );
        assert!(timers.pop_due(now).is_none());
        let mut popped = 0;
        while timers.pop_due(now + Duration::from_millis(25)).is_some() {
            popped += 1;
        }
        assert_eq!(popped, 2);
        assert_eq!(
            timers.next_deadline(),
            Some(now + Duration::from_millis(30))
        );
    }
}
