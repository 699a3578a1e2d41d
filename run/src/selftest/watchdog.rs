//! The host's watchdog over a selftest job's guest: the agent reports at
//! least once per test (it kills a test at its limit), so a guest silent
//! for longer than that is stuck, and the watchdog ends its VM.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Ends a guest that sends nothing for too long: the per-test limit is
/// the agent's, so silence past it means the guest itself is stuck.
pub struct Watchdog {
    last: Arc<Mutex<Instant>>,
    fired: Arc<AtomicBool>,
    done: Arc<AtomicBool>,
}

impl Watchdog {
    /// Starts watching: after `silence` without [`Watchdog::heard`], sets
    /// `cancel`.
    pub fn start(silence: Duration, cancel: Arc<AtomicBool>) -> Self {
        let w = Watchdog {
            last: Arc::new(Mutex::new(Instant::now())),
            fired: Arc::new(AtomicBool::new(false)),
            done: Arc::new(AtomicBool::new(false)),
        };
        let (last, fired, done) = (w.last.clone(), w.fired.clone(), w.done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                let quiet = last.lock().map(|l| l.elapsed()).unwrap_or_default();
                if quiet > silence {
                    fired.store(true, Ordering::Relaxed);
                    cancel.store(true, Ordering::Relaxed);
                    return;
                }
            }
        });
        w
    }

    /// A handle that records each message as heard.
    pub fn ear(&self) -> impl Fn() + Send + 'static {
        let last = self.last.clone();
        move || {
            if let Ok(mut l) = last.lock() {
                *l = Instant::now();
            }
        }
    }

    /// Stops watching; whether it fired.
    pub fn stop(self) -> bool {
        self.done.store(true, Ordering::Relaxed);
        self.fired.load(Ordering::Relaxed)
    }
}
