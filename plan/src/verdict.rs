//! The verdict of one run: the default checks (`checks/`) with layered
//! thresholds, then the script's claims.

use std::collections::BTreeMap;

use ktstr_topology::Topology;
use serde::{Deserialize, Serialize};

use crate::claims::{ClaimOutcome, ClaimVerdict};
use crate::plan::Plan;
use crate::results::RunResults;
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
    let found = crate::checks::default_checks(plan, topology, results, &thresholds);
    reasons.extend(found.reasons);
    let notes = found.notes;
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
