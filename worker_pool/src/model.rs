//! The pool against a model, in generated orders of submissions, finished
//! jobs and a shutdown. Jobs block until the test lets them go, so the test
//! decides when each one ends. After every step:
//! - a submission is accepted exactly when fewer than `workers + queue`
//!   jobs are unfinished;
//! - as many jobs are running as there are workers and jobs to run (an idle
//!   worker beside a queued job would be a lost wake-up);
//!
//! and at the end, shutting down runs every accepted job exactly once (the
//! queued ones too), none that was refused, and with one worker in the
//! order they were accepted.
//!
//! A child module of the pool's `lib.rs`, so it can read the pool's private
//! counter of unfinished jobs.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

/// How long a worker may take to wake; generous for a busy machine.
const LIMIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
enum Step {
    Submit,
    /// Let the n-th running job (modulo how many run) end.
    Finish(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => Just(Step::Submit),
        2 => any::<usize>().prop_map(Step::Finish),
    ]
}

/// A job: its id, and the gate it waits on until the test opens it.
type Job = (usize, Receiver<()>);

fn run_case(workers: usize, queue: usize, steps: &[Step]) -> Result<(), TestCaseError> {
    let (started_tx, started) = channel::<usize>();
    let pool = WorkerPool::start("model", workers, queue, move |_, _: &mut (), job: Job| {
        let (id, gate) = job;
        let _ = started_tx.send(id);
        let _ = gate.recv();
    })
    .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let room = workers + queue;
    let mut gates: BTreeMap<usize, Sender<()>> = BTreeMap::new();
    let mut accepted = Vec::new();
    let mut running: Vec<usize> = Vec::new();
    let mut order = Vec::new();
    for (id, step) in steps.iter().enumerate() {
        match step {
            Step::Submit => {
                let (open, gate) = channel();
                let taken = pool.try_submit((id, gate)).is_ok();
                prop_assert_eq!(taken, gates.len() < room, "submission {}", id);
                if taken {
                    gates.insert(id, open);
                    accepted.push(id);
                }
            }
            Step::Finish(n) => {
                if running.is_empty() {
                    continue;
                }
                let id = running.remove(n % running.len());
                if let Some(open) = gates.remove(&id) {
                    let _ = open.send(());
                }
                // The worker frees the room once the job has returned.
                let deadline = Instant::now() + LIMIT;
                while pool.shared.unfinished.load(Ordering::Acquire) != gates.len() {
                    prop_assert!(Instant::now() < deadline, "room never freed");
                    thread::yield_now();
                }
            }
        }
        // Every worker that can have a job has one.
        let expected = workers.min(gates.len());
        while running.len() < expected {
            let id = started.recv_timeout(LIMIT);
            prop_assert!(
                id.is_ok(),
                "{} running, {} expected",
                running.len(),
                expected
            );
            running.extend(id.iter().copied());
            order.extend(id);
        }
        prop_assert!(
            started.try_recv().is_err(),
            "a job ran without a worker free"
        );
    }
    // Shut down with jobs running and queued; open every gate as it goes.
    let (done_tx, done) = channel();
    let stopper = thread::spawn(move || {
        pool.shutdown();
        let _ = done_tx.send(());
    });
    for open in gates.values() {
        let _ = open.send(());
    }
    prop_assert!(done.recv_timeout(LIMIT).is_ok(), "shutdown did not finish");
    let _ = stopper.join();
    order.extend(started.try_iter());
    let mut ran = order.clone();
    ran.sort_unstable();
    prop_assert_eq!(&ran, &accepted, "every accepted job once, no other");
    if workers == 1 {
        prop_assert_eq!(&order, &accepted, "one worker takes jobs in order");
    }
    Ok(())
}

proptest! {
    // A lost wake-up fails by a timeout: shrinking stops after 30 s
    // rather than waiting out the limit once per smaller case.
    #![proptest_config(ProptestConfig {
        cases: 300,
        max_shrink_time: 30_000,
        ..ProptestConfig::default()
    })]
    #[test]
    fn admission_wake_ups_and_shutdown_in_any_order(
        workers in 1usize..4,
        queue in 0usize..4,
        steps in prop::collection::vec(step(), 0..40),
    ) {
        run_case(workers, queue, &steps)?;
    }
}
