//! Scripts that used to lose cgroups silently, crash the checker or name
//! the wrong place: each is now a clean Plan or a diagnostic at the file
//! and position where the problem is, within a bounded time.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ktstr_engine::check::{MAX_CGROUPS, MAX_STEPS, STDLIB_FILE};
use ktstr_engine::{check_file, check_source, CheckOptions, Checked};
use ktstr_plan::claims::MAX_EXPR_DEPTH;

/// Checks `src` on another thread, failing the test if it takes longer
/// than `limit` (a hang) instead of waiting for it.
fn check_within(limit: Duration, src: String) -> (Checked, Duration) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let start = Instant::now();
        let c = check_source("t.rhai", &src, None, &CheckOptions::default());
        let _ = tx.send((c, start.elapsed()));
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("checking took longer than {limit:?}"))
}

/// Checks the file `name` in `dir` on another thread, bounded by `limit`.
fn check_path_within(limit: Duration, path: &Path) -> Checked {
    let (tx, rx) = mpsc::channel();
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(check_file(&path, &CheckOptions::default()));
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("checking took longer than {limit:?}"))
}

fn names(c: &Checked) -> Vec<String> {
    let plan = c.plan.as_ref().expect("a plan");
    plan.cgroups.iter().map(|g| g.name.clone()).collect()
}

#[test]
fn cgroups_from_one_call_site_are_all_kept() {
    let src = "import \"ktstr\" as k;\nscenario(\"x\", \"y\");\nk::steady(\"a\", 2);\nk::steady(\"b\", 3);\nfor i in 0..3 { cgroup(`l${i}`, 1, spin_wait()).nice(i); }\nclaim(results().cgroup(\"a\").iterations, at_least(1));\n";
    let c = check_source("t.rhai", src, None, &CheckOptions::default());
    assert!(c.is_clean(), "{}", c.render());
    assert_eq!(names(&c), ["a", "b", "l0", "l1", "l2"]);
    let plan = c.plan.unwrap();
    let nices: Vec<i32> = plan.cgroups.iter().map(|g| g.nice).collect();
    assert_eq!(nices, [0, 0, 0, 1, 2], "each handle updates its own cgroup");
    assert_eq!(plan.cgroups[0].at.file.as_deref(), Some(STDLIB_FILE));
    assert_eq!(plan.cgroups[0].at.via.as_ref().map(|v| v.line), Some(3));
}

#[test]
fn a_duplicate_made_in_a_loop_names_both_positions() {
    let src = "scenario(\"x\", \"y\");\nfor i in 0..2 {\n  cgroup(\"a\", 1, spin_wait());\n}\n";
    let c = check_source("t.rhai", src, None, &CheckOptions::default());
    let d = &c.diagnostics[0];
    assert_eq!((d.line, d.col), (3, 3), "{}", c.render());
    assert_eq!(d.message, "duplicate cgroup `a`");
    assert_eq!(
        d.help.as_deref(),
        Some("`a` is first defined at t.rhai:3:3")
    );
}

#[test]
fn an_import_cycle_is_an_error_not_a_stack_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let me = dir.path().join("me.rhai");
    std::fs::write(&me, "import \"me\" as m;\nscenario(\"x\", \"y\");\n").unwrap();
    let c = check_path_within(Duration::from_secs(20), &me);
    assert!(c.render().contains("import cycle"), "{}", c.render());
    let a = dir.path().join("a.rhai");
    std::fs::write(&a, "import \"b\" as b;\nscenario(\"x\", \"y\");\n").unwrap();
    std::fs::write(
        dir.path().join("b.rhai"),
        "fn f() { 1 }\nimport \"a\" as a;\n",
    )
    .unwrap();
    let c = check_path_within(Duration::from_secs(20), &a);
    let d = &c.diagnostics[0];
    assert!(d.message.starts_with("import cycle: "), "{}", c.render());
    assert!(d.file.ends_with("b.rhai"), "{}", c.render());
    assert_eq!((d.line, d.col), (2, 8), "{}", c.render());
    assert!(d.notes[0].starts_with("imported from "), "{:?}", d.notes);
}

#[test]
fn a_long_import_chain_stops_at_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..40 {
        let text = format!("import \"m{}\" as n;\nfn f{i}() {{ {i} }}\n", i + 1);
        std::fs::write(dir.path().join(format!("m{i}.rhai")), text).unwrap();
    }
    let main = dir.path().join("main.rhai");
    std::fs::write(&main, "import \"m0\" as m;\nscenario(\"x\", \"y\");\n").unwrap();
    let c = check_path_within(Duration::from_secs(20), &main);
    assert!(
        c.render().contains("imports nest deeper than 8 files"),
        "{}",
        c.render()
    );
}

