//! The stats layer on real runs: an A/A pair of gauntlet runs (one of them
//! sharded, its shards merged) never compares DIFFERENT, the merged shards
//! hold the rows of the unsharded run, and the report of the runs draws
//! every plot in headless chromium; scx_qmap with a 100 us slice against
//! scx_simple on a latency scenario is DIFFERENT in wake-up latency, the
//! worse way for scx_qmap (measured: median wake latency 14 us under
//! scx_simple, 3,027 us under scx_qmap -s 100), and `compare` exits 1.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{json, run, stderr, stdout, VmEnv};
use serde_json::Value;

const AA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/stats/aa.toml");
const SLICES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/stats/slices.toml");

/// Runs `ktstr gauntlet MANIFEST ARGS` with runs under `runs`; returns the
/// run's dataset directory.
fn gauntlet(env: &VmEnv, runs: &Path, manifest: &str, args: &[&str]) -> String {
    let mut full = vec!["gauntlet", manifest, "--backend", "qemu-tcg", "--json"];
    full.extend_from_slice(args);
    let o = run(env.ktstr(&full).env("KTSTR_RUNS_DIR", runs));
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let line = stderr(&o)
        .lines()
        .find_map(|l| l.strip_prefix("dataset: ").map(str::to_string));
    line.unwrap_or_else(|| panic!("no dataset written: {}", stderr(&o)))
}

/// `ktstr stats ARGS --json` (exit code and JSON).
fn stats(env: &VmEnv, args: &[&str]) -> (i32, Value) {
    let mut full = vec!["stats"];
    full.extend_from_slice(args);
    full.push("--json");
    let mut cmd = common::ktstr();
    cmd.args(&full)
        .env("KTSTR_RUNS_DIR", env.cache.path().join("runs"));
    let o = run(&mut cmd);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    (o.status.code().unwrap_or(-1), json(&o))
}

/// The (job, repetition, cgroup, worker) of every worker row of a dataset.
fn worker_keys(env: &VmEnv, dataset: &str) -> BTreeSet<String> {
    let df = std::fs::read(Path::new(dataset).join("dataset.json")).unwrap();
    let manifest: Value = serde_json::from_slice(&df).unwrap();
    let (_, shown) = stats(env, &["show", dataset, "--by", "scenario,preset,scheduler"]);
    assert_eq!(shown["runs"], manifest["runs"]);
    let mut keys = BTreeSet::new();
    for cell in shown["cells"].as_array().unwrap() {
        keys.insert(format!(
            "{} {} jobs={}",
            cell["cell"]["scenario"], cell["cell"]["scheduler"], cell["jobs"]
        ));
    }
    keys.insert(format!("workers={}", manifest["rows"]["workers"]));
    keys.insert(format!(
        "progress>0={}",
        manifest["rows"]["progress"].as_u64() > Some(0)
    ));
    // The host-side monitor's samples, one row per CPU and sample.
    keys.insert(format!(
        "monitor>0={}",
        manifest["rows"]["monitor"].as_u64() > Some(0)
    ));
    keys
}

#[test]
fn a_a_runs_never_differ_shards_merge_to_the_whole_and_the_report_draws() {
    let Some(env) = VmEnv::new() else { return };
    let runs = env.cache.path().join("runs");
    let whole = gauntlet(&env, &runs, AA, &["--jobs", "2"]);
    let one = gauntlet(&env, &runs, AA, &["--jobs", "2", "--shard", "1/2"]);
    let two = gauntlet(&env, &runs, AA, &["--jobs", "2", "--shard", "2/2"]);
    env.assert_no_leftovers();
    let merged = env.cache.path().join("merged");
    let merged = merged.to_str().unwrap();
    let (code, m) = stats(&env, &["merge", &one, &two, "-o", merged]);
    assert_eq!(code, 0, "{m}");
    assert_eq!(m["manifest"]["rows"]["jobs"], 5, "{m}");
    let keys = worker_keys(&env, &whole);
    assert!(keys.contains("monitor>0=true"), "{keys:?}");
    assert_eq!(worker_keys(&env, merged), keys);

    // Same configuration both sides: SAME or UNKNOWN everywhere.
    let (code, c) = stats(&env, &["compare", &whole, merged]);
    assert_eq!(code, 0, "{c:#}");
    assert_eq!(c["different"], 0, "{c:#}");
    for r in c["rows"].as_array().unwrap() {
        assert_eq!(r["a"]["values"].as_array().unwrap().len(), 5, "{r}");
        assert!(
            matches!(r["finding"].as_str(), Some("SAME" | "UNKNOWN")),
            "{r}"
        );
    }
    let (_, noise) = stats(&env, &["noise", &whole]);
    let wake = noise
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "wake_p99_us")
        .expect("wake latency noise");
    assert_eq!(wake["n"], 5);
    let (code, _) = stats(&env, &["compare", &whole, merged, "--gates-from", &whole]);
    assert_eq!(code, 0);

    // The report of the run, against the other, in a real browser.
    let html = env.cache.path().join("report.html");
    let (code, r) = stats(
        &env,
        &[
            "report",
            &whole,
            "--compare",
            merged,
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    let plots = r["plots"].as_array().unwrap();
    let ids: Vec<&str> = plots.iter().map(|p| p["id"].as_str().unwrap()).collect();
    for want in [
        "compare",
        "matrix",
        "dist-max_gap_ms",
        "dist-wake_p99_us",
        "progress-0",
    ] {
        assert!(ids.contains(&want), "{ids:?}");
    }
    common::browser::assert_plots_drawn(&html, plots.len());
}

#[test]
fn a_tiny_slice_regresses_wake_latency_against_scx_simple_and_compare_exits_1() {
    let Some(env) = VmEnv::new() else { return };
    let runs = env.cache.path().join("runs");
    let dataset = gauntlet(&env, &runs, SLICES, &["--jobs", "2"]);
    let (code, c) = stats(
        &env,
        &[
            "compare",
            "scheduler=scx_simple",
            "scheduler=scx_qmap",
            "--in",
            &dataset,
            "--metric",
            "wake_p50_us",
            "--metric",
            "wake_p99_us",
        ],
    );
    assert_eq!(code, 1, "{c:#}");
    let rows = c["rows"].as_array().unwrap();
    let p50 = rows.iter().find(|r| r["metric"] == "wake_p50_us").unwrap();
    assert_eq!(p50["finding"], "DIFFERENT", "{c:#}");
    assert_eq!(p50["regression"], true, "{c:#}");
    assert!(
        p50["delta"].as_f64().unwrap() > 0.0,
        "scx_qmap -s 100 wakes slower: {c:#}"
    );
    assert!(c["regressions"].as_u64().unwrap() >= 1);
    // The other way round it is an improvement, and nothing regressed.
    let (code, c) = stats(
        &env,
        &[
            "compare",
            "scheduler=scx_qmap",
            "scheduler=scx_simple",
            "--in",
            &dataset,
            "--metric",
            "wake_p50_us",
        ],
    );
    assert_eq!(code, 0, "{c:#}");
    assert_eq!(c["rows"][0]["finding"], "DIFFERENT", "{c:#}");
}
