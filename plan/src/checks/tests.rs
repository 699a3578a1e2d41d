//! Each default check passes on fair telemetry and trips on telemetry
//! built to break it.

use std::collections::BTreeMap;

use ktstr_topology::Topology;

use super::*;
use crate::results::{CgroupResults, CpuSpan, WorkerReport};
use crate::thresholds::{in_force, Layers, Speed};

/// A plan with cgroup `a` of `n` spinners and no cpuset.
fn plan(n: u32) -> Plan {
    serde_json::from_value(serde_json::json!({
        "engine_version": "0", "source": "t.rhai", "name": "t", "description": "t",
        "duration_s": 10.0, "topology": {"kind": "fixed", "topology": {"numa_nodes": 2,
            "llcs": 2, "cores_per_llc": 2, "threads_per_core": 1}},
        "scheduler": null, "thresholds": {}, "kernel": {"min_version": null, "config": []},
        "cgroups": [{"name": "a", "parent": null, "workers": n, "work": {"type": "spin_wait"},
                     "cpuset": null, "nice": 0, "policy": {"policy": "normal"},
                     "affinity": {"affinity": "inherit"}, "comm": null,
                     "at": {"line": 3, "col": 1}}],
        "steps": [], "claims": []
    }))
    .expect("the test plan parses")
}

/// A spinner with `cpu` ms of CPU in its 10 s, iterating in proportion,
/// woken 1,000 times (p50 100 µs, p99 1 ms), always on CPU 0 (node 0).
fn worker(cpu: f64) -> WorkerReport {
    WorkerReport {
        iterations: (cpu * 100.0) as u64,
        cpu_time_ms: cpu,
        run_delay_ms: 10_000.0 - cpu,
        wall_ms: 10_000.0,
        cpus_used: vec![0],
        cpu_spans: vec![CpuSpan {
            cpu: 0,
            node: 0,
            from_ms: 0.0,
            to_ms: 10_000.0,
        }],
        max_gap_ms: 10.0,
        wake_samples: 1_000,
        wake_p50_us: 100.0,
        wake_p99_us: 1_000.0,
        migrations: 10,
        ..Default::default()
    }
}

fn judge(plan: &Plan, workers: Vec<WorkerReport>) -> Findings {
    let mut r = RunResults::default();
    r.cgroups.insert("a".into(), CgroupResults { workers });
    let t: Topology = "2n2l2c1t".parse().unwrap();
    // NUMA locality is off by default; these tests judge it at 60 %.
    let numa = [("min_numa_local_pct".to_string(), 60.0)];
    let layers = Layers {
        command_line: &numa,
        ..Layers::default()
    };
    let th: BTreeMap<String, f64> = in_force(&layers, Speed::Hardware);
    default_checks(plan, &t, &r, &th)
}

/// Changes fair telemetry to break one check.
type Spoil = Box<dyn Fn(&mut Vec<WorkerReport>)>;

fn fails_with(f: &Findings, want: &str) -> bool {
    f.reasons.iter().any(|r| r.contains(want))
}

#[test]
fn a_worker_at_half_its_share_fails_the_spread_at_any_count() {
    for n in [2u32, 4, 8, 16] {
        let fair = 2_000.0;
        let others = (f64::from(n) * fair - fair / 2.0) / f64::from(n - 1);
        let mut ws = vec![worker(others); n as usize - 1];
        ws.push(worker(fair / 2.0));
        let f = judge(&plan(n), ws);
        assert!(
            fails_with(&f, "unfair, CPU-time spread"),
            "{n}: {:?}",
            f.reasons
        );
        let f = judge(&plan(n), vec![worker(fair); n as usize]);
        assert!(f.reasons.is_empty(), "{n}: {:?}", f.reasons);
    }
}

