//! The loop's clock: a min-heap of deadlines.
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
//! one pass whenever the heap has doubled (`EventLoop::drop_stale_timers`).

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
    RefusalDue { slot: usize, generation: u64 },
}

struct Entry {
    at: Instant,
    /// Breaks ties between equal deadlines first-in, first-out.
    order: u64,
    timer: Timer,
}

#[derive(Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    added: u64,
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

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Keeps only the timers `keep` says yes to.
    pub(crate) fn retain(&mut self, keep: impl FnMut(&Timer) -> bool) {
        let mut keep = keep;
        self.heap.retain(|entry| keep(&entry.timer));
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
