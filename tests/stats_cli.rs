//! `ktstr stats` on the sidecars of a real gauntlet run (stats/tests/data):
//! import, list, show, metrics, compare (gates only with one repetition a
//! side), merge refusals, errors that name the file, and the HTML report
//! drawn in headless chromium.

mod common;

use std::path::Path;

use common::{json, ktstr, run, stderr, stdout};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/stats/tests/data/run");

/// `ktstr stats ARGS` with runs under `runs`.
fn stats(runs: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = ktstr();
    cmd.arg("stats").args(args).env("KTSTR_RUNS_DIR", runs);
    run(&mut cmd)
}

/// A runs directory holding the fixture as run `r1` with its dataset.
fn runs_with_fixture() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("r1");
    std::fs::create_dir_all(&run_dir).unwrap();
    for f in std::fs::read_dir(FIXTURE).unwrap().flatten() {
        std::fs::copy(f.path(), run_dir.join(f.file_name())).unwrap();
    }
    let o = stats(tmp.path(), &["import", run_dir.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["manifest"]["rows"]["jobs"], 4);
    tmp
}

#[test]
fn import_list_show_and_metrics() {
    let runs = runs_with_fixture();
    let o = stats(runs.path(), &["list", "--json"]);
    assert_eq!(json(&o)[0]["id"], "r1");
    let o = stats(runs.path(), &["--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let cells = json(&o)["cells"].as_array().unwrap().clone();
    assert_eq!(cells.len(), 4);
    assert!(cells
        .iter()
        .all(|c| c["passed"] == 1 && c["medians"]["throughput"].as_f64() > Some(0.0)));
    let o = stats(runs.path(), &["show", "r1", "--by", "scheduler"]);
    let text = stdout(&o);
    assert!(
        text.contains("eevdf") && text.contains("scx_simple"),
        "{text}"
    );
    let o = stats(runs.path(), &["metrics", "--json"]);
    let m = json(&o);
    let wake = m
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "wake_p99_us")
        .unwrap();
    assert_eq!(wake["direction"], "lower_is_better");
    assert_eq!(wake["unit"], "us");
}

#[test]
fn one_repetition_a_side_is_judged_by_the_gates_alone_and_says_so() {
    let runs = runs_with_fixture();
    let o = stats(
        runs.path(),
        &[
            "compare",
            "scheduler=eevdf",
            "scheduler=scx_simple",
            "--in",
            "r1",
            "--json",
        ],
    );
    let c = json(&o);
    let rows = c["rows"].as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(
        rows.iter()
            .all(|r| r["basis"] == "gates_only" && r["p_mann_whitney"].is_null()),
        "{c:#}"
    );
    let regressed = c["regressions"].as_u64().unwrap();
    assert_eq!(o.status.code(), Some(if regressed > 0 { 1 } else { 0 }));
    assert!(
        rows.iter().all(|r| r["cell"].get("scheduler").is_none()),
        "the filtered column is not a cell"
    );
    let o = stats(
        runs.path(),
        &[
            "compare",
            "scheduler=eevdf",
            "scheduler=scx_simple",
            "--in",
            "r1",
        ],
    );
    assert!(
        stdout(&o).contains("[gates only: one repetition a side, no test possible]"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn bad_arguments_and_files_are_clear_errors() {
    let runs = runs_with_fixture();
    let fail = |args: &[&str]| {
        let o = stats(runs.path(), args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stdout(&o));
        stderr(&o)
    };
    let e = fail(&["compare", "r1", "r1", "--metric", "wake_p98"]);
    assert!(e.contains("unknown metric `wake_p98`"), "{e}");
    let e = fail(&["compare", "sched=x", "scheduler=y", "--in", "r1"]);
    assert!(e.contains("no column `sched`"), "{e}");
    let e = fail(&["show", "r9"]);
    assert!(e.contains("no run `r9`") && e.contains("r1"), "{e}");
    let e = fail(&["compare", "r1", "r1", "--gate", "max_gap_ms=ten,0.1"]);
    assert!(e.contains("--gate max_gap_ms=ten,0.1"), "{e}");
    let out = runs.path().join("m");
    let e = fail(&["merge", "r1", "r1", "-o", out.to_str().unwrap()]);
    assert!(e.contains("is already in an earlier dataset"), "{e}");
    let e = fail(&["show", FIXTURE]);
    assert!(e.contains("ktstr stats import"), "{e}");
    let parquet = runs.path().join("r1/stats/cgroups.parquet");
    std::fs::write(&parquet, b"garbage").unwrap();
    let e = fail(&["show", "r1"]);
    assert!(
        e.contains("cgroups.parquet: not a readable Parquet table"),
        "{e}"
    );
}

#[test]
fn the_report_draws_every_plot_in_a_real_browser() {
    let runs = runs_with_fixture();
    let html = runs.path().join("report.html");
    let o = stats(
        runs.path(),
        &[
            "report",
            "r1",
            "--compare",
            "r1",
            "--html",
            html.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let plots = json(&o)["plots"].as_array().unwrap().len();
    // compare, matrix, two distributions, one progress plot per job.
    assert_eq!(plots, 1 + 1 + 2 + 4);
    let page = std::fs::read_to_string(&html).unwrap();
    // Self-contained: nothing fetched, no script.
    for fetch in ["src=\"http", "href=\"http", "url(", "<script", "@import"] {
        assert!(!page.contains(fetch), "{fetch}");
    }
    common::browser::assert_plots_drawn(&html, plots);
}
