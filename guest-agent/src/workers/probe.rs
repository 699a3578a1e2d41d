//! A worker's telemetry: progress points (gaps, CPUs, migrations), wake
//! latency samples, CPU time and run delay.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ktstr_proto::{CpuSpan, WorkerReport, MAX_CPU_SPANS, MAX_CPU_SPAN_MS};

use super::series::ProgressSeries;

/// Wake-latency samples kept per worker.
pub const MAX_WAKE_SAMPLES: usize = 100_000;

/// Collects one worker's measurements. Only the worker's main thread
/// records progress; helper threads hand wake samples to it.
#[derive(Debug)]
pub struct Probe {
    start: Instant,
    start_mono_ms: f64,
    /// The thread's CPU time when the probe started, ms: off-CPU time is
    /// the wall time since then less the CPU time since then.
    start_thread_cpu_ms: f64,
    series: ProgressSeries,
    last: Instant,
    last_cpu: u32,
    iterations: u64,
    migrations: u64,
    cpus: Vec<u32>,
    max_gap: Duration,
    max_gap_at: Duration,
    max_gap_cpu: u32,
    wake_us: Vec<u32>,
    wake_seen: u64,
    spans: Vec<CpuSpan>,
    spans_truncated: bool,
    cpu_nodes: Vec<u32>,
    counters: std::collections::BTreeMap<String, u64>,
    payload: Option<ktstr_plan::payload::PayloadReport>,
    on_demand: Option<OnDemand>,
}

/// Reports on demand: when `flag` is set, the next progress point writes
/// the report so far as one JSON line to `out` and clears it.
pub struct OnDemand {
    /// Set by whoever wants a report (the worker's stdin watcher).
    pub flag: Arc<AtomicBool>,
    /// The worker's cgroup, for the report.
    pub cgroup: String,
    /// The worker's index, for the report.
    pub index: u32,
    /// Where reports go (the worker's stdout).
    pub out: Box<dyn Write + Send>,
}

impl std::fmt::Debug for OnDemand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnDemand")
            .field("cgroup", &self.cgroup)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// The CPU the calling thread runs on (glibc's `sched_getcpu`, through
/// the vDSO: cheap enough for every progress point).
pub fn current_cpu() -> u32 {
    // SAFETY: sched_getcpu takes no arguments and only reads per-thread
    // state; a negative result (unsupported) is mapped to 0.
    let cpu = unsafe { nix::libc::sched_getcpu() };
    u32::try_from(cpu).unwrap_or(0)
}

/// Each CPU's NUMA node (indexed by CPU), read from sysfs once; every CPU
/// is on node 0 when sysfs says nothing.
fn cpu_nodes() -> Vec<u32> {
    let Ok(layout) = ktstr_topology::sysfs::read_layout(std::path::Path::new("/sys")) else {
        return Vec::new();
    };
    let mut nodes = Vec::new();
    for n in &layout.numa_nodes {
        for &c in &n.cpus {
            let i = c as usize;
            if i >= nodes.len() {
                nodes.resize(i + 1, 0);
            }
            nodes[i] = n.id;
        }
    }
    nodes
}

/// The CPU the calling thread runs on and that CPU's NUMA node.
pub fn current_cpu_and_node() -> (u32, u32) {
    let (mut cpu, mut node) = (0u32, 0u32);
    // SAFETY: getcpu writes one unsigned int through each of the two valid
    // pointers and nothing else (the third argument, a cache, is unused
    // since Linux 2.6.24 and may be null); on failure both stay 0.
    unsafe {
        nix::libc::syscall(
            nix::libc::SYS_getcpu,
            &mut cpu as *mut u32,
            &mut node as *mut u32,
            std::ptr::null_mut::<nix::libc::c_void>(),
        );
    }
    (cpu, node)
}

