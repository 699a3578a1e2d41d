//! What the host saw of the guest kernel's run queues while a job ran:
//! the monitor's samples (read from guest memory by the host, without
//! running anything in the guest), as plain data the verdict judges and
//! the sidecar stores.

use serde::{Deserialize, Serialize};

/// The most samples one run keeps (at 10 ms, over 3 minutes); later ones
/// are dropped and [`MonitorReport::truncated`] says so.
pub const MAX_MONITOR_SAMPLES: usize = 20_000;
/// The monitor's default sampling period.
pub const DEFAULT_MONITOR_PERIOD_MS: u32 = 100;

/// One CPU's run queue at one instant, as read from guest memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuSample {
    /// `rq->nr_running`: runnable tasks of every class on this CPU.
    pub nr_running: u32,
    /// `rq->scx.nr_running`: tasks sched_ext holds for this CPU (None on a
    /// kernel without sched_ext).
    pub scx_nr_running: Option<u32>,
    /// `rq->scx.local_dsq.nr`: depth of the CPU's local dispatch queue.
    pub local_dsq: Option<u32>,
    /// `rq->clock` in nanoseconds (the run queue's own clock).
    pub clock_ns: u64,
    /// The running task's pid (0: the CPU is idle).
    pub curr_pid: i32,
    /// The running task's name.
    pub curr_comm: String,
}

/// Every CPU at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorSample {
    /// Milliseconds since the workers started (negative: before), on the
    /// host's clock.
    pub at_ms: i64,
    /// One entry per guest CPU, in CPU order.
    pub cpus: Vec<CpuSample>,
}

/// The monitor's record of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorReport {
    /// The sampling period in milliseconds.
    pub period_ms: u32,
    /// The samples, oldest first.
    pub samples: Vec<MonitorSample>,
    /// True when samples were dropped at [`MAX_MONITOR_SAMPLES`].
    pub truncated: bool,
    /// Why the monitor could not read the guest (then `samples` holds
    /// what it read before it stopped, if anything).
    pub unavailable: Option<String>,
    /// The CPUs of each LLC (what "within an LLC" means for the
    /// imbalance).
    #[serde(default)]
    pub llcs: Vec<Vec<usize>>,
    /// How long the workers ran, ms (the window checks and metrics judge;
    /// None: the whole record).
    #[serde(default)]
    pub workers_ms: Option<i64>,
}

/// The window over which run-queue lengths are averaged before the
/// imbalance within an LLC is taken.
pub const IMBALANCE_WINDOW_MS: i64 = 1000;

/// The metrics of the whole VM that the monitor gives claims (the same
/// whatever the scope).
pub const MONITOR_METRICS: [&str; 3] = ["cpu_stall_ms", "rq_imbalance", "local_dsq_max"];

/// A CPU that had runnable tasks but did not run them, sample after
/// sample (see `stalled_now` for what counts).
#[derive(Debug, Clone, PartialEq)]
pub struct CpuStall {
    /// The CPU.
    pub cpu: usize,
    /// When the stall was first seen, ms since the workers started.
    pub from_ms: i64,
    /// How long it lasted, ms (from the first to the last stalled sample).
    pub ms: i64,
    /// The most runnable tasks seen on it meanwhile.
    pub nr_running: u32,
}

/// How many samples in a row of something else may interrupt a stall
/// before it counts as over.
const STALL_BREAK_SAMPLES: usize = 2;

/// Whether a CPU holds tasks it should be running and is not, at one
/// sample: it idles with tasks of the kernel's own classes queued on it,
/// or with tasks dispatched to its sched_ext local queue, or with tasks
/// sched_ext holds for it while every CPU idles; or its clock stands
/// still while it runs something (a CPU stuck with interrupts off).
/// Tasks sched_ext holds in a shared queue count on the CPU they were
/// enqueued on but may only run elsewhere (their cpuset): while other
/// CPUs are busy, an idle CPU holding them is waiting, not stalled.
fn stalled_now(now: &CpuSample, frozen: bool, all_idle: bool) -> bool {
    if now.nr_running == 0 {
        return false;
    }
    if now.curr_pid != 0 {
        return frozen;
    }
    let scx = now.scx_nr_running.unwrap_or(0);
    now.nr_running > scx || now.local_dsq.unwrap_or(0) > 0 || (scx > 0 && all_idle)
}

