//! What the guest sent, turned into typed results, failures, stats lines
//! and the human and JSON output of one job.

use std::path::PathBuf;

use ktstr_engine::results::{CgroupResults, RunResults, WorkerResults};
use ktstr_engine::verdict::{Outcome, Verdict};
use ktstr_proto::{GuestMessage, WorkerReport};
use ktstr_vmm::VmOutcome;
use serde_json::json;

/// What one job produced.
pub struct JobResult {
    /// "scenario topology scheduler".
    pub label: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Wall time of the VM.
    pub seconds: f64,
    /// The sidecar, when one was written.
    pub sidecar: Option<PathBuf>,
    /// The stats block shown on failure.
    pub stats: Vec<String>,
    /// (this run, of how many) under `--repeat`.
    pub repeat: Option<(u32, u32)>,
}

impl JobResult {
    /// A job that failed before it could run.
    pub fn failed(label: String, reason: String) -> Self {
        JobResult {
            label,
            verdict: Verdict {
                outcome: Outcome::Fail,
                reasons: vec![reason],
                thresholds: Default::default(),
                claims: vec![],
            },
            seconds: 0.0,
            sidecar: None,
            stats: vec![],
            repeat: None,
        }
    }

    /// A job skipped because the host cannot run it.
    pub fn skipped(label: String, why: &str) -> Self {
        let mut r = Self::failed(label, why.to_string());
        r.verdict.outcome = Outcome::Skip;
        r
    }

    /// The job as `--json` prints it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = json!({
            "job": self.label, "seconds": self.seconds,
            "verdict": self.verdict, "sidecar": self.sidecar,
        });
        if let Some((i, n)) = self.repeat {
            v["repeat"] = json!({"run": i, "of": n});
        }
        v
    }
}

/// Everything the guest sent that the verdict needs.
#[derive(Default)]
pub struct Seen {
    /// Every worker's report.
    pub workers: Vec<WorkerReport>,
    /// Whether the results message came.
    pub results: bool,
    /// Scheduler state changes: (state, detail).
    pub scheduler: Vec<(String, String)>,
    /// Timed events: (ms, message).
    pub events: Vec<(f64, String)>,
}

impl Seen {
    /// Takes one message from the guest.
    pub fn take(&mut self, m: &GuestMessage) {
        match m {
            GuestMessage::Results { workers, .. } => {
                self.workers = workers.clone();
                self.results = true;
            }
            GuestMessage::Scheduler { state, detail } => {
                self.scheduler.push((state.clone(), detail.clone()))
            }
            GuestMessage::Event { at_ms, message } => self.events.push((*at_ms, message.clone())),
            _ => {}
        }
    }

    /// Problems outside the results: scheduler failures, VM failures, no
    /// results at all.
    pub fn failures(&self, o: &VmOutcome) -> Vec<String> {
        let mut v = Vec::new();
        for (state, detail) in &self.scheduler {
            if state != "attached" {
                v.push(format!("scheduler {state}: {}", detail.trim()));
            }
        }
        if !o.is_clean() {
            v.push(o.failure_report());
        } else if !self.results && self.scheduler.iter().all(|(s, _)| s == "attached") {
            v.push("the guest sent no results".into());
        }
        v
    }

    /// The typed results claims and checks read.
    pub fn run_results(&self) -> RunResults {
        let mut r = RunResults::default();
        for w in &self.workers {
            r.cgroups
                .entry(w.cgroup.clone())
                .or_insert_with(CgroupResults::default)
                .workers
                .push(WorkerResults {
                    iterations: w.iterations,
                    max_gap_ms: w.max_gap_ms,
                    migrations: w.migrations,
                    wake_p50_us: w.wake_p50_us,
                    wake_p99_us: w.wake_p99_us,
                    run_delay_ms: w.run_delay_ms,
                    cpu_time_ms: w.cpu_time_ms,
                    cpus_used: w.cpus_used.clone(),
                    progress: w.progress.iter().map(|p| (p.at_ms, p.iterations)).collect(),
                    error: w.error.clone(),
                });
        }
        r
    }

    /// The stats block: totals, then one line per cgroup.
    pub fn stats_lines(&self) -> Vec<String> {
        let workers = &self.workers;
        let mut cpus: Vec<u32> = workers.iter().flat_map(|w| w.cpus_used.clone()).collect();
        cpus.sort_unstable();
        cpus.dedup();
        let migrations: u64 = workers.iter().map(|w| w.migrations).sum();
        let worst_gap = workers.iter().map(|w| w.max_gap_ms).fold(0.0, f64::max);
        let mut lines = vec![format!(
            "workers {}  cpus {}  migrations {migrations}  worst gap {worst_gap:.0} ms",
            workers.len(),
            ktstr_topology::cpulist::format(&cpus)
        )];
        let mut names: Vec<&str> = workers.iter().map(|w| w.cgroup.as_str()).collect();
        names.dedup();
        for name in names {
            let ws: Vec<&WorkerReport> = workers.iter().filter(|w| w.cgroup == name).collect();
            let it: u64 = ws.iter().map(|w| w.iterations).sum();
            let cpu: f64 = ws.iter().map(|w| w.cpu_time_ms).sum();
            let gap = ws.iter().map(|w| w.max_gap_ms).fold(0.0, f64::max);
            lines.push(format!(
                "  {name}: {} workers, {it} iterations, {cpu:.0} ms CPU, worst gap {gap:.0} ms",
                ws.len()
            ));
        }
        lines
    }
}

/// Facts about the host for the sidecar.
pub fn host_facts() -> serde_json::Value {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    json!({"kernel": release.trim(), "cpus": cpus, "ktstr": env!("CARGO_PKG_VERSION")})
}

/// One line per job; on anything but a pass, the reasons, the stats
/// block and the sidecar's path.
pub fn print_result(r: &JobResult) -> std::io::Result<()> {
    let run = r
        .repeat
        .map(|(i, n)| format!(" (run {i}/{n})"))
        .unwrap_or_default();
    outln!(
        "{} [{:>5.1}s] {}{run}",
        r.verdict.outcome.label(),
        r.seconds,
        r.label
    )?;
    if r.verdict.outcome == Outcome::Pass {
        return Ok(());
    }
    for reason in &r.verdict.reasons {
        outln!("    {}", reason.replace('\n', "\n    "))?;
    }
    for s in &r.stats {
        outln!("    {s}")?;
    }
    if let Some(p) = &r.sidecar {
        outln!("    sidecar: {}", p.display())?;
    }
    Ok(())
}
