//! `ktstr selftest` and a gauntlet's `selftests = ...`: the kernel's
//! sched_ext selftests in real VMs (QEMU TCG), one verdict per test, with
//! JUnit and the stats table; and a broken runner (a fixture that fails,
//! hangs, crashes and panics the kernel) judged test by test in a bounded
//! run.

mod common;

use std::path::Path;
use std::time::Instant;

use common::{run, stderr, stdout, VmEnv};
use serde_json::Value;

/// `ktstr selftest ARGS --backend qemu-tcg --json`: exit code, the jobs,
/// stderr.
fn selftest(env: &VmEnv, args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut full = vec!["selftest", "--backend", "qemu-tcg", "--json"];
    full.extend_from_slice(args);
    let o = run(&mut env.ktstr(&full));
    env.assert_no_leftovers();
    let jobs: Vec<Value> = serde_json::from_str(&stdout(&o))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&o), stderr(&o)));
    (o.status.code(), jobs, stderr(&o))
}

/// Each test's (name, status) of a `--json` job.
fn statuses(job: &Value) -> Vec<(String, String)> {
    job["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The row count of table `name` in the dataset of the run under `runs`.
fn dataset_rows(runs: &Path, name: &str) -> u64 {
    let run = std::fs::read_dir(runs)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let manifest = std::fs::read_to_string(run.join("stats/dataset.json")).unwrap();
    let v: Value = serde_json::from_str(&manifest).unwrap();
    v["rows"][name].as_u64().unwrap()
}

#[test]
fn the_kernels_selftests_pass_on_tiny_2llc_and_a_two_node_preset() {
    let Some(env) = VmEnv::new() else { return };
    let junit = env.cache.path().join("selftests.xml");
    // tiny-2llc and numa2-4llc.
    let (code, jobs, err) = selftest(
        &env,
        &[
            "-t",
            "1n2l2c1t",
            "-t",
            "2n4l4c1t",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(code, Some(0), "{jobs:?}\n{err}");
    assert_eq!(jobs.len(), 2);
    for job in &jobs {
        let tests = statuses(job);
        assert_eq!(tests.len(), 21, "{job}");
        assert!(tests.iter().all(|(_, s)| s == "pass"), "{tests:?}");
        for name in [
            "minimal",
            "exit",
            "hotplug",
            "reload_loop",
            "select_cpu_dfl",
        ] {
            assert!(tests.iter().any(|(n, _)| n == name), "{name}: {tests:?}");
        }
        assert_eq!(job["outcome"], "pass");
        assert!(job["tests"][0]["duration_ms"].as_u64().unwrap() > 0);
    }
    let sidecars = common::all_sidecars(&env.cache.path().join("runs"));
    assert_eq!(sidecars.len(), 2);
    for s in &sidecars {
        assert_eq!(s.plan.name, "selftests");
        assert_eq!(s.telemetry.selftest_list.len(), 21);
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 42, "{xml}");
    assert!(
        !xml.contains("<failure") && !xml.contains("<error"),
        "{xml}"
    );
    assert!(xml.contains("classname=\"selftests::2n4l4c1t\""), "{xml}");
    assert_eq!(
        dataset_rows(&env.cache.path().join("runs"), "selftests"),
        42
    );
}

#[test]
fn a_broken_runner_gets_a_verdict_per_test_and_a_bounded_run() {
    let Some(env) = VmEnv::new() else { return };
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/selftests/broken_runner.sh");
    let junit = env.cache.path().join("broken.xml");
    let started = Instant::now();
    let (code, jobs, err) = selftest(
        &env,
        &[
            "--runner",
            fixture.to_str().unwrap(),
            "--test-timeout",
            "5",
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    let took = started.elapsed().as_secs_f64();
    assert_eq!(code, Some(1), "{jobs:?}\n{err}");
    let want = [
        ("good", "pass"),
        ("skipper", "skip"),
        ("bad", "fail"),
        ("hang", "timed_out"),
        ("crash", "crashed"),
        ("panic", "kernel_down"),
        ("after_panic", "not_run"),
    ];
    let got = statuses(&jobs[0]);
    let got: Vec<(&str, &str)> = got.iter().map(|(n, s)| (n.as_str(), s.as_str())).collect();
    assert_eq!(got, want);
    let tests = jobs[0]["tests"].as_array().unwrap();
    assert!(tests[2]["output"]
        .as_str()
        .unwrap()
        .contains("expected 1, got 2"));
    let hang_ms = tests[3]["duration_ms"].as_u64().unwrap();
    assert!((5000..8000).contains(&hang_ms), "{hang_ms}");
    assert_eq!(tests[4]["code"], 139, "{}", tests[4]);
    assert!(
        tests[5]["detail"]
            .as_str()
            .unwrap()
            .contains("sysrq triggered crash"),
        "{}",
        tests[5]
    );
    let reasons = jobs[0]["reasons"].to_string();
    assert!(
        reasons.contains("1 selftest(s) not run: after_panic"),
        "{reasons}"
    );
    // Bounded: one hang at its 5 s limit, not the VM's whole time limit.
    assert!(took < 90.0, "{took:.0} s");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 7, "{xml}");
    assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
    assert_eq!(xml.matches("<error").count(), 3, "{xml}");
}

#[test]
fn a_gauntlet_with_selftests_gives_a_per_test_matrix_and_junit() {
    let Some(env) = VmEnv::new() else { return };
    let dir = env.cache.path();
    let manifest = dir.join("selftests.toml");
    std::fs::write(
        &manifest,
        "presets = [\"tiny-2llc\", \"2n2l2c1t\"]\nselftests = \"dsq\"\nselftest_timeout = 60\njobs = 1\n",
    )
    .unwrap();
    let runs = dir.join("runs");
    let junit = dir.join("gauntlet.xml");
    let o = run(env
        .ktstr(&[
            "gauntlet",
            manifest.to_str().unwrap(),
            "--backend",
            "qemu-tcg",
            "--junit",
            junit.to_str().unwrap(),
        ])
        .env("KTSTR_RUNS_DIR", &runs));
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    env.assert_no_leftovers();
    assert!(out.contains("sched_ext selftests on kernel"), "{out}");
    let header = out
        .lines()
        .find(|l| l.trim_start().starts_with("test "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        header.contains("tiny-2llc") && header.contains("2n2l2c1t"),
        "{header}"
    );
    for test in [
        "create_dsq",
        "ddsp_bogus_dsq_fail",
        "select_cpu_dispatch_bad_dsq",
    ] {
        let row = out
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{test} ")))
            .unwrap_or_else(|| panic!("{test}: {out}"));
        assert_eq!(row.matches("PASS").count(), 2, "{row}");
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 6, "{xml}");
    for class in ["selftests::tiny-2llc", "selftests::2n2l2c1t"] {
        assert_eq!(
            xml.matches(&format!("classname=\"{class}\"")).count(),
            3,
            "{xml}"
        );
    }
    assert_eq!(dataset_rows(&runs, "selftests"), 6);
}
