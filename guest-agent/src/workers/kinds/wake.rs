//! Wake-up patterns beyond ping-pong: asymmetric pairs, epoll storms,
//! unbalanced producer/consumer queues, signal storms and pipe chains.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{stamp, Run, POLL, SPIN};
use crate::workers::kinds::cpu::alu_rounds;
use crate::workers::probe::Probe;
use crate::workers::sys;

/// Spins for about `us` µs.
fn busy_for(us: u32) {
    let end = Instant::now() + Duration::from_micros(u64::from(us));
    while Instant::now() < end {
        alu_rounds(64);
    }
}

/// The waker (this thread) spins a little and wakes the wakee, which then
/// computes `work_us`; the waker does not wait for it, so wake-ups pile
/// up while the wakee is busy. Wake latency: the wakee's, sent back.
pub(super) fn asymmetric_waker(r: &Run, p: &mut Probe, work_us: u32) -> Result<(), String> {
    let word = Arc::new(AtomicU32::new(0));
    let sent = Arc::new(AtomicU64::new(0));
    let latency = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(AtomicBool::new(false));
    let base = Instant::now();
    let (w, s, l, d) = (word.clone(), sent.clone(), latency.clone(), done.clone());
    let wakee = thread::spawn(move || {
        let mut seen = 0;
        while let Some(now) = sys::next_generation(&w, seen, &d, POLL) {
            seen = now;
            l.store(
                stamp(base).saturating_sub(s.load(Ordering::SeqCst)),
                Ordering::SeqCst,
            );
            busy_for(work_us);
        }
    });
    while !r.done() {
        sys::spin(SPIN / 16);
        sent.store(stamp(base), Ordering::SeqCst);
        word.fetch_add(1, Ordering::SeqCst);
        sys::futex_wake(&word, 1);
        let lat = latency.swap(u64::MAX, Ordering::SeqCst);
        if lat != u64::MAX {
            p.wake(Duration::from_nanos(lat));
        }
        p.count("wakes_sent", 1);
        p.progress();
        thread::sleep(Duration::from_micros(100));
    }
    done.store(true, Ordering::Relaxed);
    sys::futex_signal(&word, 1);
    let _ = wakee.join();
    Ok(())
}

