//! Cpuset isolation: every worker stays on the CPUs its cgroup's cpuset
//! allows, judged against the cpuset in force at each moment.
//!
//! The cpusets over time are replayed on the host: the plan's cgroups,
//! then each round of step ops the agent applied, at the times it
//! reported. After a change, workers have `isolation_grace_ms` (counted
//! from when the last op of the round was written) to move. Workers
//! record where they ran as CPU spans no longer than
//! [`crate::results::MAX_CPU_SPAN_MS`], so checking each span's two ends
//! sees a worker at least that often. A cgroup whose cpuset never
//! changes is checked on every CPU its workers were seen on.

use std::collections::BTreeMap;

use ktstr_topology::{cpulist, Topology};

use super::{Findings, Limits};
use crate::cgroup::CgroupDef;
use crate::plan::Plan;
use crate::results::{RunResults, WorkerReport};
use crate::steps::Op;

/// The cpuset of one cgroup from a moment on.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    /// From when, ms since the run started.
    from_ms: f64,
    /// Until when workers may still be outside it, ms.
    grace_until_ms: f64,
    /// The CPUs allowed (None: all).
    allowed: Option<Vec<u32>>,
    /// What put it in force, for the message.
    since: String,
}

/// The cgroups' own cpusets as the ops change them, and where each
/// cgroup's workers live after `move_tasks`.
struct Replay<'a> {
    topology: &'a Topology,
    parents: BTreeMap<String, Option<String>>,
    own: BTreeMap<String, Option<Vec<u32>>>,
    /// Worker label (the cgroup they were started in) → cgroup now.
    lives_in: BTreeMap<String, String>,
}

impl<'a> Replay<'a> {
    fn new(plan: &Plan, topology: &'a Topology) -> Self {
        let mut r = Replay {
            topology,
            parents: BTreeMap::new(),
            own: BTreeMap::new(),
            lives_in: BTreeMap::new(),
        };
        for def in &plan.cgroups {
            r.add(def);
        }
        r
    }

    fn add(&mut self, def: &CgroupDef) {
        let cpus = def
            .cpuset
            .as_ref()
            .and_then(|s| s.resolve(self.topology).ok());
        self.parents.insert(def.name.clone(), def.parent.clone());
        self.own.insert(def.name.clone(), cpus);
        self.lives_in.insert(def.name.clone(), def.name.clone());
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::AddCgroup { cgroup } => self.add(cgroup),
            Op::SetCpuset { name, cpuset } => {
                let cpus = cpuset.resolve(self.topology).ok();
                self.own.insert(name.clone(), cpus);
            }
            Op::ClearCpuset { name } => {
                self.own.insert(name.clone(), None);
            }
            Op::SwapCpusets { a, b } => {
                let x = self.own.get(a).cloned().flatten();
                let y = self.own.get(b).cloned().flatten();
                self.own.insert(a.clone(), y);
                self.own.insert(b.clone(), x);
            }
            Op::MoveTasks { from, to } => {
                for home in self.lives_in.values_mut() {
                    if home == from {
                        *home = to.clone();
                    }
                }
            }
            _ => {}
        }
    }

    /// The CPUs cgroup `name` may use: its own cpuset within its
    /// parent's (cgroup v2 falls back to the parent's when they do not
    /// meet), depth-bounded against cycles.
    fn effective(&self, name: &str, depth: usize) -> Option<Vec<u32>> {
        let parent = self
            .parents
            .get(name)
            .cloned()
            .flatten()
            .filter(|_| depth < 64)
            .and_then(|p| self.effective(&p, depth + 1));
        let own = self.own.get(name).cloned().flatten();
        match (own, parent) {
            (Some(o), Some(p)) => {
                let both: Vec<u32> = o.iter().copied().filter(|c| p.contains(c)).collect();
                Some(if both.is_empty() { p } else { both })
            }
            (o, p) => o.or(p),
        }
    }

    /// The CPUs the workers started in `label` may use now.
    fn allowed(&self, label: &str) -> Option<Vec<u32>> {
        let home = self.lives_in.get(label).map_or(label, String::as_str);
        self.effective(home, 0)
    }
}

