//! The work types: each loop does what its name says and records a
//! progress point per iteration; what proves it did (signals handled,
//! moves made, ...) goes into the report's counters. The simple loops are
//! here; the others by family in `cpu`, `io`, `moves`, `wake`,
//! `priority`, `custom` and `payload` (a real program).

mod cpu;
mod custom;
mod io;
mod moves;
mod payload;
mod priority;
mod wake;

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ktstr_plan::work::Work;

use super::probe::Probe;
use super::sys;

/// Integer rounds per spin iteration (~10 µs natively).
pub(super) const SPIN: u32 = 4096;
/// How long blocking waits last before rechecking the stop flag.
pub(super) const POLL: Duration = Duration::from_millis(50);

/// When a work loop must end.
pub struct Run<'a> {
    /// Set when the agent stops the worker.
    pub stop: &'a AtomicBool,
    /// End of the current sequence phase, if any.
    pub until: Option<Instant>,
    /// The worker's index in its cgroup (work that places itself spreads
    /// by it).
    pub index: u32,
}

impl Run<'_> {
    /// Whether the loop must end now.
    pub fn done(&self) -> bool {
        self.stop.load(Ordering::Relaxed) || self.until.is_some_and(|t| Instant::now() >= t)
    }
}

/// Runs `work` until told to stop.
pub fn run(work: &Work, r: &Run, p: &mut Probe) -> Result<(), String> {
    match work {
        Work::SpinWait => loop_until(r, p, || {
            sys::spin(SPIN);
        }),
        Work::YieldHeavy => loop_until(r, p, || {
            sys::spin(SPIN / 16);
            sys::yield_now();
        }),
        Work::Mixed => mixed(r, p),
        Work::IoSync => io_sync(r, p),
        Work::Bursty { burst_ms, sleep_ms } => bursty(r, p, *burst_ms, *sleep_ms),
        Work::PipeIo => pipe_pair(r, p, 0),
        Work::FutexPingPong => futex_ping_pong(r, p),
        Work::FutexFanOut { fanout } => fan_out(r, p, *fanout),
        Work::CachePressure { size_kb } => cache_walk(r, p, *size_kb, |_| {}),
        Work::CacheYield { size_kb } => cache_walk(r, p, *size_kb, |_| sys::yield_now()),
        Work::CachePipe { size_kb } => pipe_pair(r, p, *size_kb),
        Work::ForkExit => fork_exit(r, p),
        Work::NiceSweep => nice_sweep(r, p),
        Work::AffinityChurn => affinity_churn(r, p),
        Work::PolicyChurn => priority::policy_churn(r, p),
        Work::FanOutCompute { fanout } => cpu::fan_out_compute(r, p, *fanout),
        Work::PageFaultChurn { pages } => page_faults(r, p, *pages),
        Work::MutexContention { threads } => mutex_contention(r, p, *threads),
        Work::WakeChain { depth, pipe: false } => wake_chain(r, p, *depth),
        Work::WakeChain { depth, pipe: true } => wake::wake_chain_pipe(r, p, *depth),
        Work::ThunderingHerd { waiters } => herd(r, p, *waiters),
        Work::PreemptStorm => priority::preempt_storm(r, p),
        Work::RtStarvation => priority::rt_starvation(r, p),
        Work::Sequence { phases } => sequence(r, p, phases),
        Work::AluHot => cpu::alu_hot(r, p),
        Work::SmtSiblingSpin => cpu::smt_sibling_spin(r, p, r.index),
        Work::IpcVariance { size_kb } => cpu::ipc_variance(r, p, *size_kb),
        Work::IoSyncWrite { block_kb } => io::io_sync_write(r, p, *block_kb),
        Work::IoRandRead { size_kb } => io::io_rand_read(r, p, *size_kb),
        Work::IoConvoy { threads } => io::io_convoy(r, p, *threads),
        Work::IdleChurn { sleep_us } => cpu::idle_churn(r, p, *sleep_us),
        Work::NumaMigrationChurn => moves::numa_migration_churn(r, p),
        Work::CgroupChurn => moves::cgroup_churn(r, p),
        Work::AsymmetricWaker { work_us } => wake::asymmetric_waker(r, p, *work_us),
        Work::EpollStorm { fds } => wake::epoll_storm(r, p, *fds),
        Work::NumaWorkingSetSweep { size_kb } => moves::numa_working_set_sweep(r, p, *size_kb),
        Work::PriorityInversion { spinners } => priority::priority_inversion(r, p, *spinners),
        Work::ProducerConsumerImbalance { consumers } => wake::producer_consumer(r, p, *consumers),
        Work::SignalStorm => wake::signal_storm(r, p),
        Work::Custom { steps } => custom::custom(r, p, steps),
        Work::Payload { run } => payload::payload(r, p, run),
    }
}

