//! The verdict's newer inputs, read from real VMs: where workers ran over
//! time (judged against the cpusets in force after a swap), when the
//! agent applied each step, and files shipped into the guest for the
//! scheduler.

mod common;

use common::{run, stderr, stdout, VmEnv};
use ktstr_plan::verdict::Outcome;
use ktstr_run::Sidecar;

/// `ktstr run ARGS --backend qemu-tcg`: exit code, output, sidecars.
fn ktstr_run(env: &VmEnv, args: &[&str]) -> (Option<i32>, String, Vec<Sidecar>) {
    env.run_tcg(args)
}

#[test]
fn a_cpuset_swap_is_judged_against_the_cpusets_in_force_over_time() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, s) = ktstr_run(
        &env,
        &["scenarios/dynamic/swap_cpusets.rhai", "--duration", "6"],
    );
    assert_eq!(code, Some(0), "{out}");
    let s = &s[0];
    assert_eq!(s.verdict.outcome, Outcome::Pass, "{:?}", s.verdict);
    // The agent said when it applied both steps' ops, the second about
    // halfway through.
    let applied = &s.telemetry.ops_applied;
    assert_eq!(applied.len(), 2, "{applied:?}");
    assert_eq!((applied[0].step, applied[1].step), (0, 1));
    assert!(
        (2_000.0..4_500.0).contains(&applied[1].started_ms),
        "{applied:?}"
    );
    assert!(applied[1].done_ms >= applied[1].started_ms);
    // Every worker recorded where it ran, in spans of at most 250 ms, and
    // each spinner of `a` ran on LLC 0 (CPUs 0-1) before the swap and on
    // LLC 1 (CPUs 2-3) once the grace was over.
    let swap = applied[1].done_ms;
    let grace = s.verdict.thresholds["isolation_grace_ms"];
    for w in s.telemetry.workers.iter().filter(|w| w.cgroup == "a") {
        assert!(!w.cpu_spans.is_empty(), "{w:?}");
        for span in &w.cpu_spans {
            assert!(span.to_ms - span.from_ms <= 250.0 + 1e-6, "{span:?}");
            if span.to_ms < applied[1].started_ms {
                assert!(span.cpu < 2, "before the swap: {span:?}");
            } else if span.from_ms > swap + grace {
                assert!(span.cpu >= 2, "after the swap: {span:?}");
            }
        }
        assert!(w.cpu_spans.iter().any(|x| x.cpu >= 2), "{w:?}");
    }
}

