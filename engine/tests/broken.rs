//! The corpus of broken scripts under `tests/broken/`: each ends with
//! `// expect: LINE:COL: message` lines, and checking it must report each
//! of them, at that place, before anything boots.

use std::path::Path;
use std::sync::Arc;

use ktstr_engine::{check_file, CheckOptions};

fn expectations(text: &str) -> Vec<(usize, usize, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("// expect: "))
        .map(|e| {
            let mut parts = e.splitn(3, ':');
            let line = parts.next().unwrap().trim().parse().unwrap();
            let col = parts.next().unwrap().trim().parse().unwrap();
            (line, col, parts.next().unwrap().trim().to_string())
        })
        .collect()
}

#[test]
fn every_broken_script_reports_the_expected_error_at_the_expected_place() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/broken");
    let opts = CheckOptions {
        scheduler_exists: Some(Arc::new(|name: &str| {
            if name.starts_with("scx_simple") {
                Ok(())
            } else {
                Err("not found".to_string())
            }
        })),
        ..CheckOptions::default()
    };
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let wanted = expectations(&text);
        assert!(
            !wanted.is_empty(),
            "{} has no // expect: line",
            path.display()
        );
        let c = check_file(&path, &opts);
        assert!(!c.is_clean(), "{} checked clean", path.display());
        let rendered = c.render();
        for (line, col, msg) in wanted {
            assert!(
                c.diagnostics
                    .iter()
                    .any(|d| d.line == line && d.col == col && d.message.contains(&msg)),
                "{}: expected `{msg}` at {line}:{col}, got:\n{rendered}",
                path.display()
            );
        }
        assert!(rendered.contains('^'), "no caret in:\n{rendered}");
        count += 1;
    }
    assert!(count >= 25, "only {count} broken scripts");
}

#[test]
fn several_errors_in_one_script_are_all_reported() {
    let src = "scenario(\"x\", \"y\");\nlet a = cgroup(\"a\", 2, spin_wiat());\nlet b = cgroup(\"b\", 2);\nb.nise(1);\n";
    let c = ktstr_engine::check_source("multi.rhai", src, None, &CheckOptions::default());
    let at: Vec<(usize, usize)> = c.diagnostics.iter().map(|d| (d.line, d.col)).collect();
    assert_eq!(at, vec![(2, 24), (3, 9), (4, 3)], "{}", c.render());
    let v = "scenario(\"x\", \"y\");\ntopology(1, 1, 2, 1);\ncgroup(\"a\", 0, spin_wait()).cpuset(llc(3));\ncgroup(\"a\", 1, spin_wait());\n";
    let c = ktstr_engine::check_source("v.rhai", v, None, &CheckOptions::default());
    assert_eq!(c.diagnostics.len(), 3, "{}", c.render());
}

#[test]
fn guest_files_are_checked_before_boot_and_named_in_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cfg.json"), b"{}").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub").join("cfg.json"), b"[]").unwrap();
    let opts = CheckOptions::default();
    let ok = "scenario(\"f\", \"f\");\nlet p = guest_file(\"cfg.json\");\n\
              scheduler(\"scx_simple\", [\"--config\", p, guest_file(\"cfg.json\")]);\n";
    let c = ktstr_engine::check_source("f.rhai", ok, Some(dir.path()), &opts);
    assert!(c.is_clean(), "{}", c.render());
    let plan = c.plan.unwrap();
    assert_eq!(plan.files.len(), 1, "the same file twice is shipped once");
    assert_eq!(plan.files[0].guest, "/files/cfg.json");
    assert!(plan.files[0].host.ends_with("/cfg.json"));
    assert_eq!(
        plan.scheduler.unwrap().args,
        ["--config", "/files/cfg.json", "/files/cfg.json"]
    );
    for (src, want) in [
        (
            "scenario(\"f\", \"f\");\n  guest_file(\"gone.json\");\n",
            "gone.json: No such file or directory",
        ),
        ("scenario(\"f\", \"f\");\n  guest_file(\"sub\");\n", "is not a regular file"),
        (
            "scenario(\"f\", \"f\");\n  guest_file(\"cfg.json\");\n  guest_file(\"sub/cfg.json\");\n",
            "would both be /files/cfg.json in the guest",
        ),
    ] {
        let c = ktstr_engine::check_source("f.rhai", src, Some(dir.path()), &opts);
        let text = c.render();
        assert!(text.contains(want), "{want}: {text}");
        assert!(text.contains("f.rhai:"), "{text}");
        let d = c.diagnostics.last().unwrap();
        assert_eq!(d.col, 3, "{text}");
    }
}
