//! What the kernel says a server process cost: resident memory, CPU time and
//! context switches, read from `/proc` (Linux only).
//!
//! The comparison runs each server in a process of its own so that these
//! numbers are the server's alone, not the load generator's beside it. Each
//! reading says what it leaves out, because every one of them leaves
//! something out.

use std::io;

/// Resident memory of process `pid`, from `/proc/PID/status` (Linux).
/// Pages the process touched and still holds; not the kernel's memory for
/// it (kernel stacks, `task_struct`s, socket buffers live outside RSS).
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    kb_field(&status, "VmRSS:")
        .map(|kb| kb * 1024)
        .ok_or_else(|| io::Error::other("no VmRSS in /proc status"))
}

/// The machine's `KernelStack` from `/proc/meminfo`, in bytes: every
/// thread's kernel-mode stack, summed over the whole machine (so other work
/// on it moves this too). `None` where `/proc/meminfo` cannot be read.
pub fn kernel_stack_bytes() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    kb_field(&meminfo, "KernelStack:").map(|kb| kb * 1024)
}

fn kb_field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|kb| kb.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One reading of a process's CPU time and context switches.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CpuSample {
    /// User plus system CPU time, in seconds, of every thread the process
    /// ever had (`/proc/PID/stat` keeps the time of threads that exited).
    pub cpu_secs: f64,
    /// Context switches the threads alive now asked for (blocking in a
    /// system call), summed over `/proc/PID/task/*/status`.
    pub voluntary: u64,
    /// Context switches the scheduler forced on them (preemption).
    pub nonvoluntary: u64,
}

impl CpuSample {
    pub fn read(pid: u32) -> io::Result<CpuSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let ticks =
            stat_cpu_ticks(&stat).ok_or_else(|| io::Error::other("cannot parse /proc/PID/stat"))?;
        let mut sample = CpuSample {
            cpu_secs: ticks as f64 / clock_ticks_per_sec(),
            ..CpuSample::default()
        };
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            // A thread may exit between listing and reading: skip it.
            let Ok(status) = std::fs::read_to_string(task?.path().join("status")) else {
                continue;
            };
            let count = |name| kb_field(&status, name).unwrap_or(0);
            sample.voluntary += count("voluntary_ctxt_switches:");
            sample.nonvoluntary += count("nonvoluntary_ctxt_switches:");
        }
        Ok(sample)
    }

    /// The sum over `pid` and every process below it (`node:cluster`'s
    /// workers are children of the primary), read through
    /// `/proc/PID/task/TID/children`. A process that exits between two
    /// readings takes its share with it: the harness reads before and
    /// after a load, while every process is alive.
    pub fn read_tree(pid: u32) -> io::Result<CpuSample> {
        let mut total = CpuSample::read(pid)?;
        for child in children_of(pid) {
            // A child may exit between listing and reading: skip it.
            if let Ok(sample) = CpuSample::read_tree(child) {
                total.cpu_secs += sample.cpu_secs;
                total.voluntary += sample.voluntary;
                total.nonvoluntary += sample.nonvoluntary;
            }
        }
        Ok(total)
    }

    /// What happened between `self` and a later sample.
    pub fn since(self, earlier: CpuSample) -> CpuSample {
        CpuSample {
            cpu_secs: (self.cpu_secs - earlier.cpu_secs).max(0.0),
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            nonvoluntary: self.nonvoluntary.saturating_sub(earlier.nonvoluntary),
        }
    }
}

/// The processes `pid`'s threads started, from `/proc/PID/task/*/children`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// utime + stime, in clock ticks, from the text of `/proc/PID/stat`.
/// The command name (field 2) may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: `sysconf` reads a configuration value and touches no memory
    // of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0 // the value on every Linux this runs on
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_skip_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0";
        assert_eq!(stat_cpu_ticks(stat), Some(12));
    }

    #[test]
    fn this_process_can_be_read() {
        let pid = std::process::id();
        assert!(rss_bytes(pid).expect("own RSS") > 0);
        let sample = CpuSample::read(pid).expect("own CPU time");
        assert!(sample.voluntary + sample.nonvoluntary > 0);
    }
}
