//! The default checks every run gets, whatever its claims: worker
//! errors, starvation and gaps here; fairness, cpuset isolation, wake-up
//! latency, placement and the host-side monitor's run queues in their own
//! files. Each check reads its
//! threshold from the layered set in force and returns the reasons to
//! fail and notes on what it could not judge.

mod fairness;
mod isolation;
mod latency;
pub mod monitor;
mod placement;

use std::collections::BTreeMap;

use ktstr_topology::Topology;

use crate::plan::Plan;
use crate::results::RunResults;
use crate::thresholds::threshold_def;
use crate::work::Work;

/// What the default checks found: reasons to fail, and notes on checks
/// that were not judged (too little data to tell a real difference from
/// noise).
#[derive(Debug, Default)]
pub struct Findings {
    /// Reasons to fail, one line each.
    pub reasons: Vec<String>,
    /// Checks not judged, and why, one line each.
    pub notes: Vec<String>,
}

/// The thresholds in force, read by name (a name missing from the set
/// takes the registry's native default).
pub(crate) struct Limits<'a>(&'a BTreeMap<String, f64>);

impl Limits<'_> {
    fn get(&self, name: &str) -> f64 {
        self.0
            .get(name)
            .copied()
            .or_else(|| threshold_def(name).map(|d| d.default))
            .unwrap_or(f64::NAN)
    }
}

/// Runs every default check of `results` of `plan` on `topology`.
pub fn default_checks(
    plan: &Plan,
    topology: &Topology,
    results: &RunResults,
    thresholds: &BTreeMap<String, f64>,
) -> Findings {
    let limits = Limits(thresholds);
    let mut f = Findings::default();
    progress(results, &limits, &mut f);
    isolation::check(plan, topology, results, &limits, &mut f);
    if let Some(report) = &results.monitor {
        let llcs = monitor::balanced_llcs(plan, topology, results, &mut f);
        monitor::check(report, &llcs, &limits, &mut f);
    }
    for (name, cg) in &results.cgroups {
        let work = work_of(plan, name);
        if work.is_some_and(|w| matches!(w, Work::Payload { .. })) {
            f.notes.push(format!(
                "cgroup {name} runs a payload: judged by its exit status and the claims \
                 on its metrics"
            ));
            continue;
        }
        if work.is_some_and(Work::steady_rate) {
            fairness::check(name, &cg.workers, &limits, &mut f);
        } else if cg.workers.len() > 1 {
            f.notes.push(format!(
                "cgroup {name}: fairness not judged, its work yields, blocks or runs helper \
                 threads (only fixed computation asks for equal CPU time)"
            ));
        }
        let compare_wakes = work.is_some_and(Work::wakes_itself);
        latency::check(name, &cg.workers, compare_wakes, &limits, &mut f);
        if work.is_some_and(Work::moves_by_design) {
            f.notes.push(format!(
                "cgroup {name}: migrations and NUMA locality not judged, its work moves \
                 itself by design"
            ));
        } else {
            placement::check(name, &cg.workers, topology, &limits, &mut f);
        }
    }
    f
}

/// What cgroup `name` of `plan` does (its last definition, from the start
/// or added by a step).
fn work_of<'a>(plan: &'a Plan, name: &str) -> Option<&'a Work> {
    let added = plan
        .steps
        .iter()
        .flat_map(|s| &s.ops)
        .filter_map(|op| match op {
            crate::steps::Op::AddCgroup { cgroup } => Some(cgroup),
            _ => None,
        });
    plan.cgroups
        .iter()
        .chain(added)
        .rfind(|d| d.name == name)
        .map(|d| &d.work)
}

/// CPU a worker must have had before its loop to count as started (exec
/// and set-up take 100-300 ms of CPU under TCG).
const STARTED_CPU_MS: f64 = 20.0;
/// How long into its loop a worker with no progress may have been
/// stopped and still count as stopped while starting.
const STOPPED_EARLY_MS: f64 = 50.0;

/// Whether a worker without progress got CPU (it started: exec, set-up)
/// but was stopped right as its loop began: its cgroup ended first, which
/// says nothing about the scheduler starving it.
fn stopped_while_starting(w: &crate::results::WorkerReport) -> bool {
    w.cpu_time_ms >= STARTED_CPU_MS && w.wall_ms < STOPPED_EARLY_MS
}

/// Worker errors, starvation and the longest gap between progress points.
fn progress(results: &RunResults, limits: &Limits, f: &mut Findings) {
    let max_gap = limits.get("max_gap_ms");
    for (name, cg) in &results.cgroups {
        for (i, w) in cg.workers.iter().enumerate() {
            if let Some(e) = &w.error {
                f.reasons.push(format!("worker {name}[{i}] failed: {e}"));
            } else if let Some(run) = &w.payload {
                if let Some(why) = run.failure() {
                    let last = run.output.lines().rev().find(|l| !l.trim().is_empty());
                    f.reasons.push(match last {
                        Some(l) => format!("worker {name}[{i}]: {why}\n  ({})", l.trim()),
                        None => format!("worker {name}[{i}]: {why}"),
                    });
                }
            } else if w.iterations == 0 && stopped_while_starting(w) {
                f.notes.push(format!(
                    "worker {name}[{i}] made no progress: it was stopped {:.1} ms into its \
                     loop, after {:.0} ms of CPU spent starting (its cgroup's life was shorter \
                     than its start-up under this load), not starved",
                    w.wall_ms, w.cpu_time_ms
                ));
            } else if w.iterations == 0 {
                f.reasons
                    .push(format!("worker {name}[{i}] starved: no progress at all"));
            } else if w.max_gap_ms > max_gap {
                f.reasons.push(format!(
                    "worker {name}[{i}] stalled {:.0} ms (threshold {max_gap:.0} ms)",
                    w.max_gap_ms
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests;