/// An eventfd, closed on drop.
fn eventfd() -> Result<OwnedFd, String> {
    // SAFETY: eventfd takes two integers and returns a new descriptor or
    // -1; a valid one is owned from here on.
    let fd = unsafe { nix::libc::eventfd(0, nix::libc::EFD_NONBLOCK | nix::libc::EFD_CLOEXEC) };
    if fd < 0 {
        return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `fds` eventfds in one epoll set; a helper thread signals a burst of
/// them, the worker (in `epoll_wait`) drains every ready one.
pub(super) fn epoll_storm(r: &Run, p: &mut Probe, fds: u32) -> Result<(), String> {
    // SAFETY: epoll_create1 returns a new descriptor or -1.
    let ep = unsafe { nix::libc::epoll_create1(nix::libc::EPOLL_CLOEXEC) };
    if ep < 0 {
        return Err(format!(
            "epoll_create1: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `ep` is a fresh descriptor nothing else owns.
    let ep = unsafe { OwnedFd::from_raw_fd(ep) };
    let events: Vec<Arc<OwnedFd>> = (0..fds.max(1))
        .map(|_| eventfd().map(Arc::new))
        .collect::<Result<_, _>>()?;
    for (i, fd) in events.iter().enumerate() {
        let mut ev = nix::libc::epoll_event {
            events: nix::libc::EPOLLIN as u32,
            u64: i as u64,
        };
        // SAFETY: registers a valid eventfd with a valid epoll descriptor;
        // `ev` is read during the call only.
        let rc = unsafe {
            nix::libc::epoll_ctl(
                ep.as_raw_fd(),
                nix::libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        };
        if rc != 0 {
            return Err(format!("epoll_ctl: {}", std::io::Error::last_os_error()));
        }
    }
    let done = Arc::new(AtomicBool::new(false));
    let (d, targets) = (done.clone(), events.clone());
    let signaller = thread::spawn(move || {
        let mut x = 0x853c_49e6_748f_ea9bu64;
        while !d.load(Ordering::Relaxed) {
            for _ in 0..8 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let fd = &targets[(x % targets.len() as u64) as usize];
                let one = 1u64.to_ne_bytes();
                // SAFETY: writes 8 bytes from a valid buffer to an eventfd.
                unsafe { nix::libc::write(fd.as_raw_fd(), one.as_ptr().cast(), 8) };
            }
            thread::sleep(Duration::from_micros(200));
        }
    });
    let mut ready = vec![nix::libc::epoll_event { events: 0, u64: 0 }; events.len()];
    while !r.done() {
        let t = Instant::now();
        // SAFETY: waits on a valid epoll descriptor into a buffer of
        // `ready.len()` events.
        let n = unsafe {
            nix::libc::epoll_wait(ep.as_raw_fd(), ready.as_mut_ptr(), ready.len() as i32, 50)
        };
        if n > 0 {
            p.wake(t.elapsed());
        }
        for ev in ready.iter().take(n.max(0) as usize) {
            let mut buf = [0u8; 8];
            let fd = &events[ev.u64 as usize];
            // SAFETY: reads at most 8 bytes into a valid 8-byte buffer.
            unsafe { nix::libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
            p.count("epoll_events", 1);
        }
        p.progress();
    }
    done.store(true, Ordering::Relaxed);
    let _ = signaller.join();
    Ok(())
}

/// The bounded queue of [`producer_consumer`]: items are send times.
struct Queue {
    items: Mutex<(VecDeque<u64>, bool)>,
    not_empty: Condvar,
    not_full: Condvar,
}

/// Items the queue holds at most.
const QUEUE_CAP: usize = 64;

/// One producer (this thread, ~20 µs per item) and `consumers` consumers
/// (~200 µs per item): the queue fills and the producer blocks on it.
pub(super) fn producer_consumer(r: &Run, p: &mut Probe, consumers: u32) -> Result<(), String> {
    let q = Arc::new(Queue {
        items: Mutex::new((VecDeque::new(), false)),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    let consumed = Arc::new(AtomicU64::new(0));
    let base = Instant::now();
    let pool: Vec<_> = (0..consumers.max(1))
        .map(|_| {
            let (q, c) = (q.clone(), consumed.clone());
            thread::spawn(move || loop {
                let mut g = q.items.lock().unwrap_or_else(|e| e.into_inner());
                while g.0.is_empty() && !g.1 {
                    g = q.not_empty.wait(g).unwrap_or_else(|e| e.into_inner());
                }
                if g.1 {
                    return;
                }
                g.0.pop_front();
                drop(g);
                q.not_full.notify_one();
                busy_for(200);
                c.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    while !r.done() {
        busy_for(20);
        let t = Instant::now();
        let mut g = q.items.lock().unwrap_or_else(|e| e.into_inner());
        while g.0.len() >= QUEUE_CAP && !r.done() {
            g = q
                .not_full
                .wait_timeout(g, POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        g.0.push_back(stamp(base));
        drop(g);
        q.not_empty.notify_one();
        p.wake(t.elapsed());
        p.progress();
    }
    q.items.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
    q.not_empty.notify_all();
    pool.into_iter().for_each(|t| {
        let _ = t.join();
    });
    p.count("items_consumed", consumed.load(Ordering::Relaxed));
    Ok(())
}

/// Signals the handler has seen (async-signal-safe: one atomic add).
static SIGNALS_HANDLED: AtomicU64 = AtomicU64::new(0);

extern "C" fn on_sigusr1(_: nix::libc::c_int) {
    SIGNALS_HANDLED.fetch_add(1, Ordering::Relaxed);
}

/// A helper thread sends this thread `SIGUSR1` as fast as it can
/// (`tgkill`); this thread spins and counts what its handler saw. One
/// progress point per spin round.
pub(super) fn signal_storm(r: &Run, p: &mut Probe) -> Result<(), String> {
    // SAFETY: installs an async-signal-safe handler (one atomic add) for
    // SIGUSR1, which nothing else in the worker uses.
    let old = unsafe {
        nix::libc::signal(
            nix::libc::SIGUSR1,
            on_sigusr1 as *const () as nix::libc::sighandler_t,
        )
    };
    if old == nix::libc::SIG_ERR {
        return Err(format!("signal: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: gettid takes nothing and returns this thread's id.
    let me = unsafe { nix::libc::gettid() };
    let pid = std::process::id() as i32;
    let done = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (d, s) = (done.clone(), sent.clone());
    let sender = thread::spawn(move || {
        while !d.load(Ordering::Relaxed) {
            // SAFETY: sends SIGUSR1 to a thread of this process, whose
            // handler is installed above.
            let rc =
                unsafe { nix::libc::syscall(nix::libc::SYS_tgkill, pid, me, nix::libc::SIGUSR1) };
            if rc == 0 {
                s.fetch_add(1, Ordering::Relaxed);
            }
            sys::spin(64);
        }
    });
    let before = SIGNALS_HANDLED.load(Ordering::Relaxed);
    while !r.done() {
        sys::spin(SPIN / 4);
        p.progress();
    }
    done.store(true, Ordering::Relaxed);
    let _ = sender.join();
    // SAFETY: puts back the handler SIGUSR1 had before.
    unsafe { nix::libc::signal(nix::libc::SIGUSR1, old) };
    p.count("signals_sent", sent.load(Ordering::Relaxed));
    p.count(
        "signals_handled",
        SIGNALS_HANDLED.load(Ordering::Relaxed) - before,
    );
    Ok(())
}

/// A ring of `depth` threads (this one first) passing a token through
/// pipes: each write wakes the next reader synchronously (`WF_SYNC`).
pub(super) fn wake_chain_pipe(r: &Run, p: &mut Probe, depth: u32) -> Result<(), String> {
    let depth = depth.max(2) as usize;
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for _ in 0..depth {
        let (rx, tx) = std::io::pipe().map_err(|e| format!("pipe: {e}"))?;
        readers.push(Some(rx));
        writers.push(Some(tx));
    }
    // Link i reads pipe i and writes pipe i+1; this thread is link 0.
    let mut links = Vec::new();
    for i in 1..depth {
        let mut rx = readers[i].take().expect("each reader once");
        let mut tx = writers[(i + 1) % depth].take().expect("each writer once");
        links.push(thread::spawn(move || {
            let mut token = [0u8; 8];
            while rx.read_exact(&mut token).is_ok() {
                if tx.write_all(&token).is_err() {
                    return;
                }
            }
        }));
    }
    let mut rx = readers[0].take().expect("reader 0");
    let mut tx = writers[1].take().expect("writer 1");
    let base = Instant::now();
    let result = (|| {
        let mut token = [0u8; 8];
        while !r.done() {
            tx.write_all(&stamp(base).to_le_bytes())?;
            rx.read_exact(&mut token)?;
            let round = stamp(base).saturating_sub(u64::from_le_bytes(token));
            p.wake(Duration::from_nanos(round / depth as u64));
            p.progress();
        }
        Ok::<(), std::io::Error>(())
    })();
    drop(tx);
    links.into_iter().for_each(|t| {
        let _ = t.join();
    });
    result.map_err(|e| format!("wake_chain pipe: {e}"))
}
