//! The verdict of one run: default checks (starvation, cpuset isolation,
//! fairness) with layered thresholds, then the script's claims.

use std::collections::BTreeMap;

use ktstr_topology::Topology;
use serde::{Deserialize, Serialize};

use crate::claims::{ClaimOutcome, ClaimVerdict, MetricExpr, Scope};
use crate::plan::Plan;
use crate::results::RunResults;
use crate::steps::Op;
use crate::thresholds::check_threshold;

/// How a run came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The host cannot give the topology.
    Skip,
    /// Everything held.
    Pass,
    /// A claim could not be evaluated.
    Inconclusive,
    /// Something failed.
    Fail,
}

impl Outcome {
    /// The process exit code: Fail 1, Inconclusive 2, Pass and Skip 0.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Fail => 1,
            Outcome::Inconclusive => 2,
            Outcome::Pass | Outcome::Skip => 0,
        }
    }

    /// Upper-case label for the one-line summary.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Skip => "SKIP",
            Outcome::Pass => "PASS",
            Outcome::Inconclusive => "INCONCLUSIVE",
            Outcome::Fail => "FAIL",
        }
    }
}

/// The judgement of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The outcome.
    pub outcome: Outcome,
    /// Why it failed (or was inconclusive), one line each.
    pub reasons: Vec<String>,
    /// The thresholds used, after layering.
    pub thresholds: BTreeMap<String, f64>,
    /// Each claim's outcome.
    pub claims: Vec<ClaimOutcome>,
    /// Default checks that were not judged, and why (too little data to
    /// tell a real difference from noise), one line each.
    #[serde(default)]
    pub notes: Vec<String>,
}

/// The mean CPU time per worker, in ms, below which a cgroup's CPU-time
/// spread is not judged: with time slices of 3-20 ms and workers that
/// start a few ms apart, a shorter run's spread is mostly quantisation
/// (a run the host stopped after 0.3 s showed 20%).
pub const MIN_FAIRNESS_CPU_MS: f64 = 250.0;

/// How much longer than the shortest-lived worker of a cgroup the longest
/// may have run for their CPU-time shares to be compared (workers spawned
/// mid-run had less time, not a smaller share).
pub const MAX_LIFE_DIFFERENCE: f64 = 0.10;

/// The least share of their lives a cgroup's workers must have wanted a
/// CPU (on one, or runnable and waiting: CPU time plus run delay over wall
/// time, averaged) for their CPU-time shares to be compared. Workers that
/// sleep by design (pipe or futex ping-pong, bursts) do not ask for equal
/// CPU time: a pipe pair under emulation used it 59/41 with every wake-up
/// on time.
pub const MIN_CPU_DEMAND: f64 = 0.9;

/// The verdict of a negative test (`expect_fail`, or a gauntlet cell that
/// expects failure): a failure is what was wanted and passes, with the
/// failure's reasons kept; a pass fails. Skip and Inconclusive stay.
pub fn expecting_failure(mut v: Verdict, reason: &str) -> Verdict {
    match v.outcome {
        Outcome::Fail => {
            v.outcome = Outcome::Pass;
            let how = v.reasons.join("; ");
            v.reasons = vec![format!("failed as expected ({reason}): {how}")];
        }
        Outcome::Pass => {
            v.outcome = Outcome::Fail;
            v.reasons = vec![format!("expected to fail ({reason}), but it passed")];
        }
        Outcome::Skip | Outcome::Inconclusive => {}
    }
    v
}

/// Judges `results` of `plan` run on `topology` with `thresholds`;
/// `failures` are problems found outside the results (scheduler death,
/// VM errors) and fail the run.
pub fn judge(
    plan: &Plan,
    topology: &Topology,
    results: &RunResults,
    thresholds: BTreeMap<String, f64>,
    failures: Vec<String>,
) -> Verdict {
    let mut reasons = failures;
    for (k, v) in &thresholds {
        if let Err(why) = check_threshold(k, *v) {
            reasons.push(why);
        }
    }
    let (found, notes) = default_checks(plan, topology, results, &thresholds);
    reasons.extend(found);
    let claims: Vec<ClaimOutcome> = plan.claims.iter().map(|c| c.evaluate(results)).collect();
    for c in &claims {
        if c.verdict == ClaimVerdict::Fail {
            reasons.push(format!("claim failed: {} ({})", c.label, c.detail));
        }
    }
    let inconclusive: Vec<String> = claims
        .iter()
        .filter(|c| c.verdict == ClaimVerdict::Inconclusive)
        .map(|c| format!("claim inconclusive: {} ({})", c.label, c.detail))
        .collect();
    let outcome = if !reasons.is_empty() {
        Outcome::Fail
    } else if !inconclusive.is_empty() {
        reasons = inconclusive;
        Outcome::Inconclusive
    } else {
        Outcome::Pass
    };
    Verdict {
        outcome,
        reasons,
        thresholds,
        claims,
        notes,
    }
}