impl Probe {
    /// Starts measuring now.
    pub fn start() -> Self {
        // sysfs first (slow under emulation): the CPU and the clocks are
        // then read together, as at every progress point.
        let cpu_nodes = cpu_nodes();
        let cpu = current_cpu();
        let now = Instant::now();
        let start_mono_ms = monotonic_ms();
        let start_thread_cpu_ms = thread_cpu_ms();
        let placed = current_cpu() == cpu;
        let node = cpu_nodes.get(cpu as usize).copied().unwrap_or(0);
        Probe {
            start: now,
            start_mono_ms,
            start_thread_cpu_ms,
            series: ProgressSeries::start(start_mono_ms),
            last: now,
            last_cpu: cpu,
            iterations: 0,
            migrations: 0,
            cpus: vec![cpu],
            max_gap: Duration::ZERO,
            max_gap_at: Duration::ZERO,
            max_gap_cpu: cpu,
            wake_us: Vec::new(),
            wake_seen: 0,
            spans: placed
                .then_some(CpuSpan {
                    cpu,
                    node,
                    from_ms: start_mono_ms,
                    to_ms: start_mono_ms,
                })
                .into_iter()
                .collect(),
            spans_truncated: false,
            cpu_nodes,
            counters: Default::default(),
            payload: None,
            on_demand: None,
        }
    }

    /// Writes a report whenever `on_demand.flag` is set (checked at every
    /// progress point).
    pub fn report_on_demand(&mut self, on_demand: OnDemand) {
        self.on_demand = Some(on_demand);
    }

    /// Writes the report so far if one was asked for.
    fn answer_demand(&mut self) {
        let asked = self
            .on_demand
            .as_ref()
            .is_some_and(|d| d.flag.load(Ordering::Relaxed));
        if !asked {
            return;
        }
        let Some(mut d) = self.on_demand.take() else {
            return;
        };
        d.flag.store(false, Ordering::Relaxed);
        let mut line = serde_json::to_vec(&self.report(&d.cgroup, d.index)).unwrap_or_default();
        line.push(b'\n');
        // A closed stdout means the agent is gone; the stop follows.
        let _ = d.out.write_all(&line).and_then(|_| d.out.flush());
        self.on_demand = Some(d);
    }

    /// One unit of work done: checks the clock and the CPU.
    pub fn progress(&mut self) {
        // The CPU before and after the clock: a task moved in between (a
        // cpuset change migrates it exactly then) is not placed at a time
        // it was not there.
        let cpu = current_cpu();
        let now = Instant::now();
        let placed = current_cpu() == cpu;
        let gap = now - self.last;
        if gap > self.max_gap {
            self.max_gap = gap;
            self.max_gap_at = now - self.start;
            self.max_gap_cpu = cpu;
        }
        if cpu != self.last_cpu {
            self.migrations += 1;
            if !self.cpus.contains(&cpu) {
                self.cpus.push(cpu);
            }
        }
        self.last = now;
        self.last_cpu = cpu;
        self.answer_demand();
        let mono = self.mono_ms(now - self.start);
        if placed {
            let node = self.cpu_nodes.get(cpu as usize).copied().unwrap_or(0);
            self.seen_on(cpu, node, mono);
        }
        self.series.advance(mono, self.iterations);
        self.iterations += 1;
    }

    /// Extends the current CPU span to `mono_ms`, or starts a new one when
    /// the CPU changed or the span would grow past [`MAX_CPU_SPAN_MS`].
    fn seen_on(&mut self, cpu: u32, node: u32, mono_ms: f64) {
        if let Some(last) = self.spans.last_mut() {
            if last.cpu == cpu && mono_ms - last.from_ms <= MAX_CPU_SPAN_MS {
                last.to_ms = mono_ms;
                return;
            }
        }
        if self.spans.len() >= MAX_CPU_SPANS {
            self.spans_truncated = true;
            return;
        }
        self.spans.push(CpuSpan {
            cpu,
            node,
            from_ms: mono_ms,
            to_ms: mono_ms,
        });
    }

    /// What the worker's payload program did.
    pub fn set_payload(&mut self, run: ktstr_plan::payload::PayloadReport) {
        self.payload = Some(run);
    }

    /// Adds `n` to the work's counter `name`.
    pub fn count(&mut self, name: &str, n: u64) {
        *self.counters.entry(name.to_string()).or_default() += n;
    }

    /// A wake-up that took `latency` from the wake request to running.
    pub fn wake(&mut self, latency: Duration) {
        self.wake_seen += 1;
        if self.wake_us.len() < MAX_WAKE_SAMPLES {
            let us = latency.as_micros().min(u128::from(u32::MAX)) as u32;
            self.wake_us.push(us);
        }
    }

    /// Guest-monotonic ms at `since_start` after the probe started.
    fn mono_ms(&self, since_start: Duration) -> f64 {
        self.start_mono_ms + ms(since_start)
    }

