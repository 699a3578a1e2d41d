//! The CLI on bad input and in bad surroundings: a closed stdout, devices
//! and link loops as scripts and catalogs, out-of-range numbers, missing
//! or corrupt manifests and cache entries. Each ends with a clear message
//! (or quietly, for a closed pipe), never a panic or a hang.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{json, ktstr, run, stderr, stdout};
use ktstr_kernel::manifest::Manifest;
use ktstr_kernel::{CacheLayout, KernelCache};

/// Runs `cmd` on another thread, failing the test after `limit`.
fn run_within(limit: Duration, mut cmd: Command) -> Output {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(cmd.output().expect("ktstr runs"));
    });
    rx.recv_timeout(limit)
        .unwrap_or_else(|_| panic!("ktstr ran longer than {limit:?}"))
}

#[test]
fn a_closed_stdout_ends_every_printing_command_quietly() {
    let cache = tempfile::tempdir().unwrap();
    let defs = cache.path().join("defs");
    let defs = defs.to_str().unwrap();
    let commands: [&[&str]; 9] = [
        &["list"],
        &["check", "scenarios/basic/two_cgroups.rhai"],
        &["check", "--json", "scenarios/basic/two_cgroups.rhai"],
        &["plan", "--json", "scenarios/basic/two_cgroups.rhai"],
        &["sched", "list"],
        &["kernel", "list", "--json"],
        &["defs", defs],
        &["completions", "bash"],
        &["topo"],
    ];
    for args in commands {
        // A pipe whose reader is gone before ktstr writes a byte.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = ktstr()
            .args(args)
            .env("KTSTR_CACHE_DIR", cache.path())
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(141), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?} printed: {err}");
    }
}

#[test]
fn a_device_or_huge_file_is_not_read_without_bound() {
    let o = run_within(Duration::from_secs(30), {
        let mut c = ktstr();
        c.args(["check", "/dev/zero"]);
        c
    });
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("larger than 1024 KiB"),
        "{}",
        stderr(&o)
    );
    let dir = tempfile::tempdir().unwrap();
    let long = dir.path().join("long.rhai");
    let line = format!("scenario(\"x\", \"y\"); {}nope();\n", " ".repeat(500_000));
    std::fs::write(&long, line).unwrap();
    let o = run(ktstr().args(["check", long.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).len() < 2000, "{} bytes echoed", stderr(&o).len());
}

#[test]
fn list_survives_link_loops_and_names_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("cat")).unwrap();
    std::fs::write(root.join("cat/good.rhai"), "//! A good one\n").unwrap();
    std::os::unix::fs::symlink(".", root.join("x")).unwrap();
    std::os::unix::fs::symlink(".", root.join("y")).unwrap();
    std::os::unix::fs::symlink("..", root.join("cat/up")).unwrap();
    std::fs::write(root.join("cat/latin1.rhai"), b"//! caf\xe9\n").unwrap();
    let o = run_within(Duration::from_secs(30), {
        let mut c = ktstr();
        c.args(["list", "--dir", root.to_str().unwrap()]);
        c
    });
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(stdout(&o), "cat/good  A good one\n");
    let err = stderr(&o);
    assert!(err.contains("cat/latin1.rhai: not UTF-8"), "{err}");
}

#[test]
fn numbers_are_checked_before_any_kernel_is_touched() {
    let cache = tempfile::tempdir().unwrap();
    for bad in ["--duration=-1000", "--duration=nan", "--duration=inf"] {
        let o = run(ktstr()
            .args(["run", bad, "scenarios/basic/two_cgroups.rhai"])
            .env("KTSTR_CACHE_DIR", cache.path()));
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("duration must be more than 0"),
            "{}",
            stderr(&o)
        );
    }
    let o = run(ktstr().args([
        "run",
        "--threshold",
        "max_gap_ms=nan",
        "scenarios/basic/two_cgroups.rhai",
    ]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("NaN is not a finite number"),
        "{}",
        stderr(&o)
    );
    let o = run(ktstr().args(["vm", "probe", "--timeout", "18446744073709551615"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 0);
}

#[test]
fn check_reads_the_manifests_a_run_would_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("schedulers.toml");
    let o = run(ktstr()
        .args(["check", "scenarios/basic/two_cgroups.rhai"])
        .arg("--schedulers-toml")
        .arg(&missing));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{}: No such file", missing.display())),
        "{err}"
    );
    assert_eq!(err.matches("No such file").count(), 1, "said twice: {err}");
    let bad = dir.path().join("kernels.toml");
    std::fs::write(&bad, "[kernel.x]\nversoin = \"6.12\"\n").unwrap();
    let o = run(ktstr()
        .args(["plan", "scenarios/basic/two_cgroups.rhai"])
        .arg("--kernels-toml")
        .arg(&bad));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("kernels.toml"), "{}", stderr(&o));
}