/// Starvation, stalls, worker errors, cpuset isolation and fairness: the
/// reasons to fail, and notes on checks that were not judged.
fn default_checks(
    plan: &Plan,
    topology: &Topology,
    results: &RunResults,
    thresholds: &BTreeMap<String, f64>,
) -> (Vec<String>, Vec<String>) {
    let mut reasons = Vec::new();
    let mut notes = Vec::new();
    let max_gap = thresholds.get("max_gap_ms").copied().unwrap_or(f64::MAX);
    let max_spread = thresholds
        .get("max_spread_pct")
        .copied()
        .unwrap_or(f64::MAX);
    let dynamic = cpusets_changed(plan);
    for (name, cg) in &results.cgroups {
        for (i, w) in cg.workers.iter().enumerate() {
            if let Some(e) = &w.error {
                reasons.push(format!("worker {name}[{i}] failed: {e}"));
            } else if w.iterations == 0 {
                reasons.push(format!("worker {name}[{i}] starved: no progress at all"));
            } else if w.max_gap_ms > max_gap {
                reasons.push(format!(
                    "worker {name}[{i}] stalled {:.0} ms (threshold {max_gap:.0} ms)",
                    w.max_gap_ms
                ));
            }
        }
        if !dynamic.contains(name) {
            if let Some(allowed) = static_cpuset(plan, name, topology) {
                for (i, w) in cg.workers.iter().enumerate() {
                    let outside: Vec<u32> = w
                        .cpus_used
                        .iter()
                        .copied()
                        .filter(|c| !allowed.contains(c))
                        .collect();
                    if !outside.is_empty() {
                        reasons.push(format!(
                            "worker {name}[{i}] ran on CPU(s) {outside:?} outside its cpuset"
                        ));
                    }
                }
            }
        }
        if let Some(check) = fairness(name, &cg.workers, results, max_spread) {
            match check {
                Ok(reason) => reasons.extend(reason),
                Err(note) => notes.push(note),
            }
        }
    }
    (reasons, notes)
}

/// The CPU-time spread check of cgroup `name`: `None` with fewer than two
/// workers, `Ok(reason to fail)` when judged, `Err(note)` when the
/// workers had too little CPU time to judge.
fn fairness(
    name: &str,
    workers: &[crate::results::WorkerReport],
    results: &RunResults,
    max_spread: f64,
) -> Option<Result<Option<String>, String>> {
    if workers.len() < 2 {
        return None;
    }
    let (shortest, longest) = workers.iter().fold((f64::MAX, 0.0_f64), |(lo, hi), w| {
        (lo.min(w.wall_ms), hi.max(w.wall_ms))
    });
    if longest > shortest * (1.0 + MAX_LIFE_DIFFERENCE) {
        return Some(Err(format!(
            "cgroup {name}: fairness not judged, its workers ran {shortest:.0} to \
             {longest:.0} ms (spawned or ended at different times)"
        )));
    }
    let mean = workers.iter().map(|w| w.cpu_time_ms).sum::<f64>() / workers.len() as f64;
    if mean < MIN_FAIRNESS_CPU_MS {
        return Some(Err(format!(
            "cgroup {name}: fairness not judged, {mean:.0} ms of CPU time per worker \
             (at least {MIN_FAIRNESS_CPU_MS:.0} ms needed)"
        )));
    }
    let demand = workers
        .iter()
        .map(|w| (w.cpu_time_ms + w.run_delay_ms) / w.wall_ms.max(1.0))
        .sum::<f64>()
        / workers.len() as f64;
    if demand < MIN_CPU_DEMAND {
        return Some(Err(format!(
            "cgroup {name}: fairness not judged, its workers sleep by design (they wanted a \
             CPU {:.0} % of the time, at least {:.0} % needed)",
            demand * 100.0,
            MIN_CPU_DEMAND * 100.0
        )));
    }
    let spread_expr = MetricExpr::Metric {
        scope: Scope::Cgroup {
            name: name.to_string(),
        },
        name: "spread".into(),
    };
    let spread = spread_expr.eval(results).ok()?;
    Some(Ok((spread > max_spread).then(|| {
        format!("cgroup {name}: unfair, CPU-time spread {spread:.1}% (threshold {max_spread:.0}%)")
    })))
}

