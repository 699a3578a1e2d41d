//! Checks of what the host-side monitor saw of the guest's run queues:
//! stalled CPUs, run-queue imbalance within an LLC, deep local dispatch
//! queues. Judged over the workers' run.

use ktstr_topology::Topology;

use super::{Findings, Limits};
use crate::monitor::{MonitorReport, IMBALANCE_WINDOW_MS};

/// The CPUs of each LLC of `topology`.
pub fn llc_cpus(topology: &Topology) -> Vec<Vec<usize>> {
    (0..topology.llcs())
        .map(|l| {
            topology
                .llc_cpus(l)
                .into_iter()
                .map(|c| c as usize)
                .collect()
        })
        .collect()
}

/// Judges `report` over the workers' run.
pub(super) fn check(report: &MonitorReport, limits: &Limits, f: &mut Findings) {
    if let Some(why) = &report.unavailable {
        f.notes.push(why.clone());
    }
    if report.samples.is_empty() {
        return;
    }
    let (from, to) = report.judged_for_stalls();
    let max_stall = limits.get("max_cpu_stall_ms");
    if let Some(s) = report.stalls(from, to).first() {
        if s.ms as f64 > max_stall {
            f.reasons.push(format!(
                "CPU {} stalled: {} runnable task(s) but it ran none (its run queue clock \
                 stood still or it ran its idle task) for {} ms from {:.2} s \
                 (threshold {max_stall:.0} ms, host-side monitor)",
                s.cpu,
                s.nr_running,
                s.ms,
                s.from_ms as f64 / 1000.0
            ));
        }
    }
    let Some((from, to)) = report.judged() else {
        return;
    };
    let max_ratio = limits.get("max_rq_imbalance");
    if let Some((ratio, at, cpus)) =
        report.max_imbalance(&report.llcs, from, to, IMBALANCE_WINDOW_MS)
    {
        if ratio > max_ratio {
            f.reasons.push(format!(
                "run queues imbalanced within the LLC of CPUs {cpus:?}: the busiest held \
                 {ratio:.1}x the idlest one's tasks over 1 s from {:.2} s (threshold \
                 {max_ratio})",
                at as f64 / 1000.0
            ));
        }
    }
    let max_dsq = limits.get("max_local_dsq_depth");
    if let Some((depth, cpu, at)) = report.max_local_dsq(from, to) {
        if f64::from(depth) > max_dsq {
            f.reasons.push(format!(
                "CPU {cpu}'s local dispatch queue held {depth} tasks at {:.2} s \
                 (threshold {max_dsq:.0})",
                at as f64 / 1000.0
            ));
        }
    }
}
