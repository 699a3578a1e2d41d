//! `ktstr gauntlet`: the shipped manifest runs (progress, matrix, JUnit),
//! shards partition the jobs, an expected failure passes by failing, a
//! broken manifest stops before anything boots, the budget chooses, and
//! Ctrl-C leaves nothing behind.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{json, ktstr, run, stderr, stdout, VmEnv};
use serde_json::Value;

/// `ktstr gauntlet ARGS` in the test's private surroundings, runs under
/// `runs`.
fn gauntlet(env: &VmEnv, runs: &Path, args: &[&str]) -> Command {
    let mut full = vec!["gauntlet"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--backend", "qemu-tcg"]);
    let mut cmd = env.ktstr(&full);
    cmd.env("KTSTR_RUNS_DIR", runs);
    cmd
}

/// The job keys `--list --json` prints for `args`.
fn listed(args: &[&str]) -> Vec<String> {
    let mut full = vec!["gauntlet", "--list", "--json"];
    full.extend_from_slice(args);
    let o = run(ktstr().args(&full));
    assert!(o.status.success(), "{}", stderr(&o));
    json(&o)["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["key"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_shipped_manifest_runs_with_progress_a_matrix_and_junit() {
    let Some(env) = VmEnv::new() else { return };
    let runs = env.cache.path().join("runs");
    let junit = env.cache.path().join("junit.xml");
    let junit_arg = junit.to_str().unwrap();
    let o = run(&mut gauntlet(
        &env,
        &runs,
        &["--jobs", "2", "--junit", junit_arg],
    ));
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(0), "{out}\n{err}");
    env.assert_no_leftovers();
    assert!(out.contains("18 jobs: 18 passed, 0 failed"), "{out}");
    for sched in ["eevdf on kernel", "scx_simple on kernel"] {
        assert!(out.contains(sched), "{out}");
    }
    let row = out
        .lines()
        .find(|l| l.trim_start().starts_with("llc_split"))
        .unwrap();
    assert_eq!(row.matches("PASS").count(), 3, "{row}");
    // Progress: a line per job as it ends (stderr is not a terminal).
    assert!(err.contains("[18/18] PASS"), "{err}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), 18, "{xml}");
    assert!(xml.contains("failures=\"0\""), "{xml}");
    assert!(xml.contains("name=\"steady::2n2l2c1t::run1\""), "{xml}");
    let reports: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|d| d.path().join("gauntlet.json"))
        .filter(|p| p.is_file())
        .collect();
    assert_eq!(reports.len(), 1);
}

#[test]
fn shards_together_run_each_job_exactly_once_in_any_manifest_order() {
    let all = listed(&[]);
    assert_eq!(all.len(), 18);
    let one = listed(&["--shard", "1/2"]);
    let two = listed(&["--shard", "2/2"]);
    let (a, b): (BTreeSet<_>, BTreeSet<_>) = (one.iter().collect(), two.iter().collect());
    assert!(a.is_disjoint(&b), "{one:?} {two:?}");
    let union: BTreeSet<&String> = a.union(&b).copied().collect();
    assert_eq!(union, all.iter().collect::<BTreeSet<_>>());
    assert!(!one.is_empty() && !two.is_empty());
    // The same manifest with its lists reversed puts each job in the same
    // shard.
    let dir = tempfile::tempdir().unwrap();
    let reversed = dir.path().join("g.toml");
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::write(
        &reversed,
        format!(
            "scenarios = [\"{root}/examples/gauntlet/wakeups.rhai\", \"{root}/examples/gauntlet/llc_split.rhai\", \
             \"{root}/examples/gauntlet/steady.rhai\"]\npresets = [\"2n2l2c1t\", \"tiny-2llc\", \"smt-2llc\"]\n\
             schedulers = [\"scx_simple\", \"eevdf\"]\n"
        ),
    )
    .unwrap();
    let path = reversed.to_str().unwrap();
    let again: BTreeSet<String> = listed(&[path, "--shard", "1/2"]).into_iter().collect();
    assert_eq!(again, one.into_iter().collect::<BTreeSet<_>>());
}

#[test]
fn the_budget_keeps_what_covers_most_and_says_what_it_left_out() {
    // No earlier runs: the boot model alone prices the cells (runs of
    // other tests under the default runs directory must not change it).
    let empty = tempfile::tempdir().unwrap();
    let o = run(ktstr()
        .env("KTSTR_RUNS_DIR", empty.path())
        .args(["gauntlet", "--list", "--json", "--budget", "40"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let kept = v["jobs"].as_array().unwrap();
    let left: Vec<&str> = v["left_out"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(!kept.is_empty() && !left.is_empty(), "{v:#}");
    assert_eq!(kept.len() + left.len(), 18, "{v:#}");
    // The model's cells cost about 10 s: four fit in 40 s, and they reach
    // every scenario and both schedulers before any is covered twice.
    assert!(kept.len() <= 4, "{v:#}");
    let scenarios: BTreeSet<&str> = kept
        .iter()
        .map(|j| j["scenario"].as_str().unwrap())
        .collect();
    assert_eq!(scenarios.len(), 3, "{v:#}");
    let schedulers: BTreeSet<&str> = kept
        .iter()
        .map(|j| j["scheduler"].as_str().unwrap())
        .collect();
    assert_eq!(schedulers.len(), 2, "{v:#}");
}

#[test]
fn a_broken_manifest_names_each_problem_before_anything_boots() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let root = env!("CARGO_MANIFEST_DIR");
    let cases = [
        (
            write("key.toml", &format!("scenarios = [\"{root}/examples/gauntlet/steady.rhai\"]\njbos = 2\n")),
            vec!["key.toml:2:1: jbos: unknown field `jbos`"],
        ),
        (
            write("type.toml", &format!("scenarios = [\"{root}/examples/gauntlet/steady.rhai\"]\njobs = \"two\"\n")),
            vec!["type.toml:2:8: manifest: invalid type: string \"two\", expected u32"],
        ),
        (
            write(
                "names.toml",
                "scenarios = [\"nowhere.rhai\"]\npresets = [\"giant-9llc\"]\nschedulers = [\"scx_nosuch\"]\n",
            ),
            vec![
                "names.toml:1:14: scenarios: `nowhere.rhai`: no such file",
                "names.toml:2:12: presets: `giant-9llc` is not a preset",
                "names.toml:3:15: schedulers: scheduler `scx_nosuch` not found",
            ],
        ),
    ];
    for (path, wanted) in cases {
        let o = run(ktstr()
            .args(["gauntlet", path.to_str().unwrap(), "--backend", "qemu-tcg"])
            .env("KTSTR_RUNS_DIR", &runs)
            .env("TMPDIR", dir.path()));
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        for w in wanted {
            assert!(err.contains(w), "{w}:\n{err}");
        }
        assert!(!runs.exists(), "a run directory was made");
        assert!(common::processes_mentioning(dir.path().to_str().unwrap()).is_empty());
    }
}

#[test]
fn an_expected_failure_passes_by_failing_and_fails_without_the_expectation() {
    let Some(env) = VmEnv::new() else { return };
    let runs = env.cache.path().join("runs");
    let root = env!("CARGO_MANIFEST_DIR");
    let manifest = |expect: &str| {
        let p = env.cache.path().join(format!("qmap{}.toml", expect.len()));
        std::fs::write(
            &p,
            format!(
                "scenarios = [\"{root}/examples/qmap_stall.rhai\"]\nduration = 8\n\n\
                 [[scheduler]]\nname = \"scx_qmap\"\nargs = [\"-t\", \"3\"]\n{expect}"
            ),
        )
        .unwrap();
        p
    };
    let expecting = manifest("expect = \"fail\"\n");
    let o = run(&mut gauntlet(&env, &runs, &[expecting.to_str().unwrap()]));
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", stderr(&o));
    assert!(out.contains("1 jobs: 1 passed"), "{out}");
    let report = newest_report(&runs);
    let reason = report["jobs"][0]["reasons"][0].as_str().unwrap();
    assert!(reason.starts_with("failed as expected"), "{reason}");
    assert!(reason.contains("stall"), "{reason}");
    let plain = manifest("");
    let o = run(&mut gauntlet(&env, &runs, &[plain.to_str().unwrap()]));
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL qmap_stall::1n1l2c1t::scx_qmap -t 3 run 1"),
        "{out}"
    );
    // --rerun-failed picks exactly that cell from the newest run.
    let o = run(&mut gauntlet(
        &env,
        &runs,
        &[plain.to_str().unwrap(), "--rerun-failed", "--list"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let key = format!("qmap_stall::1n1l2c1t::scx_qmap -t 3::{}::run1", env.kernel);
    assert_eq!(stdout(&o).trim(), key);
    env.assert_no_leftovers();
}

fn newest_report(runs: &Path) -> Value {
    let mut reports: Vec<_> = std::fs::read_dir(runs)
        .unwrap()
        .flatten()
        .map(|d| d.path().join("gauntlet.json"))
        .filter(|p| p.is_file())
        .collect();
    reports.sort_by_key(|p| p.metadata().unwrap().modified().unwrap());
    serde_json::from_slice(&std::fs::read(reports.last().unwrap()).unwrap()).unwrap()
}

#[test]
fn ctrl_c_mid_sweep_stops_every_vm_and_writes_what_finished() {
    let Some(env) = VmEnv::new() else { return };
    let runs = env.cache.path().join("runs");
    let mut child = gauntlet(&env, &runs, &["--jobs", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first job to end and two more to be running.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.starts_with("[1/18]") || Instant::now() > deadline {
            break;
        }
    }
    assert!(seen.contains("[1/18]"), "{seen}");
    std::thread::sleep(Duration::from_secs(2));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{}", rest.join("\n"));
    let report = newest_report(&runs);
    assert_eq!(report["interrupted"], true);
    let not_run = report["not_run"].as_array().unwrap().len();
    assert!(not_run > 0 && not_run < 18, "{report:#}");
    env.assert_no_leftovers();
}

#[test]
fn the_example_ci_workflow_parses_and_names_each_shard_exactly_once() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/ci/github-gauntlet.yml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let v: Value = serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let n: u64 = v["env"]["SHARDS"].as_u64().expect("env.SHARDS");
    let shard = &v["jobs"]["shard"];
    let mut named: Vec<u64> = shard["strategy"]["matrix"]["shard"]
        .as_array()
        .expect("a shard matrix")
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect();
    named.sort_unstable();
    assert_eq!(named, (1..=n).collect::<Vec<_>>(), "each shard once");
    let steps = shard["steps"].as_array().unwrap();
    let run = steps
        .iter()
        .filter_map(|s| s["run"].as_str())
        .find(|r| r.contains("ktstr gauntlet"))
        .expect("a gauntlet step");
    assert!(
        run.contains("--shard ${{ matrix.shard }}/${{ env.SHARDS }}"),
        "{run}"
    );
    assert!(
        v["jobs"]["merge"]["needs"] == "shard",
        "the merge waits for every shard"
    );
}