/// Each cgroup's cpuset segments over the run.
fn timelines(
    plan: &Plan,
    topology: &Topology,
    results: &RunResults,
    grace_ms: f64,
) -> BTreeMap<String, Vec<Segment>> {
    let mut replay = Replay::new(plan, topology);
    let mut lines: BTreeMap<String, Vec<Segment>> = BTreeMap::new();
    let note = |lines: &mut BTreeMap<String, Vec<Segment>>,
                replay: &Replay,
                from_ms: f64,
                grace_until_ms: f64,
                since: &str| {
        for label in results.cgroups.keys() {
            let allowed = replay.allowed(label);
            let line = lines.entry(label.clone()).or_default();
            if line.last().is_none_or(|s| s.allowed != allowed) {
                line.push(Segment {
                    from_ms,
                    grace_until_ms,
                    allowed,
                    since: since.to_string(),
                });
            }
        }
    };
    note(&mut lines, &replay, 0.0, 0.0, "from the start");
    for applied in &results.ops_applied {
        let Some(step) = plan.steps.get(applied.step as usize) else {
            break;
        };
        for op in &step.ops {
            replay.apply(op);
        }
        let since = format!(
            "since step {} at {:.2} s",
            applied.step + 1,
            applied.started_ms / 1000.0
        );
        let grace_until = applied.done_ms + grace_ms;
        note(&mut lines, &replay, applied.started_ms, grace_until, &since);
    }
    lines
}