#[test]
fn errors_in_imported_files_and_the_stdlib_name_that_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lib.rhai"),
        "// helpers\nfn mk(n) {\n  cgroup(n, 1, spin_wait()).cpuset(llc(9));\n}\nfn broken(n) {\n  cgroup(n, -1, spin_wait());\n}\n",
    )
    .unwrap();
    let main = dir.path().join("main.rhai");
    std::fs::write(
        &main,
        "import \"lib\" as l;\nscenario(\"x\", \"y\");\nl::mk(\"q\");\n",
    )
    .unwrap();
    let c = check_file(&main, &CheckOptions::default());
    let d = &c.diagnostics[0];
    assert!(d.file.ends_with("lib.rhai"), "{}", c.render());
    assert_eq!((d.line, d.col), (3, 3), "{}", c.render());
    assert!(c
        .render()
        .contains("3 |   cgroup(n, 1, spin_wait()).cpuset(llc(9));"));
    assert!(d.notes[0].ends_with("main.rhai:3:4"), "{:?}", d.notes);
    std::fs::write(
        &main,
        "import \"lib\" as l;\nscenario(\"x\", \"y\");\nl::broken(\"q\");\n",
    )
    .unwrap();
    let c = check_file(&main, &CheckOptions::default());
    let d = &c.diagnostics[0];
    assert!(d.file.ends_with("lib.rhai"), "{}", c.render());
    assert_eq!(d.line, 6, "{}", c.render());
    let src = "import \"ktstr\" as k;\nscenario(\"x\", \"y\");\n\nk::steady(\"a b\", 2);\n";
    let c = check_source("s.rhai", src, None, &CheckOptions::default());
    let d = &c.diagnostics[0];
    assert_eq!(
        (d.file.as_str(), d.line),
        (STDLIB_FILE, 6),
        "{}",
        c.render()
    );
    assert!(
        c.render().contains("cgroup(name, workers, spin_wait())"),
        "{}",
        c.render()
    );
    assert_eq!(d.notes, ["called from s.rhai:4:4"], "{}", c.render());
    assert_eq!(c.diagnostics.len(), 1, "reported once:\n{}", c.render());
}

#[test]
fn constraints_are_judged_at_their_own_position() {
    let src =
        "scenario(\"x\", \"y\");\nmin_llcs(2);\nrequires_smt();\ncgroup(\"a\", 1, spin_wait());\n";
    let opts = CheckOptions {
        topology: Some("4n8l4c1t".parse().unwrap()),
        ..CheckOptions::default()
    };
    let c = check_source("t.rhai", src, None, &opts);
    let d = &c.diagnostics[0];
    assert_eq!((d.line, d.col), (3, 1), "{}", c.render());
    assert!(
        d.message.contains("breaks the scenario's requires_smt()"),
        "{}",
        d.message
    );
    let none =
        "scenario(\"x\", \"y\");\nmin_llcs(2);\nmax_cpus(1);\ncgroup(\"a\", 1, spin_wait());\n";
    let c = check_source("t.rhai", none, None, &CheckOptions::default());
    let d = &c.diagnostics[0];
    assert_eq!(d.message, "no gauntlet topology satisfies the constraints");
    assert_eq!((d.line, d.col), (2, 1), "{}", c.render());
}

#[test]
fn plan_validation_is_bounded_and_linear() {
    // One new cgroup per step: past MAX_CGROUPS this is an error, found
    // quickly however many steps there are.
    let many = |n: usize| {
        format!("scenario(\"x\", \"y\");\nduration(3600);\nfor i in 0..{n} {{\n  step([add_cgroup(cgroup_def(`c${{i}}`, 1, spin_wait()))], fixed(0.1));\n}}\n")
    };
    let (c, took) = check_within(Duration::from_secs(30), many(16_000));
    assert!(
        c.render()
            .contains(&format!("more than {MAX_CGROUPS} cgroups")),
        "{}",
        c.render()
    );
    assert!(took < Duration::from_secs(3), "16,000 steps took {took:?}");
    // Many steps on one cgroup are fine, up to MAX_STEPS.
    let churn = |n: usize| {
        format!("scenario(\"x\", \"y\");\nduration(3600);\ncgroup(\"a\", 1, spin_wait());\nfor i in 0..{n} {{\n  step([set_cpuset(\"a\", disjoint(i % 2, 2))], fixed(0.1));\n}}\n")
    };
    let (c, took) = check_within(Duration::from_secs(30), churn(MAX_STEPS));
    assert!(c.is_clean(), "{}", c.render());
    assert!(
        took < Duration::from_secs(3),
        "{MAX_STEPS} steps took {took:?}"
    );
    let (c, _) = check_within(Duration::from_secs(30), churn(MAX_STEPS + 1));
    assert!(
        c.render().contains("at most 10000 are allowed"),
        "{}",
        c.render()
    );
}