#[test]
fn each_new_threshold_trips_on_its_own_input() {
    let p = plan(4);
    let fair = || vec![worker(2_000.0); 4];
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "throughput CV",
            // Same CPU time, one worker doing half the work per second.
            Box::new(|ws| ws[3].iterations /= 3),
        ),
        (
            "woke late: 99th-percentile",
            Box::new(|ws| ws[1].wake_p99_us = 80_000.0),
        ),
        (
            "restless",
            Box::new(|ws| ws.iter_mut().for_each(|w| w.migrations = w.iterations)),
        ),
        (
            "wandered across NUMA nodes",
            Box::new(|ws| {
                ws[2].cpu_spans = (0..40)
                    .map(|i| CpuSpan {
                        cpu: i % 4,
                        node: (i % 4) / 2,
                        from_ms: f64::from(i) * 250.0,
                        to_ms: f64::from(i) * 250.0 + 240.0,
                    })
                    .collect();
            }),
        ),
    ];
    assert!(judge(&p, fair()).reasons.is_empty());
    for (want, spoil) in cases {
        let mut ws = fair();
        spoil(&mut ws);
        let f = judge(&p, ws);
        assert!(fails_with(&f, want), "{want}: {:?}", f.reasons);
    }
    // Workers that wake from their own sleeps are compared by their median
    // wake latency; others (ping-pong pairs: the pair's placement decides)
    // are not.
    let mut sleepers = plan(4);
    sleepers.cgroups[0].work = Work::IdleChurn { sleep_us: 1000 };
    let mut ws = fair();
    ws[0].wake_p50_us = 5_000.0;
    assert!(fails_with(&judge(&sleepers, ws.clone()), "uneven wake-ups"));
    let mut pairs = plan(4);
    pairs.cgroups[0].work = Work::FutexPingPong;
    assert!(judge(&pairs, ws).reasons.is_empty());
    // One of 16 workers at 70 % of the others' rate: the CV (7 %) passes,
    // the slowest rate (71 % of the mean) does not.
    let mut ws = vec![worker(2_000.0); 16];
    ws[0].iterations = ws[0].iterations * 7 / 10;
    let f = judge(&plan(16), ws);
    assert_eq!(f.reasons.len(), 1, "{:?}", f.reasons);
    assert!(
        fails_with(&f, "a worker fell behind, slowest work rate 71"),
        "{:?}",
        f.reasons
    );
}

#[test]
fn too_few_samples_are_not_judged() {
    let mut ws = vec![worker(2_000.0); 2];
    for w in &mut ws {
        w.wake_samples = 10;
        w.wake_p99_us = 1e9;
        w.iterations = 100;
        w.migrations = 100;
    }
    ws[0].wake_p50_us = 1e6;
    let f = judge(&plan(2), ws);
    assert!(f.reasons.is_empty(), "{:?}", f.reasons);
}

#[test]
fn work_that_moves_itself_is_not_judged_on_migrations() {
    let mut p = plan(2);
    p.cgroups[0].work = Work::AffinityChurn;
    let mut ws = vec![worker(2_000.0); 2];
    for w in &mut ws {
        w.migrations = w.iterations;
    }
    let f = judge(&p, ws.clone());
    assert!(f.reasons.is_empty(), "{:?}", f.reasons);
    assert!(
        f.notes.iter().any(|n| n.contains("moves itself by design")),
        "{:?}",
        f.notes
    );
    assert!(fails_with(&judge(&plan(2), ws), "restless"));
}

#[test]
fn work_that_yields_or_blocks_is_not_judged_on_fairness() {
    // Yielders and workers with helper threads do not ask for equal CPU
    // time: six yielders on two CPUs got 666 to 965 ms under EEVDF.
    for work in [Work::YieldHeavy, Work::SignalStorm] {
        let mut p = plan(4);
        p.cgroups[0].work = work;
        let mut ws = vec![worker(2_000.0); 4];
        ws[3].iterations /= 3;
        ws[3].cpu_time_ms /= 3.0;
        let f = judge(&p, ws);
        assert!(f.reasons.is_empty(), "{:?}", f.reasons);
        assert!(
            f.notes.iter().any(|n| n.contains("fairness not judged")),
            "{:?}",
            f.notes
        );
    }
}

