//! A panic while answering costs one request, never the thread.
//!
//! A panic is a bug, but the thread it happens on serves many clients: a
//! pool worker, or a whole event loop with every connection on it. So each
//! server runs its answers through [`answer_caught`]: the panic is caught
//! and counted in `STATS panics=`, the thread's image buffers (which may be
//! half-written) start afresh, and the request gets `ERR internal error`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::image::ImageScratch;
use crate::protocol::response;
use crate::stats::Counters;

/// Whatever answers requests on a thread: the image buffers it reuses, and
/// the counters its panics are counted in.
pub trait Answerer {
    fn scratch(&mut self) -> &mut ImageScratch;
    fn counters(&self) -> &Counters;
}

/// A worker answering for someone else (the event loop's offload pool):
/// its own buffers, and the counters of the loop the job came from.
impl Answerer for (&mut ImageScratch, &Counters) {
    fn scratch(&mut self) -> &mut ImageScratch {
        self.0
    }

    fn counters(&self) -> &Counters {
        self.1
    }
}

/// `answer(answerer)`, or `ERR internal error` if it panicked. Inlined: it
/// runs once per request, and catching costs nothing until a panic.
#[inline(always)]
pub fn answer_caught<A, T>(answerer: &mut A, answer: impl FnOnce(&mut A) -> T) -> T
where
    A: Answerer,
    T: From<String>,
{
    match catch_unwind(AssertUnwindSafe(|| answer(answerer))) {
        Ok(answer) => answer,
        Err(_) => {
            *answerer.scratch() = ImageScratch::new();
            answerer.counters().panics.add(1);
            T::from(response::internal_error())
        }
    }
}