impl MonitorReport {
    /// The samples taken between `from_ms` and `to_ms` (inclusive).
    fn window(&self, from_ms: i64, to_ms: i64) -> impl Iterator<Item = &MonitorSample> {
        self.samples
            .iter()
            .filter(move |s| s.at_ms >= from_ms && s.at_ms <= to_ms)
    }

    /// Each CPU's longest stall between `from_ms` and `to_ms`, longest
    /// first (CPUs that never stalled are left out).
    pub fn stalls(&self, from_ms: i64, to_ms: i64) -> Vec<CpuStall> {
        let cpus = self.samples.first().map_or(0, |s| s.cpus.len());
        let mut worst: Vec<CpuStall> = Vec::new();
        for cpu in 0..cpus {
            let mut prev: Option<&CpuSample> = None;
            let mut run: Option<CpuStall> = None;
            let mut best: Option<CpuStall> = None;
            let mut misses = 0usize;
            for s in self.window(from_ms, to_ms) {
                let Some(now) = s.cpus.get(cpu) else { continue };
                let frozen = prev.is_some_and(|p| p.clock_ns == now.clock_ns);
                let all_idle = s.cpus.iter().all(|c| c.curr_pid == 0);
                let stalled = stalled_now(now, frozen, all_idle);
                if stalled {
                    misses = 0;
                    let r = run.get_or_insert(CpuStall {
                        cpu,
                        from_ms: s.at_ms,
                        ms: 0,
                        nr_running: 0,
                    });
                    r.ms = s.at_ms - r.from_ms;
                    r.nr_running = r.nr_running.max(now.nr_running);
                    if best.as_ref().is_none_or(|b| r.ms > b.ms) {
                        best = Some(r.clone());
                    }
                } else {
                    // A stall survives a sample or two of something else
                    // running (the stalling scheduler's own process
                    // printing, a kworker): only a longer break ends it.
                    misses += 1;
                    if misses > STALL_BREAK_SAMPLES {
                        run = None;
                    }
                }
                prev = Some(now);
            }
            worst.extend(best);
        }
        worst.sort_by_key(|s| std::cmp::Reverse(s.ms));
        worst
    }

    /// The largest run-queue imbalance within one LLC between `from_ms`
    /// and `to_ms`: over windows of `window_ms`, the busiest CPU's mean
    /// `nr_running` divided by the idlest one's (at least 1). With the
    /// window's start and the LLC's CPUs. None without two CPUs in an LLC
    /// or a full window of samples.
    pub fn max_imbalance(
        &self,
        llcs: &[Vec<usize>],
        from_ms: i64,
        to_ms: i64,
        window_ms: i64,
    ) -> Option<(f64, i64, Vec<usize>)> {
        let samples: Vec<&MonitorSample> = self.window(from_ms, to_ms).collect();
        let mut best: Option<(f64, i64, Vec<usize>)> = None;
        let mut start = 0usize;
        while start < samples.len() {
            let t0 = samples[start].at_ms;
            let end = samples[start..]
                .iter()
                .position(|s| s.at_ms >= t0 + window_ms)
                .map(|p| start + p);
            let Some(end) = end else { break };
            let chunk = &samples[start..end];
            for llc in llcs.iter().filter(|l| l.len() > 1) {
                let means: Vec<f64> = llc
                    .iter()
                    .map(|&c| {
                        let sum: u64 = chunk
                            .iter()
                            .map(|s| s.cpus.get(c).map_or(0, |x| u64::from(x.nr_running)))
                            .sum();
                        sum as f64 / chunk.len() as f64
                    })
                    .collect();
                let hi = means.iter().copied().fold(0.0, f64::max);
                let lo = means.iter().copied().fold(f64::INFINITY, f64::min).max(1.0);
                let ratio = hi / lo;
                if best.as_ref().is_none_or(|b| ratio > b.0) {
                    best = Some((ratio, t0, llc.clone()));
                }
            }
            start = end;
        }
        best
    }

