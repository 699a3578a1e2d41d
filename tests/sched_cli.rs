//! `ktstr sched install | list` and schedulers.toml, without VMs: a local
//! scheduler crate is really built by cargo into a private cache.

mod common;

use common::{json, ktstr, run, stderr, stdout};

/// A tiny crate whose binary is `bin` (what a scheduler crate looks like
/// to cargo install).
fn fake_crate(dir: &std::path::Path, bin: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"{bin}\"\nversion = \"0.3.0\"\nedition = \"2021\"\n\n[workspace]\n"
        ),
    )
    .unwrap();
    std::fs::write(dir.join("src/main.rs"), "fn main() { println!(\"hi\"); }\n").unwrap();
}

#[test]
fn a_local_crate_installs_into_the_cache_and_check_then_finds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("scx_fake");
    fake_crate(&src, "scx_fake");
    let ktstr_in = |args: &[&str]| {
        let mut c = ktstr();
        c.args(args)
            .env("KTSTR_CACHE_DIR", &cache)
            .env("CARGO_TARGET_DIR", tmp.path().join("target"));
        c
    };
    let o = run(&mut ktstr_in(&[
        "sched",
        "install",
        "scx_fake",
        "--path",
        src.to_str().unwrap(),
        "--json",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let done = json(&o);
    assert_eq!(done["version"], "0.3.0");
    assert_eq!(done["built"], true);
    let bin = done["binary"].as_str().unwrap();
    assert!(
        bin.ends_with("schedulers/scx_fake-0.3.0/bin/scx_fake"),
        "{bin}"
    );
    let ran = std::process::Command::new(bin).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "hi\n");
    // No staging directory is left behind.
    let left: Vec<_> = std::fs::read_dir(cache.join("schedulers"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, vec!["scx_fake-0.3.0".to_string()]);

    let o = run(&mut ktstr_in(&["sched", "list", "--json"]));
    let rows = json(&o);
    let fake = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "scx_fake");
    assert_eq!(fake.unwrap()["installed"]["version"], "0.3.0");

    let script = tmp.path().join("uses_fake.rhai");
    std::fs::write(
        &script,
        "scenario(\"f\", \"uses an installed scheduler\");\nscheduler(\"scx_fake\");\ncgroup(\"a\", 1, spin_wait());\n",
    )
    .unwrap();
    let o = run(&mut ktstr_in(&["check", script.to_str().unwrap()]));
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = run(ktstr()
        .args(["check", script.to_str().unwrap()])
        .env("KTSTR_CACHE_DIR", tmp.path().join("empty")));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("scheduler `scx_fake` not found"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_install_that_builds_no_such_binary_says_what_it_built() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("other");
    fake_crate(&src, "scx_other");
    let o = run(ktstr()
        .args([
            "sched",
            "install",
            "scx_wanted",
            "--path",
            src.to_str().unwrap(),
        ])
        .env("KTSTR_CACHE_DIR", tmp.path().join("cache"))
        .env("CARGO_TARGET_DIR", tmp.path().join("target")));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("no binary named `scx_wanted` (it installed: scx_other)"),
        "{err}"
    );
    let left = std::fs::read_dir(tmp.path().join("cache/schedulers"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "staging left behind");
}

#[test]
fn a_bad_schedulers_toml_is_refused_before_anything_boots_naming_the_field() {
    let tmp = tempfile::tempdir().unwrap();
    let toml = tmp.path().join("schedulers.toml");
    std::fs::write(
        &toml,
        "[scheduler.scx_simple]\nthresholds = { max_gapms = 10 }\n",
    )
    .unwrap();
    let o = run(ktstr()
        .args([
            "run",
            "scenarios/basic/two_cgroups.rhai",
            "--schedulers-toml",
        ])
        .arg(&toml)
        .env("KTSTR_CACHE_DIR", tmp.path().join("cache")));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("scheduler.scx_simple.thresholds.max_gapms: unknown threshold"),
        "{err}"
    );
    assert!(
        !tmp.path().join("cache/initramfs").exists(),
        "nothing may be built"
    );
}

#[test]
fn the_shipped_schedulers_toml_lists_samples_and_installable_schedulers() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(ktstr()
        .args(["sched", "list", "--json"])
        .env("KTSTR_CACHE_DIR", tmp.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = json(&o);
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for want in [
        "scx_bpfland",
        "scx_central",
        "scx_lavd",
        "scx_qmap",
        "scx_simple",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let simple = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "scx_simple")
        .unwrap();
    assert_eq!(simple["sample"], true);
}
