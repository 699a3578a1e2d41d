//! Checks of what the host-side monitor saw of the guest's run queues:
//! stalled CPUs, run-queue imbalance within an LLC, deep local dispatch
//! queues. Judged over the workers' run.

use ktstr_topology::Topology;

use super::{Findings, Limits};
use crate::monitor::{MonitorReport, IMBALANCE_WINDOW_MS};
use crate::plan::Plan;
use crate::policy::Affinity;
use crate::results::RunResults;

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

/// The LLCs whose run queues the scheduler alone balances: none when a
/// cgroup's workers have their own affinity or work that pins itself,
/// else those no cpuset in force covers only in part (a cpuset of whole
/// LLCs leaves the balance within each to the scheduler). What is left
/// out gets a note.
pub(super) fn balanced_llcs(
    plan: &Plan,
    topology: &Topology,
    results: &RunResults,
    f: &mut Findings,
) -> Vec<Vec<usize>> {
    let defs = plan.cgroups.iter().chain(plan.steps.iter().flat_map(|s| {
        s.ops.iter().filter_map(|op| match op {
            crate::steps::Op::AddCgroup { cgroup } => Some(cgroup),
            _ => None,
        })
    }));
    for d in defs {
        if d.affinity != Affinity::Inherit || d.work.pins_itself() {
            f.notes.push(format!(
                "run-queue imbalance not judged: cgroup {}'s workers are pinned by their \
                 affinity or their work, so their run queues are their own choice",
                d.name
            ));
            return Vec::new();
        }
    }
    let cpusets = super::isolation::cpusets_in_force(plan, topology, results);
    let (whole, part): (Vec<_>, Vec<_>) = llc_cpus(topology).into_iter().partition(|llc| {
        cpusets.iter().all(|set| {
            let inside = llc.iter().filter(|&&c| set.contains(&(c as u32))).count();
            inside == 0 || inside == llc.len()
        })
    });
    if !part.is_empty() {
        f.notes.push(format!(
            "run-queue imbalance not judged within the LLCs of CPUs {part:?}: a cpuset \
             covers only part of them"
        ));
    }
    whole
}

/// Judges `report` over the workers' run; imbalance only within `llcs`.
pub(super) fn check(
    report: &MonitorReport,
    llcs: &[Vec<usize>],
    limits: &Limits,
    f: &mut Findings,
) {
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
                "CPU {} stalled: {} runnable task(s) it should run but it ran none for {} ms \
                 from {:.2} s (threshold {max_stall:.0} ms, host-side monitor)",
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
    if let Some((ratio, at, cpus)) = report.max_imbalance(llcs, from, to, IMBALANCE_WINDOW_MS) {
        if max_ratio > 0.0 && ratio > max_ratio {
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::monitor::{CpuSample, MonitorSample};

    fn cpu(nr: u32, clock: u64, pid: i32) -> CpuSample {
        CpuSample {
            nr_running: nr,
            scx_nr_running: Some(nr),
            local_dsq: Some(0),
            clock_ns: clock,
            curr_pid: pid,
            curr_comm: "t".into(),
        }
    }

    /// 6 s of samples of 2 CPUs in one LLC; `at(i)` gives sample i's CPUs.
    fn report(at: impl Fn(u64) -> Vec<CpuSample>) -> MonitorReport {
        MonitorReport {
            period_ms: 100,
            samples: (0..60)
                .map(|i| MonitorSample {
                    at_ms: i as i64 * 100,
                    cpus: at(i),
                })
                .collect(),
            llcs: vec![vec![0, 1]],
            workers_ms: Some(6000),
            ..MonitorReport::default()
        }
    }

    fn judge(r: &MonitorReport) -> Findings {
        let t = BTreeMap::from([("max_rq_imbalance".to_string(), 4.0)]);
        let mut f = Findings::default();
        check(r, &r.llcs, &Limits(&t), &mut f);
        f
    }

    #[test]
    fn a_healthy_run_passes_and_each_symptom_trips_its_check() {
        let healthy = report(|i| vec![cpu(2, i * 100, 5), cpu(2, i * 100, 6)]);
        assert!(judge(&healthy).reasons.is_empty());
        // CPU 1 idles with a runnable task from 1 s on: a stall past 1 s.
        let stalled = report(|i| {
            // A task of the kernel's own class queued on an idle CPU.
            let mut idle = cpu(1, 7, 0);
            idle.scx_nr_running = Some(0);
            vec![
                cpu(1, i * 100, 5),
                if i >= 10 { idle } else { cpu(1, i * 100, 6) },
            ]
        });
        let f = judge(&stalled);
        assert_eq!(f.reasons.len(), 1, "{:?}", f.reasons);
        assert!(
            f.reasons[0].starts_with("CPU 1 stalled"),
            "{}",
            f.reasons[0]
        );
        // Six runnable on one CPU, none on its sibling.
        let piled = report(|i| vec![cpu(6, i * 100, 5), cpu(0, i * 100, 0)]);
        let f = judge(&piled);
        assert!(f.reasons[0].contains("imbalanced"), "{:?}", f.reasons);
        // A local DSQ 100 deep.
        let deep = report(|i| {
            let mut c = cpu(1, i * 100, 5);
            c.local_dsq = Some(100);
            vec![c, cpu(1, i * 100, 6)]
        });
        let f = judge(&deep);
        assert!(
            f.reasons[0].contains("local dispatch queue held 100"),
            "{:?}",
            f.reasons
        );
    }

    #[test]
    fn imbalance_is_off_unless_a_threshold_is_set() {
        let piled = report(|i| vec![cpu(6, i * 100, 5), cpu(0, i * 100, 0)]);
        let mut f = Findings::default();
        check(&piled, &piled.llcs, &Limits(&BTreeMap::new()), &mut f);
        assert!(f.reasons.is_empty(), "{:?}", f.reasons);
    }

    #[test]
    fn an_unavailable_monitor_is_a_note_not_a_failure() {
        let r = MonitorReport {
            unavailable: Some("monitor unavailable: no BTF".into()),
            ..MonitorReport::default()
        };
        let f = judge(&r);
        assert!(f.reasons.is_empty());
        assert_eq!(f.notes, ["monitor unavailable: no BTF"]);
    }
}