    /// The deepest local dispatch queue seen between `from_ms` and
    /// `to_ms`: depth, CPU and time. None without sched_ext's fields.
    pub fn max_local_dsq(&self, from_ms: i64, to_ms: i64) -> Option<(u32, usize, i64)> {
        let mut best: Option<(u32, usize, i64)> = None;
        for s in self.window(from_ms, to_ms) {
            for (cpu, c) in s.cpus.iter().enumerate() {
                if let Some(d) = c.local_dsq {
                    if best.is_none_or(|b| d > b.0) {
                        best = Some((d, cpu, s.at_ms));
                    }
                }
            }
        }
        best
    }

    /// The window judged for balance and queue depth: the workers' run
    /// (None when no workers ran).
    pub fn judged(&self) -> Option<(i64, i64)> {
        self.workers_ms.map(|end| (0, end))
    }

    /// The window judged for stalls: from the agent's ready message (the
    /// scheduler attaching included) to the workers' end.
    pub fn judged_for_stalls(&self) -> (i64, i64) {
        (i64::MIN, self.workers_ms.unwrap_or(i64::MAX))
    }

    /// Metric `name` of the judged window (see [`MONITOR_METRICS`]).
    pub fn metric(&self, name: &str) -> Result<f64, String> {
        if self.samples.is_empty() {
            return Err(self
                .unavailable
                .clone()
                .unwrap_or_else(|| "the monitor took no samples".into()));
        }
        let (from, to) = self.judged().ok_or("no workers ran")?;
        match name {
            "cpu_stall_ms" => {
                let (from, to) = self.judged_for_stalls();
                Ok(self.stalls(from, to).first().map_or(0.0, |s| s.ms as f64))
            }
            "rq_imbalance" => self
                .max_imbalance(&self.llcs, from, to, IMBALANCE_WINDOW_MS)
                .map(|b| b.0)
                .ok_or_else(|| "no LLC of two CPUs, or under 1 s of samples".into()),
            "local_dsq_max" => self
                .max_local_dsq(from, to)
                .map(|b| f64::from(b.0))
                .ok_or_else(|| "the kernel has no sched_ext local dispatch queues".into()),
            other => Err(format!("unknown monitor metric `{other}`")),
        }
    }