#[test]
fn claim_expressions_are_bounded_so_the_guest_can_read_the_plan() {
    let deep = |n: usize| {
        format!("scenario(\"x\", \"y\");\ncgroup(\"a\", 1, spin_wait());\nlet m = results().cgroup(\"a\").iterations;\nfor i in 0..{n} {{ m = m + 1; }}\nclaim(m, at_least(1));\n")
    };
    let c = check_source(
        "t.rhai",
        &deep(MAX_EXPR_DEPTH - 1),
        None,
        &CheckOptions::default(),
    );
    assert!(c.is_clean(), "{}", c.render());
    // The guest parses its job with serde_json's default nesting limit.
    let json = serde_json::to_string(&c.plan.unwrap()).unwrap();
    serde_json::from_str::<serde_json::Value>(&json).expect("the guest can read it");
    let c = check_source("t.rhai", &deep(3005), None, &CheckOptions::default());
    let d = &c.diagnostics[0];
    assert!(
        d.message.contains("nest at most 24 levels"),
        "{}",
        c.render()
    );
    assert_eq!(d.line, 4, "{}", c.render());
}

#[test]
fn thresholds_predicates_and_counts_follow_the_cli_rules() {
    let bad = [
        (
            "threshold(\"max_gap_msx\", 100);",
            "unknown threshold `max_gap_msx`",
        ),
        (
            "threshold(\"max_gap_ms\", -1);",
            "-1 is not a finite number >= 0",
        ),
        (
            "threshold(\"max_gap_ms\", 0.0 / 0.0);",
            "NaN is not a finite number",
        ),
        (
            "claim(results().all().iterations, at_most(0.0 / 0.0));",
            "at_most(NaN)",
        ),
        (
            "claim(results().all().iterations, between(0.0 / 0.0, 1));",
            "between(NaN, 1)",
        ),
        (
            "claim(results().all().iterations * (1.0 / 0.0), at_most(1));",
            "not a finite number",
        ),
        (
            "step([spawn_workers(\"a\", 1000000000)], frac(0.5));",
            "at most 4096 are allowed",
        ),
        (
            "step([spawn_workers(\"a\", 4294967295)], frac(0.5));",
            "to 4294967296 workers",
        ),
        (
            "cgroup(\"a\\nb\", 1, spin_wait());",
            "may hold only ASCII letters",
        ),
        (
            "cgroup(\"a\\tb\", 1, spin_wait());",
            "may hold only ASCII letters",
        ),
        (
            "cgroup(\"a\\x00b\", 1, spin_wait());",
            "may hold only ASCII letters",
        ),
        (
            "cgroup(\"   \", 1, spin_wait());",
            "must start with a letter or digit",
        ),
        (
            "cgroup(\"cgroup.procs\", 1, spin_wait());",
            "may hold only ASCII letters",
        ),
        (
            "cgroup(\"_workers\", 1, spin_wait());",
            "must start with a letter or digit",
        ),
        ("cgroup(\"\", 1, spin_wait());", "is empty"),
        (
            &format!("cgroup(\"{}\", 1, spin_wait());", "n".repeat(300)),
            "300 bytes",
        ),
        ("eval(\"1\");", "'eval' is disabled"),
    ];
    for (line, want) in bad {
        let src = format!("scenario(\"x\", \"y\");\ncgroup(\"a\", 1, spin_wait());\n{line}\n");
        let c = check_source("t.rhai", &src, None, &CheckOptions::default());
        let hit = c.diagnostics.iter().find(|d| d.message.contains(want));
        let d = hit.unwrap_or_else(|| panic!("{line}: no `{want}` in:\n{}", c.render()));
        assert_eq!(d.line, 3, "{line}: {}", c.render());
    }
}

#[test]
fn print_is_captured_a_bom_is_accepted_and_long_lines_are_clipped() {
    let src = "\u{feff}print(\"hello\");\ndebug(\"dbg\");\nscenario(\"x\", \"y\");\ncgroup(\"a\", 1, spin_wait());\n";
    let c = check_source("t.rhai", src, None, &CheckOptions::default());
    assert!(c.is_clean(), "{}", c.render());
    let texts: Vec<&str> = c.output.lines.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(texts, ["hello", "\"dbg\""]);
    assert_eq!(c.output.lines[1].at.as_deref(), Some("t.rhai:2:1"));
    let long = format!("scenario(\"x\", \"y\"); {}nope();\n", " ".repeat(200_000));
    let c = check_source("t.rhai", &long, None, &CheckOptions::default());
    assert!(c.render().len() < 1000, "{} bytes", c.render().len());
}
