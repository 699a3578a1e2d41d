//! `ktstr shell`: commands run in the guest with their output and status,
//! files given with -i arrive with their shared libraries, and the
//! interactive shell leaves the host terminal as it found it.

mod common;

use std::process::Command;

use common::{run, stderr, stdout, VmEnv};

#[test]
fn exec_prints_the_topologys_cpu_count_and_keeps_streams_apart() {
    let Some(env) = VmEnv::new() else { return };
    let o = run(&mut env.ktstr(&[
        "shell",
        "--backend",
        "qemu-tcg",
        "--topology",
        "1n2l2c2t",
        "--exec",
        "nproc; cut -d' ' -f2,3 /proc/mounts; echo to-stderr >&2; exit 7",
    ]));
    assert_eq!(o.status.code(), Some(7), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("8\n"), "{out}");
    // The agent mounted everything a scheduler test needs.
    for mount in [
        "/proc proc",
        "/sys sysfs",
        "/dev devtmpfs",
        "/tmp tmpfs",
        "/sys/fs/cgroup cgroup2",
        "/sys/kernel/debug debugfs",
    ] {
        assert!(out.lines().any(|l| l == mount), "{mount} missing:\n{out}");
    }
    assert!(!out.contains("to-stderr"), "stderr leaked into stdout");
    assert!(stderr(&o).contains("to-stderr"), "{}", stderr(&o));
    env.assert_no_leftovers();
}

#[test]
fn included_binaries_bring_their_libraries() {
    let Some(env) = VmEnv::new() else { return };
    // jq needs libjq and libonig beyond libc: neither is in the base image.
    let jq = "/usr/bin/jq";
    if !std::path::Path::new(jq).is_file() {
        assert!(!common::in_ci(), "CI=true and {jq} is missing");
        eprintln!("SKIP: {jq} not installed");
        return;
    }
    let data = env.tmp.path().join("input.json");
    std::fs::write(&data, r#"{"a":[1,2,39]}"#).unwrap();
    let include_data = format!("{}:/data/input.json", data.display());
    let o = run(&mut env.ktstr(&[
        "shell",
        "--backend",
        "qemu-tcg",
        "-i",
        jq,
        "-i",
        &include_data,
        "--exec",
        "jq '.a | add' /data/input.json && ls /lib/x86_64-linux-gnu/",
    ]));
    std::fs::remove_file(&data).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("42\n"), "{out}");
    assert!(out.contains("libjq.so.1"), "{out}");
    assert!(out.contains("libonig.so.5"), "{out}");
    env.assert_no_leftovers();
}

#[test]
fn bad_includes_fail_before_boot() {
    let Some(env) = VmEnv::new() else { return };
    let o = run(&mut env.ktstr(&["shell", "-i", "/no/such/file", "--exec", "true"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/no/such/file is not a file"),
        "{}",
        stderr(&o)
    );
    let o = run(env
        .ktstr(&["shell", "--exec", "true"])
        .env("KTSTR_GUEST_AGENT", "/nope"));
    assert!(
        stderr(&o).contains("KTSTR_GUEST_AGENT=/nope"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn interactive_shell_runs_typed_commands_and_restores_the_terminal() {
    let Some(env) = VmEnv::new() else { return };
    // script(1) gives ktstr a real terminal; the input arrives after boot.
    let ktstr = env!("CARGO_BIN_EXE_ktstr");
    let inner = format!(
        "stty -g > {tmp}/before; {ktstr} shell --backend qemu-tcg --topology 1n1l3c1t \
         --kernel {kernel}; echo \"status=$?\" > {tmp}/status; stty -g > {tmp}/after",
        tmp = env.tmp.path().display(),
        kernel = env.kernel,
    );
    let feed = "sleep 8; printf 'nproc\\r'; sleep 2; printf 'exit 5\\r'; sleep 6";
    let o = Command::new("sh")
        .arg("-c")
        .arg(format!("({feed}) | script -qec '{inner}' /dev/null"))
        .env("TMPDIR", env.tmp.path())
        .env("KTSTR_CACHE_DIR", env.cache.path())
        .output()
        .expect("script runs");
    let read = |name: &str| std::fs::read_to_string(env.tmp.path().join(name)).unwrap_or_default();
    let (before, after, status) = (read("before"), read("after"), read("status"));
    for name in ["before", "after", "status"] {
        let _ = std::fs::remove_file(env.tmp.path().join(name));
    }
    let out = stdout(&o);
    assert_eq!(status.trim(), "status=5", "{out}");
    assert!(out.contains("nproc\r\n3\r\n"), "{out:?}");
    assert!(!before.is_empty());
    assert_eq!(before, after, "terminal settings changed");
    env.assert_no_leftovers();
}