#[test]
fn a_file_shipped_for_the_scheduler_is_in_the_guest_at_its_path() {
    let Some(env) = VmEnv::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("layers.json"), b"{\"layers\": []}\n").unwrap();
    let script = dir.path().join("shipped.rhai");
    std::fs::write(
        &script,
        "scenario(\"shipped\", \"a file for the scheduler\");\nduration(3);\n\
         topology(1, 1, 2, 1);\n\
         scheduler(\"scx_simple\", [guest_file(\"layers.json\")]);\n\
         cgroup(\"a\", 1, spin_wait());\n",
    )
    .unwrap();
    let (code, out, s) = ktstr_run(&env, &[script.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let s = &s[0];
    assert_eq!(
        s.plan.scheduler.as_ref().unwrap().args,
        ["/files/layers.json"]
    );
    assert!(
        s.telemetry
            .events
            .iter()
            .any(|e| e.message == "shipped files: /files/layers.json (15 bytes)"),
        "{:?}",
        s.telemetry.events
    );
    // --sched-file ships a file for a script that has none.
    let (code, out, s) = ktstr_run(
        &env,
        &[
            "scenarios/basic/single_spinner.rhai",
            "--duration",
            "2",
            "--scheduler",
            "scx_simple",
            "--sched-file",
            dir.path().join("layers.json").to_str().unwrap(),
            "--sched-arg",
            "/files/layers.json",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        s[0].telemetry
            .events
            .iter()
            .any(|e| e.message.starts_with("shipped files: /files/layers.json")),
        "{:?}",
        s[0].telemetry.events
    );
}

#[test]
fn a_missing_shipped_file_fails_before_boot_with_its_position() {
    let Some(env) = VmEnv::new() else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("missing.rhai");
    std::fs::write(
        &script,
        "scenario(\"missing\", \"no such file\");\n\
         scheduler(\"scx_simple\", [guest_file(\"nope.json\")]);\n\
         cgroup(\"a\", 1, spin_wait());\n",
    )
    .unwrap();
    let (code, out, s) = ktstr_run(&env, &[script.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("missing.rhai:2:26"), "{out}");
    assert!(
        out.contains("nope.json: No such file or directory"),
        "{out}"
    );
    assert!(s.is_empty(), "nothing booted");
    let (code, out, _) = ktstr_run(
        &env,
        &[
            "scenarios/basic/single_spinner.rhai",
            "--sched-file",
            "/nonexistent/cfg.json",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("--sched-file /nonexistent/cfg.json"), "{out}");
}

#[test]
fn work_that_places_itself_does_so_in_the_guest() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, s) = ktstr_run(&env, &["tests/scenarios/placement_work.rhai"]);
    assert_eq!(code, Some(0), "{out}");
    let s = &s[0];
    let w = |cg: &str| {
        s.telemetry
            .workers
            .iter()
            .find(|w| w.cgroup == cg)
            .unwrap_or_else(|| panic!("no {cg} worker: {:?}", s.telemetry.workers))
    };
    let c = |cg: &str, name: &str| w(cg).counters.get(name).copied().unwrap_or(0);
    // 2n2l2c2t: the spinner stays on one CPU of a core while its helper
    // runs on that core's other thread.
    let (core, sib) = (c("smt", "core_cpu") as u32, c("smt", "sibling_cpu") as u32);
    assert_ne!(core, sib);
    // (It starts wherever the agent spawned it, then pins itself.)
    let spans = &w("smt").cpu_spans;
    assert!(spans.iter().skip(1).all(|s| s.cpu == core), "{spans:?}");
    assert_eq!(c("smt", "sibling_seen_on") as u32, sib);
    assert_eq!(core / 2, sib / 2, "siblings share a core: {core} {sib}");
    // Both nodes, turn about.
    let (n0, n1) = (c("numa", "on_node0"), c("numa", "on_node1"));
    assert!(n0 > 0 && n1 > 0 && n0.abs_diff(n1) <= 1, "{n0} {n1}");
    let nodes: std::collections::BTreeSet<u32> =
        w("numa").cpu_spans.iter().map(|s| s.node).collect();
    assert_eq!(nodes.len(), 2, "{:?}", w("numa").cpu_spans);
    assert_eq!(c("churn", "cgroup_moves"), w("churn").iterations);
    assert!(c("signals", "signals_handled") > 0, "{:?}", w("signals"));
    // Their migrations are by design, not judged.
    assert!(
        s.verdict
            .notes
            .iter()
            .any(|n| n.contains("cgroup numa: migrations and NUMA locality not judged")),
        "{:?}",
        s.verdict.notes
    );
}

/// scx_lavd 1.1.x does not load on 6.12: the verdict's first line names
/// the kernel's verifier and the rejected program.
#[test]
fn a_scheduler_the_verifier_rejects_is_named_in_the_headline() {
    let Some(env) = VmEnv::new() else { return };
    let done = env.install_scheduler("scx_lavd@1.1.4");
    assert_eq!(done["version"], "1.1.4", "{done}");
    let (code, out, s) = ktstr_run(
        &env,
        &[
            "scenarios/basic/two_cgroups.rhai",
            "--duration",
            "3",
            "--scheduler",
            "scx_lavd",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    let first = &s[0].verdict.reasons[0];
    assert!(first.starts_with("scheduler failed: the 6.12"), "{first}");
    assert!(
        first.contains("kernel's BPF verifier rejected program lavd_"),
        "{first}"
    );
    // The whole log stays in the sidecar.
    let detail = &s[0].telemetry.scheduler[0].detail;
    assert!(
        detail.contains("BEGIN PROG LOAD LOG") || detail.contains("processed "),
        "{detail}"
    );
    // The verifier sweep names the program too, and fails.
    let o = run(env
        .ktstr(&[
            "verifier",
            "--scheduler",
            "scx_lavd",
            "--backend",
            "qemu-tcg",
            "--json",
        ])
        .env("KTSTR_RUNS_DIR", env.cache.path().join("runs")));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cell = &v["report"]["cells"][0]["outcome"];
    assert_eq!(cell["outcome"], "rejected", "{v}");
    let program = cell["program"].as_str().unwrap_or_default();
    assert!(program.starts_with("lavd_"), "{v}");
    assert!(
        cell["message"]
            .as_str()
            .unwrap()
            .contains("verifier rejected program lavd_"),
        "{v}"
    );
}
