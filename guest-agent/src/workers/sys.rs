//! Thin wrappers over the system calls the work types exercise.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use ktstr_plan::policy::Policy;

/// Blocks while `word` holds `expected` (FUTEX_WAIT), at most `timeout`.
pub fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let ts = nix::libc::timespec {
        tv_sec: timeout.as_secs() as nix::libc::time_t,
        tv_nsec: timeout.subsec_nanos() as nix::libc::c_long,
    };
    // SAFETY: FUTEX_WAIT reads the u32 behind a valid, aligned pointer and
    // a valid timespec; both outlive the call.
    unsafe {
        nix::libc::syscall(
            nix::libc::SYS_futex,
            word.as_ptr(),
            nix::libc::FUTEX_WAIT | nix::libc::FUTEX_PRIVATE_FLAG,
            expected,
            &ts as *const nix::libc::timespec,
        );
    }
}

/// Wakes up to `n` waiters of `word` (FUTEX_WAKE).
pub fn futex_wake(word: &AtomicU32, n: i32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; it is valid.
    unsafe {
        nix::libc::syscall(
            nix::libc::SYS_futex,
            word.as_ptr(),
            nix::libc::FUTEX_WAKE | nix::libc::FUTEX_PRIVATE_FLAG,
            n,
        );
    }
}

/// Bumps `word` and wakes its waiters.
pub fn futex_signal(word: &AtomicU32, n: i32) {
    word.fetch_add(1, Ordering::SeqCst);
    futex_wake(word, n);
}

/// Waits on the futex `word` until it moves past `seen` and returns its
/// new value, or None once `done` is set (seen at least every `poll`): the
/// waiting side of a generation counter that a waker bumps with
/// [`futex_signal`].
pub fn next_generation(
    word: &AtomicU32,
    seen: u32,
    done: &AtomicBool,
    poll: Duration,
) -> Option<u32> {
    while !done.load(Ordering::Relaxed) {
        let now = word.load(Ordering::SeqCst);
        if now != seen {
            return Some(now);
        }
        futex_wait(word, seen, poll);
    }
    None
}

/// Gives up the CPU.
pub fn yield_now() {
    // SAFETY: sched_yield has no arguments and cannot fail in a way that
    // matters here.
    unsafe {
        nix::libc::sched_yield();
    }
}

/// Spins for about `n` rounds of integer work; returns a value so the
/// optimizer keeps the loop.
pub fn spin(n: u32) -> u64 {
    let mut x: u64 = 0x9e37_79b9;
    for i in 0..n {
        x = x.rotate_left(5) ^ u64::from(i);
        std::hint::black_box(x);
    }
    x
}

/// (policy, priority) numbers of a [`Policy`].
pub fn policy_numbers(p: Policy) -> (i32, i32) {
    match p {
        Policy::Normal => (nix::libc::SCHED_OTHER, 0),
        Policy::Batch => (nix::libc::SCHED_BATCH, 0),
        Policy::Idle => (nix::libc::SCHED_IDLE, 0),
        Policy::Fifo { prio } => (nix::libc::SCHED_FIFO, i32::from(prio)),
        Policy::Rr { prio } => (nix::libc::SCHED_RR, i32::from(prio)),
    }
}

/// Sets the scheduling policy of thread `tid` (0: the calling thread).
pub fn set_policy_of(tid: u32, policy: i32, prio: i32) -> std::io::Result<()> {
    let param = nix::libc::sched_param {
        sched_priority: prio,
    };
    // SAFETY: sched_setscheduler on a thread id with a valid sched_param.
    let rc = unsafe { nix::libc::sched_setscheduler(tid as i32, policy, &param) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Sets the nice value of thread `tid` (0: the calling thread).
pub fn set_nice_of(tid: u32, nice: i32) -> std::io::Result<()> {
    // SAFETY: setpriority on a thread id with a plain integer.
    let rc = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, tid, nice) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Restricts thread `tid` to `cpus` (0: the calling thread).
pub fn set_affinity_of(tid: u32, cpus: &[u32]) -> std::io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    for &c in cpus {
        set.set(c as usize).map_err(std::io::Error::from)?;
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(tid as i32), &set)
        .map_err(std::io::Error::from)
}

/// Sets the calling thread's scheduling policy (SCHED_OTHER=0, FIFO=1,
/// RR=2, BATCH=3, IDLE=5) and RT priority.
pub fn set_policy(policy: i32, prio: i32) -> std::io::Result<()> {
    set_policy_of(0, policy, prio)
}

/// Sets the nice value of the calling thread.
pub fn set_nice(nice: i32) -> std::io::Result<()> {
    set_nice_of(0, nice)
}

/// Restricts the calling thread to `cpus`.
pub fn set_affinity(cpus: &[u32]) -> std::io::Result<()> {
    set_affinity_of(0, cpus)
}

/// The CPUs the calling thread may run on.
pub fn allowed_cpus() -> Vec<u32> {
    let Ok(set) = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)) else {
        return vec![0];
    };
    (0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .map(|c| c as u32)
        .collect()
}
