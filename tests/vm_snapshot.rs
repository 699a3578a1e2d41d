//! Jobs started from a snapshot of the booted guest: they judge like
//! cold boots (the catalog's basic and cpuset scenarios under EEVDF and
//! scx_simple, and scx_qmap's injected stall and error), a restored
//! guest's wall clock is the host's, two restored guests draw different
//! random numbers, and a corrupt snapshot is taken again, never
//! restored.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{run, stderr, stdout, VmEnv};
use ktstr_plan::verdict::Outcome;
use ktstr_run::snapshot::BootMode;
use ktstr_run::Sidecar;

fn now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `ktstr shell --exec CMD` on TCG: (stdout, stderr).
fn exec(env: &VmEnv, cmd: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["shell", "--backend", "qemu-tcg", "--exec", cmd];
    args.extend_from_slice(extra);
    let o = run(&mut env.ktstr(&args));
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    (stdout(&o), stderr(&o))
}

/// The snapshot directories of the test's private cache.
fn snapshots(env: &VmEnv) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(env.cache.path().join("snapshots"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir() && !p.file_name().unwrap().to_string_lossy().starts_with('.')
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn restored_guests_keep_the_hosts_time_and_draw_their_own_random_numbers() {
    let Some(env) = VmEnv::new() else { return };
    env.isolate_snapshots();
    let cmd = "cat /proc/sys/kernel/random/uuid; date +%s";
    let (first, err) = exec(&env, cmd, &[]);
    assert!(err.contains("taking a snapshot"), "{err}");
    assert_eq!(snapshots(&env).len(), 1);
    // Let the snapshot's wall clock fall well behind the host's.
    std::thread::sleep(Duration::from_secs(3));
    let mut uuids = vec![first.lines().next().unwrap().to_string()];
    for _ in 0..2 {
        let before = now_s();
        let (out, err) = exec(&env, cmd, &[]);
        let after = now_s();
        assert!(
            !err.contains("taking a snapshot"),
            "restored, not taken: {err}"
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        let guest: f64 = lines[1].parse().unwrap();
        // `date +%s` truncates: the guest's second lies within 1 s of
        // the span the command ran in.
        assert!(
            guest >= before.floor() - 1.0 && guest <= after + 1.0,
            "guest time {guest}, host {before:.1}..{after:.1}"
        );
        uuids.push(lines[0].to_string());
    }
    assert_eq!(snapshots(&env).len(), 1);
    let distinct: std::collections::BTreeSet<_> = uuids.iter().collect();
    assert_eq!(distinct.len(), 3, "{uuids:?}");
    // --no-snapshot boots cold.
    let (_, err) = exec(&env, cmd, &["--no-snapshot"]);
    assert!(!err.contains("snapshot"), "{err}");
    env.assert_no_leftovers();
}

#[test]
fn a_truncated_snapshot_is_taken_again_and_another_memory_size_takes_its_own() {
    let Some(env) = VmEnv::new() else { return };
    env.isolate_snapshots();
    exec(&env, "true", &[]);
    let dirs = snapshots(&env);
    assert_eq!(dirs.len(), 1);
    let state = dirs[0].join("state");
    let len = state.metadata().unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&state)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (out, err) = exec(&env, "echo restored", &[]);
    assert_eq!(out.trim(), "restored");
    assert!(err.contains("snapshot discarded and taken again"), "{err}");
    assert!(err.contains("state holds"), "{err}");
    // Taken again whole: the file is as long as its new manifest says.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dirs[0].join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        state.metadata().unwrap().len(),
        manifest["state"]["size"].as_u64().unwrap()
    );
    assert!(state.metadata().unwrap().len() > len / 2);
    let ram0 = dirs[0].join("ram0");
    let f = std::fs::OpenOptions::new().write(true).open(&ram0).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, b"corrupt", 1 << 20).unwrap();
    let (_, err) = exec(&env, "true", &[]);
    assert!(err.contains("does not match its manifest"), "{err}");
    // Another input of the key (memory size) is another snapshot.
    let (_, err) = exec(&env, "true", &["--memory-mb", "384"]);
    assert!(err.contains("taking a snapshot"), "{err}");
    assert_eq!(snapshots(&env).len(), 2);
    env.assert_no_leftovers();
}

/// job label → (outcome, first line of the first reason), and whether
/// every job was restored (true) or booted (false).
fn verdicts(sidecars: &[Sidecar]) -> (BTreeMap<String, (Outcome, String)>, Vec<bool>) {
    let mut map = BTreeMap::new();
    let mut restored = Vec::new();
    for s in sidecars {
        let first = s
            .verdict
            .reasons
            .first()
            .map_or("", |r| r.lines().next().unwrap_or(""));
        // The numbers in a failure differ run to run; its kind must not. A
        // scheduler's death is its kernel exit kind, whether the agent
        // saw it attach first (`exited`) or not (`failed`).
        let kind = match first
            .strip_prefix("scheduler exited: ")
            .or_else(|| first.strip_prefix("scheduler failed: "))
        {
            Some(exit) => exit.split('(').next().unwrap_or("").trim().to_string(),
            None => first.split(':').next().unwrap_or("").to_string(),
        };
        map.insert(s.job.clone(), (s.verdict.outcome, kind));
        restored.push(matches!(s.boot, BootMode::Restored { .. }));
    }
    (map, restored)
}

fn gauntlet(env: &VmEnv, runs: &Path, extra: &[&str]) -> Vec<Sidecar> {
    let mut args = vec![
        "gauntlet",
        "tests/scenarios/snapshot_equivalence.toml",
        "--backend",
        "qemu-tcg",
        "--jobs",
        "2",
    ];
    args.extend_from_slice(extra);
    let o = run(env.ktstr(&args).env("KTSTR_RUNS_DIR", runs));
    assert!(o.status.code().is_some(), "{}", stderr(&o));
    common::all_sidecars(runs)
}

#[test]
fn jobs_from_snapshots_judge_like_cold_boots() {
    let Some(env) = VmEnv::new() else { return };
    let cold_runs = env.cache.path().join("cold");
    let warm_runs = env.cache.path().join("warm");
    let cold = gauntlet(&env, &cold_runs, &["--no-snapshot"]);
    let warm = gauntlet(&env, &warm_runs, &[]);
    assert_eq!(cold.len(), 22);
    let (cold_v, cold_boot) = verdicts(&cold);
    let (warm_v, warm_boot) = verdicts(&warm);
    assert!(cold_boot.iter().all(|r| !r), "cold runs booted");
    assert!(warm_boot.iter().all(|r| *r), "every job restored");
    assert_eq!(cold_v, warm_v);
    assert!(
        cold_v.values().all(|(o, _)| *o == Outcome::Pass),
        "{cold_v:?}"
    );
    // scx_qmap's injected stall and error fail the same way either way.
    let mut each = Vec::new();
    for args in [&["--no-snapshot"][..], &[]] {
        let _ = std::fs::remove_dir_all(env.cache.path().join("runs"));
        let mut full = vec!["examples/qmap_stall.rhai", "examples/qmap_error.rhai"];
        full.extend_from_slice(args);
        let (code, out, sidecars) = env.run_tcg(&full);
        assert_eq!(code, Some(1), "{out}");
        let (v, restored) = verdicts(&sidecars);
        assert_eq!(restored, vec![args.is_empty(); 2], "{out}");
        assert!(v.values().all(|(o, _)| *o == Outcome::Fail), "{v:?}");
        each.push(v);
    }
    assert_eq!(each[0], each[1]);
    env.assert_no_leftovers();
}
