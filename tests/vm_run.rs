//! `ktstr run`: real scenarios in real VMs (QEMU TCG), judged on what the
//! guest's workers really did.

mod common;

use common::{run, stderr, stdout, VmEnv};
use ktstr_plan::verdict::Outcome;
use ktstr_run::Sidecar;
use ktstr_vmm::VmEnd;

/// `ktstr run ARGS --backend qemu-tcg` with runs written to a private dir;
/// returns (exit code, stdout, the sidecar).
fn ktstr_run(env: &VmEnv, args: &[&str]) -> (Option<i32>, String, Option<Sidecar>) {
    let runs = env.cache.path().join("runs");
    let mut full = vec!["run"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--backend", "qemu-tcg"]);
    let o = run(env.ktstr(&full).env("KTSTR_RUNS_DIR", &runs));
    let out = stdout(&o);
    let sidecar = common::all_sidecars(&runs).into_iter().next();
    env.assert_no_leftovers();
    (o.status.code(), format!("{out}{}", stderr(&o)), sidecar)
}

/// Runs the steady two-cgroup scenario ten times in a row (ten VMs) and
/// checks every run's verdict and telemetry; returns the sidecars.
fn ten_steady_runs(env: &VmEnv, extra: &[&str], sched: &str) -> Vec<Sidecar> {
    const RUNS: usize = 10;
    let mut args = vec![
        "scenarios/basic/two_cgroups.rhai",
        "--duration",
        "4",
        "--repeat",
        "10",
    ];
    args.extend_from_slice(extra);
    let (code, out, _) = ktstr_run(env, &args);
    let passes = out.lines().filter(|l| l.starts_with("PASS [")).count();
    eprintln!(
        "{sched}: {passes}/{RUNS} passed; false-positive rate {:.0} %",
        100.0 * (RUNS - passes) as f64 / RUNS as f64
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(passes, RUNS, "{out}");
    assert!(
        out.contains("two_cgroups.rhai: 10/10 passed, 0 failed (0 %)"),
        "{out}"
    );
    let sidecars = common::all_sidecars(&env.cache.path().join("runs"));
    assert_eq!(sidecars.len(), RUNS);
    let mut repetitions: Vec<u32> = sidecars.iter().map(|s| s.repetition.index).collect();
    repetitions.sort_unstable();
    assert_eq!(repetitions, (1..=RUNS as u32).collect::<Vec<_>>());
    for s in &sidecars {
        assert_eq!(s.verdict.outcome, Outcome::Pass, "{:?}", s.verdict);
        assert_eq!(s.repetition.of, RUNS as u32);
        let workers = &s.telemetry.workers;
        assert_eq!(workers.len(), 4);
        for w in workers {
            assert!(w.iterations > 1000, "{w:?}");
            assert!(w.cpu_time_ms > 500.0, "{w:?}");
            assert!(w.error.is_none());
            // Progress sampled every 250 ms over a 4 s run.
            let points = &w.progress;
            assert!((12..=20).contains(&points.len()), "{}", points.len());
            let its: Vec<u64> = points.iter().map(|p| p.iterations).collect();
            assert!(its.windows(2).all(|x| x[0] <= x[1]), "{its:?}");
        }
        let claims = &s.verdict.claims;
        assert_eq!(claims.len(), 6);
        let stall = claims
            .iter()
            .find(|c| c.label.contains("stall_ms"))
            .unwrap();
        assert_eq!(
            stall.verdict,
            ktstr_plan::claims::ClaimVerdict::Pass,
            "{stall:?}"
        );
        assert!(stall.value.unwrap() < 1000.0, "{stall:?}");
    }
    sidecars
}

#[test]
fn two_cgroups_pass_ten_runs_in_a_row_under_eevdf() {
    let Some(env) = VmEnv::new() else { return };
    let sidecars = ten_steady_runs(&env, &[], "eevdf");
    assert_eq!(sidecars[0].backend, ktstr_vmm::BackendKind::QemuTcg);
    assert!(sidecars[0].scheduler.is_none());
}

#[test]
fn two_cgroups_pass_ten_runs_in_a_row_under_scx_simple_with_its_thresholds() {
    let Some(env) = VmEnv::new() else { return };
    let toml = env.cache.path().join("schedulers.toml");
    std::fs::write(
        &toml,
        "[scheduler.scx_simple]\nattach_timeout_s = 30\nthresholds = { max_gap_ms = 4000 }\n",
    )
    .unwrap();
    let toml = toml.to_str().unwrap();
    let extra = ["--scheduler", "scx_simple", "--schedulers-toml", toml];
    for s in ten_steady_runs(&env, &extra, "scx_simple") {
        assert_eq!(s.telemetry.scheduler[0].state, "attached");
        // The scheduler's layer replaced the TCG-scaled default (5000).
        assert_eq!(s.verdict.thresholds["max_gap_ms"], 4000.0);
        assert_eq!(s.thresholds, s.verdict.thresholds);
    }
}

#[test]
fn a_scheduler_that_never_attaches_times_out_with_a_clear_verdict() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, s) = ktstr_run(
        &env,
        &[
            "scenarios/basic/two_cgroups.rhai",
            "--scheduler",
            "/bin/sleep",
            "--sched-arg",
            "1000",
            "--attach-timeout",
            "5",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("FAIL ["), "{out}");
    assert!(
        out.contains("scheduler failed: /sched/sleep did not attach within 5 s (state `disabled`)"),
        "{out}"
    );
    let s = s.unwrap();
    assert_eq!(s.telemetry.workers.len(), 0);
}

#[test]
fn a_guest_panic_mid_run_fails_the_job_and_leaves_nothing_behind() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, s) = ktstr_run(
        &env,
        &[
            "scenarios/basic/two_cgroups.rhai",
            "--duration",
            "6",
            "--scheduler",
            "scx_simple",
            "--fault",
            "panic-mid-run",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(out.starts_with("FAIL ["), "{out}");
    assert!(out.contains("kernel panic"), "{out}");
    assert!(out.contains("sysrq triggered crash"), "{out}");
    let s = s.unwrap();
    assert!(
        matches!(s.vm.end, VmEnd::KernelPanic { .. }),
        "{:?}",
        s.vm.end
    );
}

#[test]
fn scx_bpfland_installs_from_crates_io_and_passes_a_steady_run() {
    let Some(env) = VmEnv::new() else { return };
    let done = env.install_scheduler("scx_bpfland");
    assert_eq!(done["version"], "1.1.4", "{done}");
    assert!(std::path::Path::new(done["binary"].as_str().unwrap()).is_file());
    let (code, out, s) = ktstr_run(
        &env,
        &[
            "scenarios/basic/two_cgroups.rhai",
            "--duration",
            "5",
            "--scheduler",
            "scx_bpfland",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("two_cgroups 1n1l2c1t scx_bpfland"), "{out}");
    let s = s.unwrap();
    assert_eq!(s.telemetry.scheduler[0].state, "attached");
}

/// scx_qmap's injected faults: the verdict's first line is the kernel's
/// exit kind and message; the whole dump stays in the sidecar.
#[test]
fn qmap_faults_are_headlined_by_the_kernels_exit_kind_and_message() {
    let faults = [
        ("-t", "2", "runnable task stall ("),
        (
            "-T",
            "2",
            "runnable task stall (watchdog failed to check in",
        ),
        ("-l", "100", "runnable task stall ("),
        ("-e", "500", "scx_bpf_error (test triggering error)"),
    ];
    for (flag, value, want) in faults {
        let Some(env) = VmEnv::new() else { return };
        let (flag, value) = (
            format!("--sched-arg={flag}"),
            format!("--sched-arg={value}"),
        );
        let (code, out, s) = ktstr_run(
            &env,
            &[
                "scenarios/basic/two_cgroups.rhai",
                "--duration",
                "8",
                "--scheduler",
                "scx_qmap",
                &flag,
                &value,
            ],
        );
        assert_eq!(code, Some(1), "{flag} {value}: {out}");
        let s = s.expect("a sidecar");
        let first = s.verdict.reasons[0].lines().next().unwrap_or("");
        assert!(
            // `failed` when the stall came before the agent saw it attach.
            (first.starts_with("scheduler exited: ") || first.starts_with("scheduler failed: "))
                && first.contains(want),
            "{flag} {value}: first line `{first}`, wanted `{want}`:\n{out}"
        );
        let dump = &s.telemetry.scheduler.last().unwrap().detail;
        assert!(
            dump.len() > 3 * first.len(),
            "{flag} {value}: the dump is kept: {dump}"
        );
    }
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
    for w in &s.telemetry.workers {
        let half = if w.cgroup == "left" { [0, 1] } else { [2, 3] };
        assert!(w.cpus_used.iter().all(|c| half.contains(c)), "{w:?}");
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

#[test]
fn scx_central_attaches_with_its_enable_cpu_and_passes() {
    // Without schedulers.toml's `enable_cpu = 0` its ops.init runs in a
    // kernel helper on any CPU and refuses ("init from non-central CPU").
    let Some(env) = VmEnv::new() else { return };
    let (code, out, sidecar) = ktstr_run(
        &env,
        &[
            "scenarios/basic/two_cgroups.rhai",
            "--duration",
            "4",
            "--scheduler",
            "scx_central",
            "--topology",
            "1n1l4c1t",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("PASS ["), "{out}");
    let v = sidecar.expect("a sidecar");
    assert_eq!(v.scheduler.map(|s| s.name).as_deref(), Some("scx_central"));
    assert_eq!(v.telemetry.scheduler[0].state, "attached");
}

#[test]
fn an_enable_cpu_outside_the_topology_fails_before_boot() {
    let Some(env) = VmEnv::new() else { return };
    let toml = env.cache.path().join("schedulers.toml");
    std::fs::write(&toml, "[scheduler.scx_central]\nenable_cpu = 9\n").unwrap();
    let toml = toml.to_string_lossy().into_owned();
    let start = std::time::Instant::now();
    let (code, out, _) = ktstr_run(
        &env,
        &[
            "scenarios/basic/two_cgroups.rhai",
            "--scheduler",
            "scx_central",
            "--topology",
            "1n1l2c1t",
            "--schedulers-toml",
            &toml,
        ],
    );
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("scheduler.scx_central.enable_cpu = 9") && out.contains("CPUs 0-1"),
        "{out}"
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "no VM was booted"
    );
}

#[test]
fn a_topology_the_backend_cannot_run_is_skipped_before_boot() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, sidecar) = ktstr_run(
        &env,
        &[
            "scenarios/basic/two_cgroups.rhai",
            "--topology",
            "1n16l8c2t",
        ],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.starts_with("SKIP [  0.0s] two_cgroups 1n16l8c2t eevdf"),
        "{out}"
    );
    assert!(
        out.contains("the qemu-tcg backend cannot run this VM: topology 1n16l8c2t has 256 CPUs"),
        "{out}"
    );
    assert!(sidecar.is_none());
}

#[test]
fn a_script_expecting_failure_passes_by_failing() {
    let Some(env) = VmEnv::new() else { return };
    let script = env.cache.path().join("negative.rhai");
    let stall = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/qmap_stall.rhai"
    ))
    .unwrap();
    std::fs::write(
        &script,
        format!("{stall}\nexpect_fail(\"scx_qmap -t 3 stalls tasks\");\n"),
    )
    .unwrap();
    let (code, out, s) = ktstr_run(&env, &[script.to_str().unwrap(), "--duration", "8"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("PASS ["), "{out}");
    let s = s.unwrap();
    assert!(
        s.verdict.reasons[0].starts_with("failed as expected (scx_qmap -t 3 stalls tasks)"),
        "{:?}",
        s.verdict.reasons
    );
}

#[test]
fn a_kernel_that_misses_the_scripts_requirements_is_a_skip_before_boot() {
    let Some(env) = VmEnv::new() else { return };
    let script = env.cache.path().join("future.rhai");
    std::fs::write(
        &script,
        "scenario(\"future\", \"needs a kernel from the future\");\nkernel_min(\"99.0\");\n\
         kernel_config(\"CONFIG_SCHED_CLASS_EXT\");\ncgroup(\"a\", 1, spin_wait());\n\
         claim(results().all().iterations, at_least(1));\n",
    )
    .unwrap();
    let (code, out, s) = ktstr_run(&env, &[script.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.starts_with("SKIP [  0.0s] future"), "{out}");
    assert!(out.contains("is older than kernel_min(\"99.0\")"), "{out}");
    assert!(s.is_none(), "no VM booted, no sidecar");
}
