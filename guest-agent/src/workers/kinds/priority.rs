//! Work about priorities and classes: policy churn, RT preemptors and
//! hogs, priority inversion.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{loop_until, sleep_sample, Run, SPIN};
use crate::workers::probe::{current_cpu, Probe};
use crate::workers::sys;

/// The SCHED_FIFO priority the RT helpers of these work types use.
const RT_PRIO: i32 = 10;

/// Cycles normal, batch, idle, FIFO and round-robin.
pub(super) fn policy_churn(r: &Run, p: &mut Probe) -> Result<(), String> {
    use nix::libc::{SCHED_BATCH, SCHED_FIFO, SCHED_IDLE, SCHED_OTHER, SCHED_RR};
    let policies = [
        (SCHED_OTHER, 0),
        (SCHED_BATCH, 0),
        (SCHED_IDLE, 0),
        (SCHED_FIFO, 1),
        (SCHED_RR, 1),
    ];
    let mut i = 0;
    while !r.done() {
        let (pol, prio) = policies[i % policies.len()];
        sys::set_policy(pol, prio).map_err(|e| format!("sched_setscheduler({pol}): {e}"))?;
        sys::spin(SPIN / 4);
        p.count(&format!("policy{pol}"), 1);
        i += 1;
        p.progress();
    }
    sys::set_policy(SCHED_OTHER, 0).map_err(|e| format!("sched_setscheduler: {e}"))
}

/// A thread of `policy`/`prio` pinned to `cpu`, running `body` until
/// `done`.
fn pinned_thread(
    cpu: u32,
    policy: i32,
    prio: i32,
    done: Arc<AtomicBool>,
    mut body: impl FnMut() + Send + 'static,
) -> thread::JoinHandle<Result<(), String>> {
    thread::spawn(move || {
        sys::set_affinity(&[cpu]).map_err(|e| format!("sched_setaffinity({cpu}): {e}"))?;
        sys::set_policy(policy, prio).map_err(|e| format!("sched_setscheduler: {e}"))?;
        while !done.load(Ordering::Relaxed) {
            body();
        }
        Ok(())
    })
}

/// Short sleeps that preempt others on wake-up, and a SCHED_FIFO thread on
/// the worker's CPU that wakes every millisecond, spins 100 µs and so
/// preempts the worker itself.
pub(super) fn preempt_storm(r: &Run, p: &mut Probe) -> Result<(), String> {
    let done = Arc::new(AtomicBool::new(false));
    let wakeups = Arc::new(AtomicU64::new(0));
    let w = wakeups.clone();
    let fifo = pinned_thread(
        current_cpu(),
        nix::libc::SCHED_FIFO,
        RT_PRIO,
        done.clone(),
        move || {
            thread::sleep(Duration::from_millis(1));
            let end = Instant::now() + Duration::from_micros(100);
            while Instant::now() < end {
                sys::spin(64);
            }
            w.fetch_add(1, Ordering::Relaxed);
        },
    );
    let mut i = 0u64;
    while !r.done() {
        sleep_sample(p, Duration::from_micros(50 + (i % 20) * 50));
        sys::spin(SPIN / 8);
        i += 1;
        p.progress();
    }
    done.store(true, Ordering::Relaxed);
    let rt = fifo
        .join()
        .map_err(|_| "the FIFO preemptor panicked".to_string())?;
    p.count("fifo_wakeups", wakeups.load(Ordering::Relaxed));
    rt
}

/// A SCHED_FIFO hog pinned to the worker's CPU, the worker's own normal
/// thread pinned beside it: the worker progresses only in the time RT
/// throttling leaves (5 % by default).
pub(super) fn rt_starvation(r: &Run, p: &mut Probe) -> Result<(), String> {
    let cpu = current_cpu();
    sys::set_affinity(&[cpu]).map_err(|e| format!("sched_setaffinity({cpu}): {e}"))?;
    sys::set_policy(nix::libc::SCHED_OTHER, 0).map_err(|e| format!("sched_setscheduler: {e}"))?;
    let done = Arc::new(AtomicBool::new(false));
    let hog = pinned_thread(cpu, nix::libc::SCHED_FIFO, 50, done.clone(), || {
        sys::spin(SPIN);
    });
    let result = loop_until(r, p, || {
        sys::spin(SPIN / 4);
    });
    done.store(true, Ordering::Relaxed);
    let rt = hog
        .join()
        .map_err(|_| "the FIFO hog panicked".to_string())?;
    p.count("hog_cpu", u64::from(cpu));
    result.and(rt)
}

/// A nice 19 holder takes the lock for 1 ms at a time; `spinners` nice 0
/// threads spin; the worker's own thread, SCHED_FIFO, wants the lock and
/// records how long it waited (a wake sample) each time. All share the
/// worker's CPU, so the holder runs only when the FIFO thread blocks on
/// it and the spinners let it.
pub(super) fn priority_inversion(r: &Run, p: &mut Probe, spinners: u32) -> Result<(), String> {
    let cpu = current_cpu();
    let lock = Arc::new(Mutex::new(0u64));
    let done = Arc::new(AtomicBool::new(false));
    let held = Arc::new(AtomicU64::new(0));
    let (l, h) = (lock.clone(), held.clone());
    let holder = pinned_thread(cpu, nix::libc::SCHED_OTHER, 0, done.clone(), move || {
        let _ = sys::set_nice(19);
        let mut g = l.lock().unwrap_or_else(|e| e.into_inner());
        let end = Instant::now() + Duration::from_millis(1);
        while Instant::now() < end {
            *g = g.wrapping_add(sys::spin(64));
        }
        drop(g);
        h.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_micros(200));
    });
    let middle: Vec<_> = (0..spinners)
        .map(|_| {
            pinned_thread(cpu, nix::libc::SCHED_OTHER, 0, done.clone(), || {
                sys::spin(SPIN);
            })
        })
        .collect();
    let result = (|| {
        sys::set_affinity(&[cpu]).map_err(|e| format!("sched_setaffinity({cpu}): {e}"))?;
        sys::set_policy(nix::libc::SCHED_FIFO, RT_PRIO)
            .map_err(|e| format!("sched_setscheduler(FIFO): {e}"))?;
        while !r.done() {
            let t = Instant::now();
            let g = lock.lock().unwrap_or_else(|e| e.into_inner());
            p.wake(t.elapsed());
            drop(g);
            p.count("waiter_acquisitions", 1);
            p.progress();
            thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    })();
    let _ = sys::set_policy(nix::libc::SCHED_OTHER, 0);
    done.store(true, Ordering::Relaxed);
    for t in middle.into_iter().chain([holder]) {
        t.join()
            .map_err(|_| "a priority_inversion thread panicked".to_string())??;
    }
    p.count("holder_acquisitions", held.load(Ordering::Relaxed));
    result
}