pub(super) fn loop_until(r: &Run, p: &mut Probe, mut step: impl FnMut()) -> Result<(), String> {
    while !r.done() {
        step();
        p.progress();
    }
    Ok(())
}

/// Sleeps `d`; the overshoot is a wake latency sample.
pub(super) fn sleep_sample(p: &mut Probe, d: Duration) {
    let t = Instant::now();
    thread::sleep(d);
    p.wake(t.elapsed().saturating_sub(d));
}

fn mixed(r: &Run, p: &mut Probe) -> Result<(), String> {
    let mut i = 0u32;
    while !r.done() {
        match i % 3 {
            0 => {
                sys::spin(SPIN);
            }
            1 => sys::yield_now(),
            _ => sleep_sample(p, Duration::from_micros(100)),
        }
        i += 1;
        p.progress();
    }
    Ok(())
}

/// Blocks `io_sync` cycles through: its file never grows past 1 MiB (the
/// guest's /tmp is in its RAM).
pub(super) const IO_SYNC_BLOCKS: u64 = 256;

fn io_sync(r: &Run, p: &mut Probe) -> Result<(), String> {
    use std::os::unix::fs::FileExt;
    let path = std::env::temp_dir().join(format!("ktstr-io-{}", std::process::id()));
    let f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let block = [0x5au8; 4096];
    let result = (|| {
        let mut i = 0u64;
        while !r.done() {
            f.write_all_at(&block, (i % IO_SYNC_BLOCKS) * block.len() as u64)?;
            f.sync_all()?;
            p.progress();
            i += 1;
        }
        Ok::<(), std::io::Error>(())
    })();
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| format!("io_sync: {e}"))
}

fn bursty(r: &Run, p: &mut Probe, burst_ms: u32, sleep_ms: u32) -> Result<(), String> {
    while !r.done() {
        let end = Instant::now() + Duration::from_millis(u64::from(burst_ms));
        while Instant::now() < end && !r.done() {
            sys::spin(SPIN);
            p.progress();
        }
        sleep_sample(p, Duration::from_millis(u64::from(sleep_ms)));
    }
    Ok(())
}