/// Every cpuset in force for some workers at some time of the run.
pub(super) fn cpusets_in_force(
    plan: &Plan,
    topology: &Topology,
    results: &RunResults,
) -> Vec<Vec<u32>> {
    let mut all: Vec<Vec<u32>> = timelines(plan, topology, results, 0.0)
        .into_values()
        .flatten()
        .filter_map(|s| s.allowed)
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The first time worker `w` was seen outside the cpuset in force, as a
/// message, if it was.
fn outside(w: &WorkerReport, line: &[Segment], grace_ms: f64) -> Option<String> {
    if let [only] = line {
        let allowed = only.allowed.as_ref()?;
        let out: Vec<u32> = w
            .cpus_used
            .iter()
            .copied()
            .filter(|c| !allowed.contains(c))
            .collect();
        return (!out.is_empty()).then(|| {
            format!(
                "ran on CPU(s) {} outside its cpuset {}",
                cpulist::format(&out),
                cpulist::format(allowed)
            )
        });
    }
    for span in &w.cpu_spans {
        for t in [span.from_ms, span.to_ms] {
            let i = line.partition_point(|s| s.from_ms <= t);
            let Some(seg) = i.checked_sub(1).and_then(|i| line.get(i)) else {
                continue;
            };
            let Some(allowed) = &seg.allowed else {
                continue;
            };
            if t >= seg.grace_until_ms && !allowed.contains(&span.cpu) {
                return Some(format!(
                    "ran on CPU {} at {:.2} s, outside its cpuset {} ({}, grace {grace_ms:.0} ms)",
                    span.cpu,
                    t / 1000.0,
                    cpulist::format(allowed),
                    seg.since
                ));
            }
        }
    }
    None
}

/// Isolation of every cgroup's workers.
pub(super) fn check(
    plan: &Plan,
    topology: &Topology,
    results: &RunResults,
    limits: &Limits,
    f: &mut Findings,
) {
    let grace_ms = limits.get("isolation_grace_ms");
    let lines = timelines(plan, topology, results, grace_ms);
    for (name, cg) in &results.cgroups {
        let Some(line) = lines.get(name) else {
            continue;
        };
        for (i, w) in cg.workers.iter().enumerate() {
            if let Some(why) = outside(w, line, grace_ms) {
                f.reasons.push(format!("worker {name}[{i}] {why}"));
            }
            if line.len() > 1 && w.cpu_spans_truncated {
                let last = w.cpu_spans.last().map_or(0.0, |s| s.to_ms);
                f.notes.push(format!(
                    "worker {name}[{i}]: isolation judged up to {:.1} s only (too many CPU \
                     spans to keep)",
                    last / 1000.0
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CgroupResults, CpuSpan, OpsApplied};

    /// Two cgroups on the two LLCs of 1n2l2c1t that swap cpusets at 5 s.
    fn plan() -> Plan {
        let cg = |name: &str, llc: u32| {
            serde_json::json!({"name": name, "parent": null, "workers": 1,
                "work": {"type": "spin_wait"}, "cpuset": {"kind": "llc", "index": llc},
                "nice": 0, "policy": {"policy": "normal"}, "affinity": {"affinity": "inherit"},
                "comm": null, "at": {"line": 1, "col": 1}})
        };
        serde_json::from_value(serde_json::json!({
            "engine_version": "0", "source": "t.rhai", "name": "t", "description": "t",
            "duration_s": 10.0, "topology": {"kind": "fixed", "topology": {"numa_nodes": 1, "llcs": 2,
                "cores_per_llc": 2, "threads_per_core": 1}},
            "scheduler": null, "thresholds": {}, "kernel": {"min_version": null, "config": []},
            "cgroups": [cg("a", 0), cg("b", 1)],
            "steps": [{"ops": [], "hold": {"hold": "fixed", "secs": 5.0}, "at": {"line": 2, "col": 1}},
                      {"ops": [{"op": "swap_cpusets", "a": "a", "b": "b"}],
                       "hold": {"hold": "fixed", "secs": 5.0}, "at": {"line": 3, "col": 1}}],
            "claims": []
        }))
        .expect("the test plan parses")
    }

    fn span(cpu: u32, from_s: f64, to_s: f64) -> CpuSpan {
        CpuSpan {
            cpu,
            node: 0,
            from_ms: from_s * 1000.0,
            to_ms: to_s * 1000.0,
        }
    }

    fn results(a_spans: Vec<CpuSpan>) -> RunResults {
        let w = |spans: Vec<CpuSpan>| WorkerReport {
            cpus_used: spans.iter().map(|s| s.cpu).collect(),
            cpu_spans: spans,
            iterations: 10,
            ..Default::default()
        };
        let mut r = RunResults::default();
        r.cgroups.insert(
            "a".into(),
            CgroupResults {
                workers: vec![w(a_spans)],
            },
        );
        r.cgroups.insert(
            "b".into(),
            CgroupResults {
                workers: vec![w(vec![span(2, 0.0, 0.2), span(0, 5.7, 5.9)])],
            },
        );
        r.ops_applied = vec![
            OpsApplied {
                step: 0,
                started_ms: 0.0,
                done_ms: 0.0,
            },
            OpsApplied {
                step: 1,
                started_ms: 5000.0,
                done_ms: 5010.0,
            },
        ];
        r
    }

    fn judge(r: &RunResults) -> Findings {
        let t: Topology = "1n2l2c1t".parse().unwrap();
        let th = BTreeMap::from([("isolation_grace_ms".to_string(), 500.0)]);
        let mut f = Findings::default();
        check(&plan(), &t, r, &Limits(&th), &mut f);
        f
    }

    #[test]
    fn a_worker_that_moves_within_the_grace_passes() {
        // a: LLC 0 (CPUs 0-1) until 5 s, LLC 1 (CPUs 2-3) after; it is
        // still on CPU 1 at 5.3 s (within the grace) and on CPU 3 at 5.6.
        let r = results(vec![
            span(1, 0.0, 0.25),
            span(1, 5.1, 5.3),
            span(3, 5.6, 9.0),
        ]);
        let f = judge(&r);
        assert!(f.reasons.is_empty(), "{:?}", f.reasons);
    }

    #[test]
    fn a_worker_left_behind_after_a_swap_fails_naming_the_step() {
        let r = results(vec![span(1, 0.0, 0.25), span(1, 5.6, 5.8)]);
        let f = judge(&r);
        assert_eq!(
            f.reasons,
            [
                "worker a[0] ran on CPU 1 at 5.60 s, outside its cpuset 2-3 \
              (since step 2 at 5.00 s, grace 500 ms)"
            ]
        );
        // Before the swap, CPU 3 was not a's.
        let f = judge(&results(vec![span(3, 1.0, 1.1)]));
        assert!(
            f.reasons[0].contains("CPU 3 at 1.00 s, outside its cpuset 0-1 (from the start"),
            "{:?}",
            f.reasons
        );
    }

    #[test]
    fn moved_tasks_follow_their_new_cgroups_cpuset() {
        let mut p = plan();
        p.steps[1].ops = vec![Op::MoveTasks {
            from: "a".into(),
            to: "b".into(),
        }];
        let t: Topology = "1n2l2c1t".parse().unwrap();
        let mut r = results(vec![span(0, 0.0, 0.2), span(2, 6.0, 6.2)]);
        r.cgroups.remove("b");
        let th = BTreeMap::from([("isolation_grace_ms".to_string(), 500.0)]);
        let mut f = Findings::default();
        check(&p, &t, &r, &Limits(&th), &mut f);
        assert!(f.reasons.is_empty(), "{:?}", f.reasons);
    }
}
