//! `ktstr check | plan | list | defs` from the command line.

mod common;

use common::{json, ktstr, run, stderr, stdout};

#[test]
fn check_exits_0_on_the_catalog_and_1_with_file_line_col_and_caret() {
    let o = run(ktstr().args([
        "check",
        "scenarios/basic/two_cgroups.rhai",
        "examples/qmap_stall.rhai",
    ]));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok    scenarios/basic/two_cgroups.rhai"));
    let o = run(ktstr().args([
        "check",
        "scenarios/basic/two_cgroups.rhai",
        "tests/broken/unknown_function.rhai",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("error: unknown function `spin_wiat`"), "{err}");
    assert!(
        err.contains("--> tests/broken/unknown_function.rhai:2:16"),
        "{err}"
    );
    assert!(err.contains("2 | cgroup(\"a\", 2, spin_wiat());"), "{err}");
    assert!(err.contains("  |                ^"), "{err}");
    assert!(err.contains("did you mean `spin_wait`?"), "{err}");
}

#[test]
fn the_whole_catalog_checks_clean() {
    let mut files: Vec<String> = Vec::new();
    for family in std::fs::read_dir("scenarios").unwrap() {
        for f in std::fs::read_dir(family.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|x| x == "rhai") {
                files.push(p.display().to_string());
            }
        }
    }
    assert!(files.len() >= 60, "{files:?}");
    let o = run(ktstr().arg("check").args(&files));
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn check_json_lists_diagnostics_and_knows_the_sample_schedulers() {
    let o = run(ktstr().args([
        "check",
        "--json",
        "examples/scx_simple_steady.rhai",
        "tests/broken/scheduler_not_found.rhai",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let v = json(&o);
    assert_eq!(v[0]["clean"], true, "{v:#}");
    assert_eq!(v[1]["clean"], false);
    let d = &v[1]["diagnostics"][0];
    assert_eq!((d["line"].as_u64(), d["col"].as_u64()), (Some(2), Some(1)));
    assert!(d["message"]
        .as_str()
        .unwrap()
        .contains("scx_does_not_exist"));
}

#[test]
fn plan_prints_the_resolved_plan() {
    let o = run(ktstr().args(["plan", "examples/gauntlet_constraints.rhai", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["name"], "gauntlet_constraints");
    assert_eq!(v["topology"]["kind"], "constraints");
    assert_eq!(
        v["resolved_topology"], "1n2l2c2t",
        "smallest preset with 2+ LLCs and SMT"
    );
    let o = run(ktstr().args([
        "plan",
        "scenarios/cpuset/per_llc.rhai",
        "--topology",
        "1n2l2c1t",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("topology 1n2l2c1t has 2 LLCs"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn list_shows_the_catalog_and_filters() {
    let o = run(ktstr().args(["list", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let all = json(&o);
    assert!(all.as_array().unwrap().len() >= 60, "{all:#}");
    let o = run(ktstr().args(["list", "--filter", "nested/"]));
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 5, "{text}");
    assert!(text.contains("nested/parent_child"), "{text}");
}

#[test]
fn defs_writes_rhai_definitions() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(ktstr().args(["defs"]).arg(dir.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    let text: String = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        text.contains("fn cgroup(name: string, workers: int, work: Work) -> Cgroup;"),
        "{text}"
    );
    assert!(text.contains("fn get spread(stats: Stats) -> Metric;"));
    // Each function carries its doc comment, for editors to show.
    assert!(text
        .contains("/// The CPUs of LLC `index` of the topology.\nfn llc(index: int) -> Cpuset;"));
}

#[test]
fn thresholds_lists_every_layer_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("schedulers.toml");
    std::fs::write(
        &toml,
        "[scheduler.scx_simple]\nthresholds = { max_wake_p99_us = 9000 }\n",
    )
    .unwrap();
    let o = run(ktstr().args([
        "--schedulers-toml",
        toml.to_str().unwrap(),
        "thresholds",
        "examples/scx_simple_steady.rhai",
        "--backend",
        "qemu-tcg",
        "--threshold",
        "max_spread_pct=40",
        "--json",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let row = |name: &str| {
        v["thresholds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {v:#}"))
            .clone()
    };
    // The script sets the gap, schedulers.toml the p99, the command line
    // the spread; the grace is a built-in time scaled for TCG.
    assert_eq!(row("max_gap_ms")["source"]["layer"], "scenario");
    assert_eq!(row("max_gap_ms")["value"], 3000.0);
    assert_eq!(row("max_wake_p99_us")["source"]["layer"], "scheduler");
    assert_eq!(row("max_wake_p99_us")["value"], 9000.0);
    assert_eq!(row("max_spread_pct")["source"]["layer"], "command_line");
    assert_eq!(row("isolation_grace_ms")["source"]["factor"], 2.5);
    assert_eq!(row("isolation_grace_ms")["value"], 1250.0);
    assert_eq!(v["thresholds"].as_array().unwrap().len(), 12);
    assert!(row("min_numa_local_pct")["doc"]
        .as_str()
        .unwrap()
        .contains("NUMA"));
}
