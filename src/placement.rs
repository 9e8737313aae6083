//! Which cores the server under test gets, and which the load generator.
//!
//! A load generator is a server's mirror image: it costs about as much CPU
//! per request as the server it measures. On one set of cores the two take
//! turns, and a result can be the generator's limit read as the server's
//! (on 16 cores a one-thread generator once made 16 loops look slower than
//! one). So with 4 cores or more, the comparison splits them: the first
//! half for the server (every set-up's "N" is the size of that half), the
//! rest for the generator, one thread per core, each side pinned with
//! `sched_setaffinity`. With fewer, halves would leave the server one core,
//! so both share every core, and the table says so.

use crate::os;

/// Fewer cores than this and the two sides share them.
pub const MIN_CORES_TO_SPLIT: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Server and generator on disjoint cores.
    Split {
        server: Vec<usize>,
        generator: Vec<usize>,
    },
    /// Both on the same cores.
    Shared { cores: Vec<usize> },
}

impl Placement {
    /// The split for the cores this process may run on now.
    pub fn for_cores(cores: Vec<usize>) -> Placement {
        if cores.len() < MIN_CORES_TO_SPLIT {
            return Placement::Shared { cores };
        }
        let half = cores.len() / 2;
        Placement::Split {
            server: cores[..half].to_vec(),
            generator: cores[half..].to_vec(),
        }
    }

    /// Cores the server runs on: its workers and loops are sized to these.
    pub fn server_cores(&self) -> &[usize] {
        match self {
            Placement::Split { server, .. } => server,
            Placement::Shared { cores } => cores,
        }
    }

    /// Generator threads: one per core of its own, or
    /// `loadgen::default_threads()` when sharing.
    pub fn generator_threads(&self) -> usize {
        match self {
            Placement::Split { generator, .. } => generator.len(),
            Placement::Shared { .. } => crate::loadgen::default_threads(),
        }
    }

    /// Pins the calling thread (and all it starts later) to the generator's
    /// cores. Call it before any load thread or server process starts; each
    /// server process pins itself to `server_cores` (`--serve --cores`).
    pub fn pin_generator(&self) -> std::io::Result<()> {
        match self {
            Placement::Split { generator, .. } => os::pin_to(generator),
            Placement::Shared { .. } => Ok(()),
        }
    }

    /// The cores a server process is pinned to: `None` when sharing.
    pub fn server_pin(&self) -> Option<&[usize]> {
        match self {
            Placement::Split { server, .. } => Some(server),
            Placement::Shared { .. } => None,
        }
    }

    /// `--serve` arguments that pin a server process, if any.
    pub fn serve_args(&self) -> Vec<String> {
        self.server_pin().map_or_else(Vec::new, |cores| {
            vec!["--cores".into(), os::cores_label(cores)]
        })
    }

    /// The table's footer line.
    pub fn describe(&self) -> String {
        match self {
            Placement::Split { server, generator } => format!(
                "cores: the server under test ran on cores {} and the load generator on cores {} \
                 ({} threads), each pinned (sched_setaffinity).",
                os::cores_label(server),
                os::cores_label(generator),
                generator.len()
            ),
            Placement::Shared { cores } => format!(
                "cores: the server and the load generator ({} thread{}) SHARED cores {}: fewer than {} \
                 cores, so every figure includes the generator's turns on the server's cores.",
                self.generator_threads(),
                if self.generator_threads() == 1 { "" } else { "s" },
                os::cores_label(cores),
                MIN_CORES_TO_SPLIT
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_cores_or_more_are_split_in_halves() {
        let split = Placement::for_cores((0..16).collect());
        assert_eq!(split.server_cores(), &(0..8).collect::<Vec<_>>()[..]);
        assert_eq!(split.generator_threads(), 8);
        assert_eq!(split.serve_args(), vec!["--cores", "0-7"]);
        assert!(split.describe().contains("cores 8-15"));
        let odd = Placement::for_cores(vec![0, 1, 2, 3, 4]);
        assert_eq!(odd.server_cores(), &[0, 1]);
    }

    #[test]
    fn fewer_than_four_are_shared_and_said_so() {
        let shared = Placement::for_cores(vec![0, 1]);
        assert_eq!(shared.server_cores(), &[0, 1]);
        assert!(shared.serve_args().is_empty());
        assert!(shared.describe().contains("SHARED"));
    }
}
