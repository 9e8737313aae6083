//! What the pool shows the live view (`shared::live`): each worker's state
//! right now, and the `/stats.json` object built from it.
//!
//! A worker says what it is doing with one relaxed atomic store at each
//! change (reading, asleep in `DB`, computing, writing, idle): no lock, no
//! read-modify-write, nothing another thread waits on. Each worker's state
//! has a cache line of its own, so two workers changing state on two cores
//! never write to the same line (with 1,000 workers, 64 KB in all). The
//! monitoring thread loads them once a second; a state it reads may be a
//! microsecond old, which a page redrawn each second cannot show anyway.

use std::sync::atomic::{AtomicU8, Ordering};

use shared::live::{common_fields, common_flags, Json};

use crate::state::Shared;

/// What one worker is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum WorkerState {
    /// No connection: waiting for the pool's queue.
    Idle = 0,
    /// Blocked in `read`, waiting for its client's next request.
    Reading = 1,
    /// In `thread::sleep` for a `DB` query: a whole thread, asleep.
    AsleepInDb = 2,
    /// Running an `IMAGE` kernel.
    Computing = 3,
    /// Blocked in `write`, sending answers.
    Writing = 4,
}

impl WorkerState {
    const ALL: [WorkerState; 5] = [
        WorkerState::Idle,
        WorkerState::Reading,
        WorkerState::AsleepInDb,
        WorkerState::Computing,
        WorkerState::Writing,
    ];

    /// The one letter per worker of `/stats.json`'s `states` string: a
    /// thousand workers in a thousand bytes.
    fn letter(self) -> char {
        match self {
            WorkerState::Idle => 'i',
            WorkerState::Reading => 'r',
            WorkerState::AsleepInDb => 'd',
            WorkerState::Computing => 'c',
            WorkerState::Writing => 'w',
        }
    }

    fn name(self) -> &'static str {
        match self {
            WorkerState::Idle => "idle",
            WorkerState::Reading => "reading",
            WorkerState::AsleepInDb => "asleep_in_db",
            WorkerState::Computing => "computing",
            WorkerState::Writing => "writing",
        }
    }

    fn from_u8(value: u8) -> WorkerState {
        WorkerState::ALL
            .get(usize::from(value))
            .copied()
            .unwrap_or(WorkerState::Idle)
    }
}

/// A state in a cache line of its own (see the module comment).
#[repr(align(64))]
#[derive(Default)]
struct Slot(AtomicU8);

/// Every worker's state, by worker index.
pub(crate) struct WorkerStates {
    slots: Box<[Slot]>,
}

impl WorkerStates {
    pub(crate) fn new(workers: usize) -> Self {
        WorkerStates {
            slots: (0..workers).map(|_| Slot::default()).collect(),
        }
    }

    /// One relaxed store: the whole cost on the request path.
    pub(crate) fn set(&self, worker: usize, state: WorkerState) {
        if let Some(slot) = self.slots.get(worker) {
            slot.0.store(state as u8, Ordering::Relaxed);
        }
    }

    fn now(&self) -> Vec<WorkerState> {
        let load = |slot: &Slot| WorkerState::from_u8(slot.0.load(Ordering::Relaxed));
        self.slots.iter().map(load).collect()
    }
}

/// The pool's `/stats.json`: the `STATS` figures, the flags, and `pool`:
/// the queue and each worker's state, one letter each, with counts.
pub(crate) fn stats_json(shared: &Shared) -> String {
    let config = &shared.config;
    let mut json = Json::object();
    common_fields(
        &mut json,
        "thread_pool_server",
        shared.started.elapsed(),
        std::iter::once(&shared.counters),
        std::iter::once(&shared.lateness),
    );
    json.number("workers", config.workers as u64)
        .number("queued", shared.queued() as u64);
    json.begin_object("flags");
    common_flags(&mut json, &config.common);
    json.number("workers", config.workers as u64)
        .number("queue", config.queue as u64)
        .end_object();
    let states = shared.worker_states.now();
    json.begin_object("pool")
        .number("workers", states.len() as u64)
        .number("queued", shared.queued() as u64)
        .string(
            "states",
            &states.iter().map(|s| s.letter()).collect::<String>(),
        );
    json.begin_object("counts");
    for state in WorkerState::ALL {
        let count = states.iter().filter(|&&s| s == state).count();
        json.number(state.name(), count as u64);
    }
    json.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_state_reads_back_as_stored() {
        let states = WorkerStates::new(5);
        for (worker, state) in WorkerState::ALL.into_iter().enumerate() {
            states.set(worker, state);
        }
        assert_eq!(states.now(), WorkerState::ALL);
        let letters: String = states.now().iter().map(|s| s.letter()).collect();
        assert_eq!(letters, "irdcw");
        states.set(99, WorkerState::Reading); // no such worker: ignored
    }
}
