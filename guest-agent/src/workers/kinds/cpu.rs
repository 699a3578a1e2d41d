//! CPU-bound work: register arithmetic, SMT sibling pairs, IPC swings,
//! idle churn and fan-out compute.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::{loop_until, sleep_sample, stamp, Run, POLL, SPIN};
use crate::workers::probe::{current_cpu, Probe};
use crate::workers::sys;

/// Multiply-add chains kept in registers, `rounds` times.
pub(super) fn alu_rounds(rounds: u32) -> u64 {
    let (mut a, mut b, mut c, mut d) = (1u64, 3u64, 5u64, 7u64);
    for i in 0..u64::from(rounds) {
        a = a.wrapping_mul(6364136223846793005).wrapping_add(i);
        b = b.wrapping_mul(a | 1).wrapping_add(c);
        c = c.rotate_left(7) ^ d.wrapping_mul(3);
        d = d.wrapping_add(b >> 3);
    }
    std::hint::black_box(a ^ b ^ c ^ d)
}

pub(super) fn alu_hot(r: &Run, p: &mut Probe) -> Result<(), String> {
    loop_until(r, p, || {
        alu_rounds(SPIN);
    })
}

/// The SMT sibling of `cpu` among `allowed`, from sysfs.
fn sibling_of(cpu: u32, allowed: &[u32]) -> Option<u32> {
    let path = format!("/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list");
    let list = std::fs::read_to_string(path).ok()?;
    let sibs = ktstr_topology::cpulist::parse(list.trim()).ok()?;
    sibs.into_iter().find(|&s| s != cpu && allowed.contains(&s))
}

/// Pins itself to a CPU and a helper thread to that CPU's SMT sibling;
/// both spin. Workers of a cgroup start on different cores.
pub(super) fn smt_sibling_spin(r: &Run, p: &mut Probe, index: u32) -> Result<(), String> {
    let allowed = sys::allowed_cpus();
    let pairs: Vec<(u32, u32)> = allowed
        .iter()
        .filter_map(|&c| sibling_of(c, &allowed).filter(|&s| s > c).map(|s| (c, s)))
        .collect();
    let Some(&(cpu, sibling)) = pairs.get(index as usize % pairs.len().max(1)) else {
        return Err(format!(
            "smt_sibling_spin: no two SMT siblings among CPUs {allowed:?} (use requires_smt())"
        ));
    };
    sys::set_affinity(&[cpu]).map_err(|e| format!("sched_setaffinity({cpu}): {e}"))?;
    let done = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(AtomicU32::new(u32::MAX));
    let (d, s) = (done.clone(), seen.clone());
    let helper = thread::spawn(move || {
        if sys::set_affinity(&[sibling]).is_err() {
            return;
        }
        while !d.load(Ordering::Relaxed) {
            sys::spin(SPIN);
            s.store(current_cpu(), Ordering::Relaxed);
        }
    });
    let result = loop_until(r, p, || {
        sys::spin(SPIN);
    });
    done.store(true, Ordering::Relaxed);
    let _ = helper.join();
    p.count("core_cpu", u64::from(cpu));
    p.count("sibling_cpu", u64::from(sibling));
    p.count("sibling_seen_on", u64::from(seen.load(Ordering::Relaxed)));
    result
}

/// A random cyclic permutation of `n` slots: each holds the next index.
fn pointer_chain(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let mut next = vec![0; n];
    for w in 0..n {
        next[order[w]] = order[(w + 1) % n];
    }
    next
}

/// Each iteration: register arithmetic (high IPC), then as many dependent
/// loads through a `size_kb` random chain (low IPC).
pub(super) fn ipc_variance(r: &Run, p: &mut Probe, size_kb: u32) -> Result<(), String> {
    let n = (size_kb as usize * 1024 / size_of::<usize>()).max(2);
    let chain = pointer_chain(n);
    let mut at = 0;
    while !r.done() {
        alu_rounds(SPIN);
        for _ in 0..SPIN / 4 {
            at = chain[at];
        }
        std::hint::black_box(at);
        p.count("alu_phases", 1);
        p.count("chase_phases", 1);
        p.progress();
    }
    Ok(())
}

/// A burst of ~50 µs, then a `sleep_us` sleep, in a loop.
pub(super) fn idle_churn(r: &Run, p: &mut Probe, sleep_us: u32) -> Result<(), String> {
    while !r.done() {
        sys::spin(SPIN / 8);
        sleep_sample(p, Duration::from_micros(u64::from(sleep_us)));
        p.progress();
    }
    Ok(())
}

/// 32x32 integer matrix product: the compute kernel of fan-out threads.
fn matmul(seed: u64) -> u64 {
    const N: usize = 32;
    let a: Vec<u64> = (0..N * N).map(|i| seed.wrapping_add(i as u64)).collect();
    let mut sum = 0u64;
    for i in 0..N {
        for j in 0..N {
            let mut acc = 0u64;
            for k in 0..N {
                acc = acc.wrapping_add(a[i * N + k].wrapping_mul(a[k * N + j]));
            }
            sum = sum.wrapping_add(acc);
        }
    }
    std::hint::black_box(sum)
}

/// A messenger (this thread) wakes `n` persistent compute threads through
/// a generation futex; each multiplies a matrix and checks in; the
/// messenger sleeps on the check-in futex until all have. Wake latency:
/// from the messenger's wake to each thread running.
pub(super) fn fan_out_compute(r: &Run, p: &mut Probe, n: u32) -> Result<(), String> {
    let gen = Arc::new(AtomicU32::new(0));
    let finished = Arc::new(AtomicU32::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let slowest_wake = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let base = Instant::now();
    let threads: Vec<_> = (0..n)
        .map(|_| {
            let (g, f, s, l, d) = (
                gen.clone(),
                finished.clone(),
                sent.clone(),
                slowest_wake.clone(),
                done.clone(),
            );
            thread::spawn(move || {
                let mut seen = 0;
                while let Some(now) = sys::next_generation(&g, seen, &d, POLL) {
                    seen = now;
                    l.fetch_max(
                        stamp(base).saturating_sub(s.load(Ordering::SeqCst)),
                        Ordering::SeqCst,
                    );
                    matmul(u64::from(now));
                    f.fetch_add(1, Ordering::SeqCst);
                    sys::futex_wake(&f, 1);
                }
            })
        })
        .collect();
    while !r.done() {
        finished.store(0, Ordering::SeqCst);
        slowest_wake.store(0, Ordering::SeqCst);
        sent.store(stamp(base), Ordering::SeqCst);
        gen.fetch_add(1, Ordering::SeqCst);
        sys::futex_wake(&gen, i32::MAX);
        loop {
            let f = finished.load(Ordering::SeqCst);
            if f >= n || r.done() {
                break;
            }
            sys::futex_wait(&finished, f, POLL);
        }
        p.wake(Duration::from_nanos(slowest_wake.load(Ordering::SeqCst)));
        p.count("rounds", 1);
        p.progress();
    }
    done.store(true, Ordering::Relaxed);
    sys::futex_signal(&gen, i32::MAX);
    threads.into_iter().for_each(|t| {
        let _ = t.join();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pointer_chain_is_one_cycle_through_every_slot() {
        let next = pointer_chain(1000);
        let (mut at, mut steps) = (0, 0);
        loop {
            at = next[at];
            steps += 1;
            if at == 0 {
                break;
            }
        }
        assert_eq!(steps, 1000);
    }
}