#[test]
fn a_topology_override_must_satisfy_the_scripts_constraints() {
    let o = run(ktstr().args([
        "check",
        "-t",
        "4n8l4c1t",
        "examples/gauntlet_constraints.rhai",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("topology 4n8l4c1t breaks the scenario's requires_smt()"),
        "{err}"
    );
    assert!(
        err.contains("--> examples/gauntlet_constraints.rhai:6:1"),
        "{err}"
    );
}

#[test]
fn plan_lists_every_cgroup_of_every_catalog_script() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let scripts = ["scenarios", "examples"]
        .iter()
        .flat_map(|d| ktstr_engine::catalog::list(&root.join(d)).unwrap());
    for entry in scripts {
        let o = run(ktstr().arg("plan").arg(&entry.path));
        assert!(o.status.success(), "{}", stderr(&o));
        let listed: Vec<String> = stdout(&o)
            .lines()
            .filter_map(|l| l.strip_prefix("cgroup     "))
            .map(|l| l.split(':').next().unwrap().to_string())
            .collect();
        let c = ktstr_engine::check_file(&entry.path, &Default::default());
        let plan = c.plan.unwrap();
        let declared: Vec<String> = plan.cgroups.iter().map(|g| g.name.clone()).collect();
        assert_eq!(listed, declared, "{}", entry.path.display());
    }
    let o = run(ktstr().args(["plan", "scenarios/cpuset/per_llc.rhai"]));
    for llc in ["llc0", "llc1", "llc2"] {
        assert!(stdout(&o).contains(&format!("cgroup     {llc}: 2 x spin_wait")));
    }
}

#[test]
fn what_a_script_prints_goes_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("p.rhai");
    std::fs::write(
        &script,
        "\u{feff}print(\"hello\");\nscenario(\"x\", \"y\");\ncgroup(\"a\", 1, spin_wait());\nclaim(results().all().iterations, at_least(1));\n",
    )
    .unwrap();
    let o = run(ktstr().args(["check", "--json", script.to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v[0]["output"]["lines"][0]["text"], "hello");
    let o = run(ktstr().args(["plan", "--json", script.to_str().unwrap()]));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json(&o)["name"], "x");
    assert!(
        stderr(&o).contains("p.rhai: print: hello"),
        "{}",
        stderr(&o)
    );
}

/// A cache entry `key` with every file an entry has, under `root`.
fn fake_entry(root: &Path, key: &str) -> Manifest {
    let cache = KernelCache::new(CacheLayout::at(root));
    *ktstr_kernel::cache::fake_entry(&cache, key, 1).manifest
}

fn write_manifest(root: &Path, m: &Manifest) {
    let path = root.join("kernels").join(&m.key).join("manifest.json");
    std::fs::write(path, serde_json::to_vec(m).unwrap()).unwrap();
}

fn kernel_path(cache: &Path, key: &str) -> Output {
    run(ktstr()
        .args(["kernel", "path", key])
        .env("KTSTR_CACHE_DIR", cache))
}

#[test]
fn kernel_path_says_why_an_entry_is_not_usable() {
    let cache = tempfile::tempdir().unwrap();
    let m = fake_entry(cache.path(), "k1");
    let o = kernel_path(cache.path(), "k1");
    assert!(o.status.success(), "{}", stderr(&o));
    let entry = cache.path().join("kernels/k1");
    std::fs::write(entry.join("vmlinux"), b"short").unwrap();
    let err = stderr(&kernel_path(cache.path(), "k1"));
    assert!(
        err.contains("its cache entry k1 is not usable: vmlinux is 5 bytes"),
        "{err}"
    );
    let mut empty = m.clone();
    empty.files.clear();
    write_manifest(cache.path(), &empty);
    let err = stderr(&kernel_path(cache.path(), "k1"));
    assert!(
        err.contains("not usable: the manifest does not record bzImage"),
        "{err}"
    );
    std::fs::write(entry.join("manifest.json"), b"{ not json").unwrap();
    let o = kernel_path(cache.path(), "k1");
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("k1 is not usable: ") && err.contains("manifest.json: "),
        "{err}"
    );
    assert!(!err.contains("no kernel matches"), "{err}");
}

#[test]
fn an_empty_cache_dir_variable_is_an_error() {
    let o = run(ktstr().args(["kernel", "list"]).env("KTSTR_CACHE_DIR", ""));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("KTSTR_CACHE_DIR is set but empty"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_scheduler_path_must_be_an_executable_program() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(
        &script,
        "scenario(\"x\", \"y\");\nscheduler(\"/etc/passwd\");\ncgroup(\"a\", 1, spin_wait());\n",
    )
    .unwrap();
    let o = run(ktstr().arg("check").arg(&script));
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("error: scheduler `/etc/passwd` is not executable (mode 644)"),
        "{err}"
    );
    assert!(err.contains("s.rhai:2:1"), "{err}");
}