/// A monitor record of 2n2l2c1t: CPU 0 holds 6 runnable tasks, CPU 1
/// none, for 3 s.
fn piled_up() -> crate::monitor::MonitorReport {
    use crate::monitor::{CpuSample, MonitorReport, MonitorSample};
    let cpu = |nr: u32, clock: u64| CpuSample {
        nr_running: nr,
        scx_nr_running: None,
        local_dsq: None,
        clock_ns: clock,
        curr_pid: 1,
        curr_comm: "w".into(),
    };
    MonitorReport {
        period_ms: 100,
        samples: (0..30)
            .map(|i| MonitorSample {
                at_ms: i * 100,
                cpus: vec![cpu(6, i as u64), cpu(0, i as u64), cpu(1, 1), cpu(1, 2)],
            })
            .collect(),
        llcs: vec![vec![0, 1], vec![2, 3]],
        workers_ms: Some(3000),
        ..MonitorReport::default()
    }
}

fn judge_monitor(plan: &Plan) -> Findings {
    let mut r = RunResults::default();
    r.cgroups.insert(
        "a".into(),
        CgroupResults {
            workers: vec![worker(10_000.0)],
        },
    );
    r.monitor = Some(piled_up());
    let t: Topology = "2n2l2c1t".parse().unwrap();
    let on = [("max_rq_imbalance".to_string(), 4.0)];
    let layers = Layers {
        command_line: &on,
        ..Layers::default()
    };
    let th: BTreeMap<String, f64> = in_force(&layers, Speed::Hardware);
    default_checks(plan, &t, &r, &th)
}

#[test]
fn imbalance_is_judged_only_where_the_scheduler_alone_places_tasks() {
    // Free to go anywhere: six on one CPU, none on its sibling fails.
    let free = plan(1);
    let f = judge_monitor(&free);
    assert!(
        fails_with(&f, "imbalanced within the LLC of CPUs [0, 1]"),
        "{:?}",
        f.reasons
    );
    // A cpuset of whole LLCs leaves the balance within them to the
    // scheduler: still judged.
    let mut whole = plan(1);
    whole.cgroups[0].cpuset = Some(crate::cpuset::CpusetSpec::Exact { cpus: vec![0, 1] });
    assert!(fails_with(&judge_monitor(&whole), "imbalanced"));
    // A cpuset of one CPU of LLC 0: not judged there, and said so.
    let mut part = plan(1);
    part.cgroups[0].cpuset = Some(crate::cpuset::CpusetSpec::Exact { cpus: vec![0] });
    let f = judge_monitor(&part);
    assert!(!fails_with(&f, "imbalanced"), "{:?}", f.reasons);
    assert!(
        f.notes.iter().any(|n| n.contains("LLCs of CPUs [[0, 1]]")),
        "{:?}",
        f.notes
    );
    // Workers pinned by their affinity: not judged anywhere.
    let mut pinned = plan(1);
    pinned.cgroups[0].affinity = crate::policy::Affinity::SingleCpu;
    let f = judge_monitor(&pinned);
    assert!(!fails_with(&f, "imbalanced"), "{:?}", f.reasons);
    assert!(
        f.notes.iter().any(|n| n.contains("pinned")),
        "{:?}",
        f.notes
    );
}

#[test]
fn a_worker_stopped_as_its_loop_began_is_not_starved_but_one_without_cpu_is() {
    let p = plan(2);
    let mut late = worker(10_000.0);
    // Stopped 0.6 ms into its loop after 631 ms of CPU starting up.
    late.iterations = 0;
    late.cpu_time_ms = 631.0;
    late.wall_ms = 0.6;
    late.progress.clear();
    let f = judge(&p, vec![worker(10_000.0), late.clone()]);
    assert!(!fails_with(&f, "starved"), "{:?}", f.reasons);
    assert!(
        f.notes.iter().any(|n| n.contains("not starved")),
        "{:?}",
        f.notes
    );
    // No CPU at all, or a loop that ran a second without progress: starved.
    for (cpu, wall) in [(2.0, 0.6), (631.0, 1000.0)] {
        let mut starved = late.clone();
        starved.cpu_time_ms = cpu;
        starved.wall_ms = wall;
        let f = judge(&p, vec![worker(10_000.0), starved]);
        assert!(
            fails_with(&f, "a[1] starved"),
            "{cpu} {wall}: {:?}",
            f.reasons
        );
    }
}