/// Cgroups whose cpuset or membership changes during the run (isolation
/// is then judged by claims, not by the static check).
fn cpusets_changed(plan: &Plan) -> Vec<String> {
    let mut v = Vec::new();
    for s in &plan.steps {
        for op in &s.ops {
            match op {
                Op::SetCpuset { name, .. } | Op::ClearCpuset { name } => v.push(name.clone()),
                Op::SwapCpusets { a, b } | Op::MoveTasks { from: a, to: b } => {
                    v.push(a.clone());
                    v.push(b.clone());
                }
                _ => {}
            }
        }
    }
    v
}

/// The CPUs a cgroup with a fixed cpuset may use (its own or its
/// nearest ancestor's), or None if unrestricted.
fn static_cpuset(plan: &Plan, name: &str, t: &Topology) -> Option<Vec<u32>> {
    let mut defs = plan.cgroups.clone();
    for s in &plan.steps {
        for op in &s.ops {
            if let Op::AddCgroup { cgroup } = op {
                defs.push(cgroup.clone());
            }
        }
    }
    let mut cur = defs.iter().find(|d| d.name == name)?;
    loop {
        if let Some(spec) = &cur.cpuset {
            return spec.resolve(t).ok();
        }
        let parent = cur.parent.as_ref()?;
        cur = defs.iter().find(|d| &d.name == parent)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{CgroupResults, WorkerReport};
    use crate::thresholds::{in_force, Layers, Speed};

    /// Two workers of `a` confined to LLC 0 of 1n2l2c1t, claiming
    /// progress.
    fn plan() -> Plan {
        serde_json::from_value(serde_json::json!({
            "engine_version": "0", "source": "t.rhai", "name": "t", "description": "t",
            "duration_s": 10.0, "topology": {"kind": "fixed", "topology": {"numa_nodes": 1, "llcs": 2, "cores_per_llc": 2, "threads_per_core": 1}},
            "scheduler": null, "thresholds": {}, "kernel": {"min_version": null, "config": []},
            "cgroups": [{"name": "a", "parent": null, "workers": 2, "work": {"type": "spin_wait"},
                         "cpuset": {"kind": "llc", "index": 0}, "nice": 0,
                         "policy": {"policy": "normal"}, "affinity": {"affinity": "inherit"},
                         "comm": null, "at": {"line": 3, "col": 1}}],
            "steps": [],
            "claims": [{"label": "iterations", "at": {"line": 4, "col": 1},
                        "expr": {"expr": "metric", "scope": {"scope": "cgroup", "name": "a"},
                                 "name": "iterations"},
                        "predicate": {"test": "at_least", "limit": 10.0}}]
        }))
        .expect("the test plan parses")
    }

    /// A spinner: on a CPU for `cpu` ms of its 1,000, runnable the rest.
    fn worker(it: u64, gap: f64, cpu: f64, cpus: Vec<u32>) -> WorkerReport {
        WorkerReport {
            iterations: it,
            max_gap_ms: gap,
            cpu_time_ms: cpu,
            run_delay_ms: 1000.0 - cpu,
            wall_ms: 1000.0,
            cpus_used: cpus,
            ..Default::default()
        }
    }

    fn healthy() -> RunResults {
        let mut r = RunResults::default();
        let workers = vec![
            worker(100, 10.0, 500.0, vec![0]),
            worker(100, 10.0, 500.0, vec![1]),
        ];
        r.cgroups.insert("a".into(), CgroupResults { workers });
        r
    }

    #[test]
    fn healthy_results_pass_and_each_default_check_fails_alone() {
        let p = plan();
        let t: Topology = "1n2l2c1t".parse().unwrap();
        let scenario = p.thresholds.clone();
        let layers = Layers {
            scenario: Some(&scenario),
            ..Layers::default()
        };
        let th = in_force(&layers, Speed::Hardware);
        let r = healthy();
        assert_eq!(judge(&p, &t, &r, th.clone(), vec![]).outcome, Outcome::Pass);
        let cases: [(WorkerReport, &str); 3] = [
            (worker(0, 0.0, 50.0, vec![0]), "starved"),
            (worker(100, 5000.0, 50.0, vec![0]), "stalled 5000 ms"),
            (worker(100, 10.0, 50.0, vec![3]), "outside its cpuset"),
        ];
        for (bad, want) in cases {
            let mut r = r.clone();
            r.cgroups.get_mut("a").unwrap().workers[1] = bad;
            let v = judge(&p, &t, &r, th.clone(), vec![]);
            assert_eq!(v.outcome, Outcome::Fail);
            assert!(
                v.reasons.iter().any(|x| x.contains(want)),
                "{want}: {:?}",
                v.reasons
            );
        }
        let mut unfair = r.clone();
        unfair.cgroups.get_mut("a").unwrap().workers[1] = worker(100, 10.0, 100.0, vec![1]);
        let v = judge(&p, &t, &unfair, th.clone(), vec![]);
        assert!(
            v.reasons.iter().any(|x| x.contains("unfair")),
            "{:?}",
            v.reasons
        );
        // The same shares over too little CPU time are not judged, and the
        // verdict says so.
        for w in &mut unfair.cgroups.get_mut("a").unwrap().workers {
            w.cpu_time_ms /= 10.0;
        }
        let v = judge(&p, &t, &unfair, th.clone(), vec![]);
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        assert_eq!(
            v.notes,
            ["cgroup a: fairness not judged, 30 ms of CPU time per worker (at least 250 ms needed)"]
        );
        // Nor are the shares of workers that lived different spans.
        let mut late = r.clone();
        let w = &mut late.cgroups.get_mut("a").unwrap().workers[1];
        (w.wall_ms, w.cpu_time_ms) = (500.0, 100.0);
        let v = judge(&p, &t, &late, th.clone(), vec![]);
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        assert!(v.notes[0].contains("ran 500 to 1000 ms"), "{:?}", v.notes);
        // Nor are those of workers that sleep by design.
        let mut sleepers = r.clone();
        for (w, cpu) in sleepers
            .cgroups
            .get_mut("a")
            .unwrap()
            .workers
            .iter_mut()
            .zip([600.0, 300.0])
        {
            (w.cpu_time_ms, w.run_delay_ms) = (cpu, 20.0);
        }
        let v = judge(&p, &t, &sleepers, th.clone(), vec![]);
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        assert!(
            v.notes[0].contains("sleep by design (they wanted a CPU 47 %"),
            "{:?}",
            v.notes
        );
        let v = judge(&p, &t, &r, th, vec!["scheduler died".into()]);
        assert_eq!((v.outcome, v.outcome.exit_code()), (Outcome::Fail, 1));
        assert_eq!(Outcome::Inconclusive.exit_code(), 2);
    }

    #[test]
    fn a_negative_test_passes_only_by_failing() {
        let failed = Verdict {
            outcome: Outcome::Fail,
            reasons: vec!["scheduler exited: stall".into()],
            thresholds: BTreeMap::new(),
            claims: vec![],
            notes: vec![],
        };
        let v = expecting_failure(failed.clone(), "qmap stalls");
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(
            v.reasons,
            ["failed as expected (qmap stalls): scheduler exited: stall"]
        );
        let mut passed = failed;
        passed.outcome = Outcome::Pass;
        passed.reasons.clear();
        let v = expecting_failure(passed, "qmap stalls");
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.reasons, ["expected to fail (qmap stalls), but it passed"]);
    }

    #[test]
    fn an_unknown_or_unusable_threshold_fails_the_run() {
        let t: Topology = "1n2l2c1t".parse().unwrap();
        let mut th = in_force(&Layers::default(), Speed::Hardware);
        th.insert("max_gap_msx".into(), 1.0);
        th.insert("max_spread_pct".into(), f64::NAN);
        let v = judge(&plan(), &t, &healthy(), th, vec![]);
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v
            .reasons
            .iter()
            .any(|x| x.contains("unknown threshold `max_gap_msx`")));
        assert!(v
            .reasons
            .iter()
            .any(|x| x.contains("NaN is not a finite number")));
    }
}