    /// The report, with CPU time and run delay read now.
    pub fn finish(self, cgroup: &str, index: u32) -> WorkerReport {
        self.report(cgroup, index)
    }

    /// The report so far, the probe going on (a live session's `stats()`).
    pub fn report(&self, cgroup: &str, index: u32) -> WorkerReport {
        let wall = self.start.elapsed();
        let end_mono_ms = self.mono_ms(wall);
        let progress = self.series.clone().finish(end_mono_ms, self.iterations);
        let cpu_ms = process_cpu_ms();
        let thread_cpu_ms = thread_cpu_ms();
        let mut cpus = self.cpus.clone();
        cpus.sort_unstable();
        let mut wake_us = self.wake_us.clone();
        wake_us.sort_unstable();
        let pct = |p: f64| -> f64 {
            if wake_us.is_empty() {
                return 0.0;
            }
            let i = ((wake_us.len() - 1) as f64 * p).round() as usize;
            f64::from(wake_us[i])
        };
        WorkerReport {
            cgroup: cgroup.to_string(),
            index,
            pid: std::process::id(),
            iterations: self.iterations,
            cpu_time_ms: cpu_ms,
            wall_ms: ms(wall),
            off_cpu_ms: (ms(wall) - (thread_cpu_ms - self.start_thread_cpu_ms)).max(0.0),
            migrations: self.migrations,
            cpus_used: cpus,
            max_gap_ms: ms(self.max_gap),
            max_gap_at_ms: ms(self.max_gap_at),
            max_gap_cpu: self.max_gap_cpu,
            wake_samples: self.wake_seen,
            wake_p50_us: pct(0.50),
            wake_p99_us: pct(0.99),
            wake_max_us: wake_us.last().copied().map_or(0.0, f64::from),
            run_delay_ms: run_delay_ms(),
            progress,
            cpu_spans: self.spans.clone(),
            cpu_spans_truncated: self.spans_truncated,
            counters: self.counters.clone(),
            payload: self.payload.clone(),
            error: None,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn clock_ms(clock: nix::libc::clockid_t) -> f64 {
    let mut ts = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { nix::libc::clock_gettime(clock, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 * 1000.0 + ts.tv_nsec as f64 / 1e6
}

/// The guest's `CLOCK_MONOTONIC`, ms (shared by every process).
pub fn monotonic_ms() -> f64 {
    clock_ms(nix::libc::CLOCK_MONOTONIC)
}

/// CPU time of every thread of this process, ms.
pub fn process_cpu_ms() -> f64 {
    clock_ms(nix::libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of the calling thread, ms.
pub fn thread_cpu_ms() -> f64 {
    clock_ms(nix::libc::CLOCK_THREAD_CPUTIME_ID)
}

/// Run delay of the process's main thread from `/proc/self/schedstat`
/// (second field, ns), ms; 0 without schedstats.
pub fn run_delay_ms() -> f64 {
    std::fs::read_to_string("/proc/self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_cpu_time_counts_only_from_the_start() {
        // CPU the thread spent before the probe (reading sysfs, setting up
        // the work) is not taken off the probe's wall time.
        let busy = Instant::now();
        while busy.elapsed() < Duration::from_millis(60) {
            std::hint::black_box(0u64);
        }
        let p = Probe::start();
        std::thread::sleep(Duration::from_millis(30));
        let r = p.finish("g", 0);
        assert!(r.off_cpu_ms >= 25.0, "{r:?}");
    }

    #[test]
    fn gaps_wakes_and_percentiles() {
        let mut p = Probe::start();
        p.progress();
        std::thread::sleep(Duration::from_millis(30));
        p.progress();
        for us in 1..=100 {
            p.wake(Duration::from_micros(us));
        }
        let r = p.finish("g", 2);
        assert_eq!(r.iterations, 2);
        assert!(r.max_gap_ms >= 29.0, "{}", r.max_gap_ms);
        assert_eq!(r.wake_samples, 100);
        assert_eq!(r.wake_p50_us, 51.0);
        assert_eq!(r.wake_p99_us, 99.0);
        assert_eq!(r.wake_max_us, 100.0);
        assert!(r.off_cpu_ms >= 25.0, "{}", r.off_cpu_ms);
        assert_eq!((r.cgroup.as_str(), r.index), ("g", 2));
    }
}
