//! `ktstr run`: real scenarios in real VMs (QEMU TCG), judged on what the
//! guest's workers really did.

mod common;

use common::{run, stderr, stdout, VmEnv};
use serde_json::Value;

/// `ktstr run ARGS --backend qemu-tcg` with runs written to a private dir;
/// returns (exit code, stdout, the sidecar).
fn ktstr_run(env: &VmEnv, args: &[&str]) -> (Option<i32>, String, Option<Value>) {
    let runs = env.cache.path().join("runs");
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--backend", "qemu-tcg"]);
    let o = run(env.ktstr(&full).env("KTSTR_RUNS_DIR", &runs));
    let out = stdout(&o);
    let sidecar = walk_json(&runs);
    env.assert_no_leftovers();
    (o.status.code(), format!("{out}{}", stderr(&o)), sidecar)
}

fn walk_json(dir: &std::path::Path) -> Option<Value> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.is_dir() {
            if let Some(v) = walk_json(&p) {
                return Some(v);
            }
        } else if p.extension().is_some_and(|x| x == "json") {
            return serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok();
        }
    }
    None
}

#[test]
fn two_cgroups_pass_under_eevdf_with_real_telemetry() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, sidecar) = ktstr_run(
        &env,
        &["scenarios/basic/two_cgroups.rhai", "--duration", "5"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("PASS ["), "{out}");
    assert!(out.contains("] two_cgroups 1n1l2c1t eevdf"), "{out}");
    let s = sidecar.expect("sidecar");
    assert_eq!(s["verdict"]["outcome"], "pass");
    assert_eq!(s["backend"], "qemu-tcg");
    let workers = s["telemetry"]["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 4);
    for w in workers {
        assert!(w["iterations"].as_u64().unwrap() > 1000, "{w}");
        assert!(w["cpu_time_ms"].as_f64().unwrap() > 500.0, "{w}");
        assert!(w["error"].is_null());
    }
    assert_eq!(s["verdict"]["claims"].as_array().unwrap().len(), 4);
}

#[test]
fn two_cgroups_pass_under_scx_simple() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, sidecar) = ktstr_run(
        &env,
        &[
            "scenarios/basic/two_cgroups.rhai",
            "--duration",
            "5",
            "--scheduler",
            "scx_simple",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("two_cgroups 1n1l2c1t scx_simple"), "{out}");
    let s = sidecar.expect("sidecar");
    assert_eq!(s["telemetry"]["scheduler"][0][0], "attached");
}

#[test]
fn qmap_stalls_are_caught_with_the_watchdogs_reason() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, _) = ktstr_run(&env, &["examples/qmap_stall.rhai", "--duration", "8"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("FAIL ["), "{out}");
    assert!(out.contains("runnable task stall"), "{out}");
}

#[test]
fn qmap_error_injection_is_scheduler_death_with_its_message() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, _) = ktstr_run(
        &env,
        &[
            "scenarios/basic/two_cgroups.rhai",
            "--duration",
            "6",
            "--scheduler",
            "scx_qmap",
            "--sched-arg=-e",
            "--sched-arg=500",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("scheduler exited"), "{out}");
    assert!(out.contains("scx_bpf_error"), "{out}");
    assert!(out.contains("test triggering error"), "{out}");
}

#[test]
fn a_cpuset_split_passes_and_a_wrong_claim_fails() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, s) = ktstr_run(
        &env,
        &["scenarios/cpuset/split_halves.rhai", "--duration", "5"],
    );
    assert_eq!(code, Some(0), "{out}");
    let s = s.unwrap();
    for w in s["telemetry"]["workers"].as_array().unwrap() {
        let cpus: Vec<u64> = w["cpus_used"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect();
        let half = if w["cgroup"] == "left" {
            [0, 1]
        } else {
            [2, 3]
        };
        assert!(cpus.iter().all(|c| half.contains(c)), "{w}");
    }
    let (code, out, _) = ktstr_run(&env, &["tests/scenarios/wrong_cpuset_claim.rhai"]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("claim failed: r.cgroup(\"left\").iterations, at_most(0)"),
        "{out}"
    );
}

#[test]
fn a_missing_scheduler_fails_before_boot() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, _) = ktstr_run(
        &env,
        &[
            "scenarios/basic/two_cgroups.rhai",
            "--scheduler",
            "scx_nonexistent",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("scheduler `scx_nonexistent` not found"),
        "{out}"
    );
}
