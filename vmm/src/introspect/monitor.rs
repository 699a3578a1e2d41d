//! The host-side monitor: a thread that samples every guest CPU's run
//! queue from guest memory every period, from the agent's ready message
//! to the end of the VM. It runs nothing in the guest and perturbs
//! nothing but the host's own CPU time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ktstr_plan::monitor::{MonitorReport, MonitorSample, MAX_MONITOR_SAMPLES};

use super::{GuestMemory, KernelLayout, KernelReader};

/// What to monitor.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// The booted kernel's layout.
    pub layout: KernelLayout,
    /// The sampling period.
    pub period: Duration,
    /// How many CPUs the guest has.
    pub cpus: usize,
}

/// A running monitor thread.
#[derive(Debug)]
pub struct Monitor {
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<MonitorReport>,
}

impl Monitor {
    /// Starts the thread; it waits for [`Monitor::guest_ready`]. Sample
    /// times count from `origin` (the VM's launch); the run library
    /// rebases them to the workers' start.
    pub fn start(memory: GuestMemory, config: MonitorConfig, origin: Instant) -> Monitor {
        let ready = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (Arc::clone(&ready), Arc::clone(&stop));
        let handle = std::thread::Builder::new()
            .name("ktstr-monitor".into())
            .spawn(move || sample_loop(&memory, config, origin, &r, &s))
            .expect("spawning the monitor thread");
        Monitor {
            ready,
            stop,
            handle,
        }
    }

    /// The guest kernel is up (the agent said ready): start sampling.
    pub fn guest_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Stops sampling and returns what was seen.
    pub fn finish(self) -> MonitorReport {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap_or_else(|_| MonitorReport {
            unavailable: Some("the monitor thread panicked".into()),
            ..MonitorReport::default()
        })
    }
}

/// Sleeps in short slices until `until` or a stop; false on a stop.
fn sleep_until(until: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

fn sample_loop(
    memory: &GuestMemory,
    config: MonitorConfig,
    origin: Instant,
    ready: &AtomicBool,
    stop: &AtomicBool,
) -> MonitorReport {
    let period = config.period.max(Duration::from_millis(1));
    let mut report = MonitorReport {
        period_ms: period.as_millis().min(u128::from(u32::MAX)) as u32,
        ..MonitorReport::default()
    };
    while !ready.load(Ordering::Acquire) {
        if !sleep_until(Instant::now() + Duration::from_millis(20), stop) {
            report.unavailable = Some("the guest never became ready".into());
            return report;
        }
    }
    let reader = match KernelReader::new(memory, config.layout, config.cpus) {
        Ok(r) => r,
        Err(e) => {
            report.unavailable = Some(format!("monitor unavailable: {e}"));
            return report;
        }
    };
    let mut next = Instant::now();
    loop {
        let at_ms = origin.elapsed().as_millis() as i64;
        let cpus: Result<Vec<_>, _> = (0..reader.cpus()).map(|c| reader.cpu(c)).collect();
        match cpus {
            Ok(cpus) if report.samples.len() < MAX_MONITOR_SAMPLES => {
                report.samples.push(MonitorSample { at_ms, cpus })
            }
            Ok(_) => report.truncated = true,
            Err(e) => {
                report.unavailable = Some(format!("monitor stopped at {at_ms} ms: {e}"));
                break;
            }
        }
        next += period;
        if !sleep_until(next, stop) {
            break;
        }
    }
    report
}