    /// Shifts every sample's time by `-offset_ms` (to count from the
    /// workers' start instead of the VM's launch).
    pub fn rebase(&mut self, offset_ms: i64) {
        for s in &mut self.samples {
            s.at_ms -= offset_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn cpu(nr: u32, clock: u64, pid: i32) -> CpuSample {
        CpuSample {
            nr_running: nr,
            scx_nr_running: Some(nr),
            local_dsq: Some(nr.saturating_sub(1)),
            clock_ns: clock,
            curr_pid: pid,
            curr_comm: if pid == 0 {
                "swapper".into()
            } else {
                "w".into()
            },
        }
    }

    fn report(samples: Vec<Vec<CpuSample>>) -> MonitorReport {
        MonitorReport {
            period_ms: 100,
            samples: samples
                .into_iter()
                .enumerate()
                .map(|(i, cpus)| MonitorSample {
                    at_ms: i as i64 * 100,
                    cpus,
                })
                .collect(),
            truncated: false,
            unavailable: None,
            llcs: vec![vec![0, 1], vec![2, 3]],
            workers_ms: None,
        }
    }

    #[test]
    fn a_cpu_idle_with_runnable_tasks_is_a_stall_and_a_busy_one_is_not() {
        // CPU 0 runs its tasks (clock moves); CPU 1 has 2 runnable tasks
        // from 300 ms on but runs its idle task with a frozen clock.
        let r = report(
            (0..20)
                .map(|i| {
                    let stuck = i >= 3;
                    vec![
                        cpu(2, 1000 * i, 7),
                        if stuck {
                            cpu(2, 3000, 0)
                        } else {
                            cpu(1, 1000 * i, 8)
                        },
                    ]
                })
                .collect(),
        );
        let s = r.stalls(0, 10_000);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(
            (s[0].cpu, s[0].from_ms, s[0].ms, s[0].nr_running),
            (1, 300, 1600, 2)
        );
        // Outside the judged window there is nothing.
        assert!(r.stalls(0, 250).is_empty());
    }

    #[test]
    fn a_sched_ext_task_waiting_for_its_busy_cpus_is_not_a_stall_but_a_dropped_one_is() {
        // CPU 1 idles holding one sched_ext task in a shared queue (its
        // local queue empty) while CPU 0 runs: the task may only run
        // elsewhere; waiting, not stalled.
        let held = |pid0: i32| {
            let mut c = cpu(1, 5, 0);
            c.local_dsq = Some(0);
            vec![cpu(1, 9, pid0), c]
        };
        let r = report(
            (0..20)
                .map(|i| {
                    let mut v = held(7);
                    v[0].clock_ns = i;
                    v
                })
                .collect(),
        );
        assert!(r.stalls(0, 10_000).is_empty(), "{:?}", r.stalls(0, 10_000));
        // Every CPU idles while sched_ext holds a task: nobody runs it.
        let r = report((0..20).map(|_| held(0)).collect());
        let s = r.stalls(0, 10_000);
        assert!(s.iter().any(|x| x.cpu == 1 && x.ms == 1900), "{s:?}");
        // A CPU running something whose clock stands still: stuck.
        let r = report((0..20).map(|_| vec![cpu(1, 5, 7), cpu(0, 9, 0)]).collect());
        assert_eq!(r.stalls(0, 10_000)[0].cpu, 0);
    }

    #[test]
    fn an_idle_cpu_with_nothing_to_run_is_not_a_stall() {
        let r = report((0..20).map(|_| vec![cpu(0, 5, 0)]).collect());
        assert!(r.stalls(0, 10_000).is_empty());
    }

    #[test]
    fn imbalance_is_the_busiest_mean_over_the_idlest_within_an_llc() {
        // LLC {0,1}: 4 against 0 runnable; LLC {2,3}: 2 against 2.
        let r = report(
            (0..30)
                .map(|i| vec![cpu(4, i, 1), cpu(0, i, 0), cpu(2, i, 1), cpu(2, i, 1)])
                .collect(),
        );
        let (ratio, _, llc) = r
            .max_imbalance(&[vec![0, 1], vec![2, 3]], 0, 10_000, 1000)
            .unwrap();
        assert_eq!((ratio, llc), (4.0, vec![0, 1]));
        // Single-CPU LLCs are never imbalanced.
        assert!(r
            .max_imbalance(&[vec![0], vec![1]], 0, 10_000, 1000)
            .is_none());
        assert_eq!(r.max_local_dsq(0, 10_000), Some((3, 0, 0)));
    }

    #[test]
    fn claims_read_the_same_figures_over_the_workers_run() {
        let mut r = report(
            (0..30)
                .map(|i| vec![cpu(4, i, 1), cpu(0, i, 0), cpu(2, i, 1), cpu(2, 7, 0)])
                .collect(),
        );
        r.workers_ms = Some(2500);
        assert_eq!(r.metric("rq_imbalance"), Ok(4.0));
        assert_eq!(r.metric("local_dsq_max"), Ok(3.0));
        // CPU 3 idles with 2 runnable from the start: 2.5 s of stall in
        // the judged window (the samples after it do not count).
        assert_eq!(r.metric("cpu_stall_ms"), Ok(2500.0));
        assert!(r.metric("bogus").is_err());
        let none = MonitorReport {
            unavailable: Some("monitor unavailable: x".into()),
            ..MonitorReport::default()
        };
        assert_eq!(
            none.metric("rq_imbalance"),
            Err("monitor unavailable: x".into())
        );
    }
}
