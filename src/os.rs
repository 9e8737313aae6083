//! The few things the measuring side asks of the OS that std does not
//! offer, each a thin wrapper over one `libc` call (Linux): the open-file
//! limit, a thread's own CPU clock, and which cores a thread may run on.
//!
//! Why cores matter here: on a machine with enough of them, the comparison
//! gives the server under test one set of cores and the load generator
//! another (`sched_setaffinity`), so neither steals the other's time and a
//! number the generator limited is not read as the server's.

/// Raises this process's soft open-file limit to its hard limit, and
/// returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` through a pointer to a valid,
    // properly aligned local, and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: `setrlimit` only reads the `rlimit` behind a valid pointer
        // to a local; raising the soft limit up to the hard one needs no
        // privilege and affects only this process (and its children).
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return raised.rlim_cur;
        }
    }
    limit.rlim_cur
}

/// CPU time the calling thread has used so far, in seconds (user and
/// system), or 0 where the clock cannot be read. Costs one vDSO-fast
/// `clock_gettime`.
pub fn thread_cpu_secs() -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through a pointer to a
    // valid, aligned local; `CLOCK_THREAD_CPUTIME_ID` needs no privilege.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } != 0 {
        return 0.0;
    }
    now.tv_sec as f64 + now.tv_nsec as f64 / 1e9
}

/// The cores the calling thread may run on now, in order (empty where the
/// mask cannot be read).
pub fn allowed_cores() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is a plain bit array; all zeroes is a valid,
    // empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; the kernel writes at most
    // `size_of::<cpu_set_t>()` bytes into the valid local `set`.
    let read = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    if read != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `CPU_ISSET` reads bit `core` of `set`, and every `core`
        // here is below `CPU_SETSIZE`, the set's size in bits.
        .filter(|&core| unsafe { libc::CPU_ISSET(core, &set) })
        .collect()
}

/// Lets the calling thread, and every thread or process it starts from now
/// on, run only on `cores`. Threads that already exist keep their mask.
pub fn pin_to(cores: &[usize]) -> std::io::Result<()> {
    set_affinity(&cpu_set(cores)?)
}

/// Makes `command`'s process run only on `cores` from its first
/// instruction, so threads a runtime starts at once (Node's libuv and V8
/// threads) inherit the mask too. Setting it after `spawn` would race them.
pub fn pin_command(command: &mut std::process::Command, cores: &[usize]) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let set = cpu_set(cores)?;
    // SAFETY: the closure runs in the child between fork and exec, where
    // only async-signal-safe calls are allowed: `set_affinity` makes one
    // system call on a set built before the fork and copied into the
    // closure, and reads `errno` on failure; it allocates nothing and takes
    // no lock.
    unsafe { command.pre_exec(move || set_affinity(&set)) };
    Ok(())
}

/// The set of `cores`, or an error naming one the set cannot hold.
fn cpu_set(cores: &[usize]) -> std::io::Result<libc::cpu_set_t> {
    // SAFETY: all zeroes is a valid, empty `cpu_set_t`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &core in cores {
        if core >= libc::CPU_SETSIZE as usize {
            return Err(std::io::Error::other(format!("no core {core}")));
        }
        // SAFETY: `core` is below `CPU_SETSIZE`, so `CPU_SET` writes a bit
        // inside the valid local `set`.
        unsafe { libc::CPU_SET(core, &mut set) };
    }
    Ok(set)
}

/// `sched_setaffinity` for the calling thread.
fn set_affinity(set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: pid 0 is the calling thread; the kernel reads exactly
    // `size_of::<cpu_set_t>()` bytes from the valid `set`.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(set), set) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Cores written compactly for people: `0-7`, `0,2,4`.
pub fn cores_label(cores: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cores.len() {
        let mut j = i;
        while j + 1 < cores.len() && cores[j + 1] == cores[j] + 1 {
            j += 1;
        }
        parts.push(if j > i {
            format!("{}-{}", cores[i], cores[j])
        } else {
            cores[i].to_string()
        });
        i = j + 1;
    }
    parts.join(",")
}

/// Parses what `cores_label` writes (and any list of single cores and
/// ranges), for `--serve --cores LIST`.
pub fn parse_cores(text: &str) -> Option<Vec<usize>> {
    let mut cores = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if a > b {
                    return None;
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().ok()?),
        }
    }
    Some(cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_lists_round_trip() {
        for cores in [
            vec![0],
            vec![0, 1, 2, 3],
            vec![0, 2, 4],
            vec![1, 2, 5, 6, 7],
        ] {
            let label = cores_label(&cores);
            assert_eq!(parse_cores(&label), Some(cores));
        }
        assert_eq!(cores_label(&[0, 1, 2, 3, 8]), "0-3,8");
        assert_eq!(parse_cores("3-1"), None);
        assert_eq!(parse_cores("x"), None);
    }

    #[test]
    fn a_thread_sees_its_own_cores_and_cpu_time() {
        let cores = allowed_cores();
        assert!(!cores.is_empty());
        let before = thread_cpu_secs();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_secs() > before);
        // Pinning a fresh thread to the first allowed core is always allowed.
        let first = cores[0];
        let pinned = std::thread::spawn(move || pin_to(&[first]).map(|()| allowed_cores()))
            .join()
            .expect("thread runs");
        assert_eq!(pinned.expect("pins"), vec![first]);
    }
}