/// Nanoseconds since `base`, for timestamps passed between threads.
pub(super) fn stamp(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// Two threads pass an 8-byte send timestamp back and forth through two
/// pipes; with `walk_kb` > 0 each side walks a buffer before passing.
fn pipe_pair(r: &Run, p: &mut Probe, walk_kb: u32) -> Result<(), String> {
    let (mut a_rx, mut b_tx) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let (mut b_rx, mut a_tx) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
    let base = Instant::now();
    let done = Arc::new(AtomicBool::new(false));
    let peer_done = Arc::clone(&done);
    let peer = thread::spawn(move || {
        let mut buf = vec![0u8; walk_kb as usize * 1024];
        let mut msg = [0u8; 8];
        while b_rx.read_exact(&mut msg).is_ok() && !peer_done.load(Ordering::Relaxed) {
            walk(&mut buf);
            if b_tx.write_all(&stamp(base).to_le_bytes()).is_err() {
                return;
            }
        }
    });
    let mut buf = vec![0u8; walk_kb as usize * 1024];
    let mut msg = [0u8; 8];
    let result = (|| {
        while !r.done() {
            walk(&mut buf);
            a_tx.write_all(&stamp(base).to_le_bytes())?;
            a_rx.read_exact(&mut msg)?;
            let sent = u64::from_le_bytes(msg);
            p.wake(Duration::from_nanos(stamp(base).saturating_sub(sent)));
            p.progress();
        }
        Ok::<(), std::io::Error>(())
    })();
    done.store(true, Ordering::Relaxed);
    drop(a_tx);
    let _ = peer.join();
    result.map_err(|e| format!("pipe: {e}"))
}

pub(super) fn walk(buf: &mut [u8]) {
    for i in (0..buf.len()).step_by(64) {
        buf[i] = buf[i].wrapping_add(1);
    }
    std::hint::black_box(&buf);
}

/// Two threads wake each other through one futex word; the waker stores
/// its wake time for the sleeper to measure.
fn futex_ping_pong(r: &Run, p: &mut Probe) -> Result<(), String> {
    let word = Arc::new(AtomicU32::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let base = Instant::now();
    let (w, s, d) = (Arc::clone(&word), Arc::clone(&sent), Arc::clone(&done));
    let peer = thread::spawn(move || {
        // The peer answers odd values with the next even one.
        while !d.load(Ordering::Relaxed) {
            let v = w.load(Ordering::SeqCst);
            if v % 2 == 1 {
                s.store(stamp(base), Ordering::SeqCst);
                w.store(v + 1, Ordering::SeqCst);
                sys::futex_wake(&w, 1);
            } else {
                sys::futex_wait(&w, v, POLL);
            }
        }
    });
    while !r.done() {
        let v = word.fetch_add(1, Ordering::SeqCst) + 1;
        sys::futex_wake(&word, 1);
        while word.load(Ordering::SeqCst) == v && !r.done() {
            sys::futex_wait(&word, v, POLL);
        }
        if word.load(Ordering::SeqCst) != v {
            let at = sent.load(Ordering::SeqCst);
            p.wake(Duration::from_nanos(stamp(base).saturating_sub(at)));
            p.progress();
        }
    }
    done.store(true, Ordering::Relaxed);
    sys::futex_signal(&word, 1);
    let _ = peer.join();
    Ok(())
}

/// One waker (this thread) and `n` waiters on a futex generation word;
/// the waiters report their wake latency back.
fn fan_out(r: &Run, p: &mut Probe, n: u32) -> Result<(), String> {
    let gen = Arc::new(AtomicU32::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let base = Instant::now();
    let waiters: Vec<_> = (0..n)
        .map(|_| {
            let (g, s, l, d) = (gen.clone(), sent.clone(), latencies.clone(), done.clone());
            thread::spawn(move || {
                let mut seen = g.load(Ordering::SeqCst);
                while let Some(now) = sys::next_generation(&g, seen, &d, POLL) {
                    seen = now;
                    let lat = stamp(base).saturating_sub(s.load(Ordering::SeqCst));
                    l.lock().unwrap_or_else(|e| e.into_inner()).push(lat);
                }
            })
        })
        .collect();
    while !r.done() {
        sent.store(stamp(base), Ordering::SeqCst);
        sys::futex_signal(&gen, i32::MAX);
        thread::sleep(Duration::from_millis(1));
        for lat in std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner())) {
            p.wake(Duration::from_nanos(lat));
        }
        p.progress();
    }
    done.store(true, Ordering::Relaxed);
    sys::futex_signal(&gen, i32::MAX);
    waiters.into_iter().for_each(|w| {
        let _ = w.join();
    });
    Ok(())
}

fn cache_walk(r: &Run, p: &mut Probe, size_kb: u32, after: impl Fn(usize)) -> Result<(), String> {
    let mut buf = vec![0u8; size_kb as usize * 1024];
    let mut i = 0;
    while !r.done() {
        walk(&mut buf);
        after(i);
        i += 1;
        p.progress();
    }
    Ok(())
}

fn fork_exit(r: &Run, p: &mut Probe) -> Result<(), String> {
    while !r.done() {
        // SAFETY: the child calls only _exit, which is async-signal-safe,
        // so forking a multi-threaded process is sound here.
        let pid = unsafe { nix::libc::fork() };
        match pid {
            0 => {
                // SAFETY: ends the child at once without running any Rust
                // code of the parent's state.
                unsafe { nix::libc::_exit(0) }
            }
            -1 => return Err(format!("fork: {}", std::io::Error::last_os_error())),
            child => {
                let mut status = 0;
                // SAFETY: waits for our own child with a valid status pointer.
                unsafe { nix::libc::waitpid(child, &mut status, 0) };
            }
        }
        p.progress();
    }
    Ok(())
}

fn nice_sweep(r: &Run, p: &mut Probe) -> Result<(), String> {
    let mut nice = 0;
    while !r.done() {
        sys::set_nice(nice).map_err(|e| format!("setpriority({nice}): {e}"))?;
        sys::spin(SPIN);
        nice = if nice >= 19 { -20 } else { nice + 1 };
        p.progress();
    }
    let _ = sys::set_nice(0);
    Ok(())
}

fn affinity_churn(r: &Run, p: &mut Probe) -> Result<(), String> {
    let allowed = sys::allowed_cpus();
    let mut i = 0;
    while !r.done() {
        let cpu = allowed[i % allowed.len()];
        sys::set_affinity(&[cpu]).map_err(|e| format!("sched_setaffinity({cpu}): {e}"))?;
        sys::spin(SPIN / 4);
        i += 1;
        p.progress();
    }
    sys::set_affinity(&allowed).map_err(|e| format!("sched_setaffinity: {e}"))
}

fn page_faults(r: &Run, p: &mut Probe, pages: u32) -> Result<(), String> {
    let len = pages as usize * 4096;
    while !r.done() {
        // SAFETY: a fresh private anonymous mapping; every access below is
        // within `len`, and it is unmapped before the next round.
        unsafe {
            let addr = nix::libc::mmap(
                std::ptr::null_mut(),
                len,
                nix::libc::PROT_READ | nix::libc::PROT_WRITE,
                nix::libc::MAP_PRIVATE | nix::libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if addr == nix::libc::MAP_FAILED {
                return Err(format!("mmap: {}", std::io::Error::last_os_error()));
            }
            let bytes = addr.cast::<u8>();
            for page in 0..pages as usize {
                bytes.add(page * 4096).write_volatile(1);
            }
            nix::libc::munmap(addr, len);
        }
        p.progress();
    }
    Ok(())
}

fn mutex_contention(r: &Run, p: &mut Probe, threads: u32) -> Result<(), String> {
    let lock = Arc::new(Mutex::new(0u64));
    let done = Arc::new(AtomicBool::new(false));
    let others: Vec<_> = (1..threads.max(1))
        .map(|_| {
            let (l, d) = (lock.clone(), done.clone());
            thread::spawn(move || {
                while !d.load(Ordering::Relaxed) {
                    let mut g = l.lock().unwrap_or_else(|e| e.into_inner());
                    *g += sys::spin(64) & 1;
                }
            })
        })
        .collect();
    while !r.done() {
        let t = Instant::now();
        let mut g = lock.lock().unwrap_or_else(|e| e.into_inner());
        p.wake(t.elapsed());
        *g += sys::spin(64) & 1;
        drop(g);
        p.progress();
    }
    done.store(true, Ordering::Relaxed);
    others.into_iter().for_each(|t| {
        let _ = t.join();
    });
    Ok(())
}

/// A ring of `depth` threads (this one first); each waits for its turn and
/// hands it to the next. One progress point per full round.
fn wake_chain(r: &Run, p: &mut Probe, depth: u32) -> Result<(), String> {
    let depth = depth.max(2);
    let turn = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let links: Vec<_> = (1..depth)
        .map(|me| {
            let (t, d) = (turn.clone(), done.clone());
            thread::spawn(move || {
                while !d.load(Ordering::Relaxed) {
                    let v = t.load(Ordering::SeqCst);
                    if v % depth == me {
                        t.store(v + 1, Ordering::SeqCst);
                        sys::futex_wake(&t, i32::MAX);
                    } else {
                        sys::futex_wait(&t, v, POLL);
                    }
                }
            })
        })
        .collect();
    while !r.done() {
        let start = Instant::now();
        let v = turn.fetch_add(1, Ordering::SeqCst) + 1;
        sys::futex_wake(&turn, i32::MAX);
        let back = v + depth - 1;
        while turn.load(Ordering::SeqCst) < back && !r.done() {
            let now = turn.load(Ordering::SeqCst);
            sys::futex_wait(&turn, now, POLL);
        }
        p.wake(start.elapsed() / depth);
        p.progress();
    }
    done.store(true, Ordering::Relaxed);
    sys::futex_signal(&turn, i32::MAX);
    links.into_iter().for_each(|t| {
        let _ = t.join();
    });
    Ok(())
}

fn herd(r: &Run, p: &mut Probe, waiters: u32) -> Result<(), String> {
    let state = Arc::new((Mutex::new((0u64, Instant::now())), Condvar::new()));
    let latencies = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let herd: Vec<_> = (0..waiters)
        .map(|_| {
            let (s, l, d) = (state.clone(), latencies.clone(), done.clone());
            thread::spawn(move || {
                let (m, cv) = &*s;
                let mut seen = 0;
                while !d.load(Ordering::Relaxed) {
                    let g = m.lock().unwrap_or_else(|e| e.into_inner());
                    let (g, _) = cv
                        .wait_timeout_while(g, POLL, |(gen, _)| *gen == seen)
                        .unwrap_or_else(|e| e.into_inner());
                    if g.0 != seen {
                        seen = g.0;
                        let lat = g.1.elapsed();
                        drop(g);
                        l.lock().unwrap_or_else(|e| e.into_inner()).push(lat);
                    }
                }
            })
        })
        .collect();
    while !r.done() {
        {
            let (m, cv) = &*state;
            let mut g = m.lock().unwrap_or_else(|e| e.into_inner());
            *g = (g.0 + 1, Instant::now());
            cv.notify_all();
        }
        thread::sleep(Duration::from_millis(2));
        for lat in std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner())) {
            p.wake(lat);
        }
        p.progress();
    }
    done.store(true, Ordering::Relaxed);
    state.1.notify_all();
    herd.into_iter().for_each(|t| {
        let _ = t.join();
    });
    Ok(())
}

fn sequence(r: &Run, p: &mut Probe, phases: &[ktstr_plan::work::Phase]) -> Result<(), String> {
    while !r.done() {
        for phase in phases {
            let until = Instant::now() + Duration::from_secs_f64(phase.secs);
            let inner = Run {
                stop: r.stop,
                index: r.index,
                until: Some(r.until.map_or(until, |u| u.min(until))),
            };
            run(&phase.work, &inner, p)?;
            if r.done() {
                break;
            }
        }
    }
    Ok(())
}
