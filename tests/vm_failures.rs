//! Every way a guest can fail is reported as what it is, within the
//! timeout, and leaves no QEMU process and no scratch file behind. The
//! failures are real: the guest agent injects them on request (a sysrq
//! panic, PID 1 exiting, an agent that never answers, corrupt frames).

mod common;

use std::time::{Duration, Instant};

use common::{json, run, stderr, VmEnv};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

/// `vm probe --fault F --json` with a `timeout` in seconds; returns the
/// outcome, the exit code, stderr and the wall time.
fn faulty(env: &VmEnv, fault: &str, timeout: u64) -> (Value, Option<i32>, String, Duration) {
    let start = Instant::now();
    let o = run(&mut env.ktstr(&[
        "vm",
        "probe",
        "--backend",
        "qemu-tcg",
        "--fault",
        fault,
        "--timeout",
        &timeout.to_string(),
        "--json",
    ]));
    let took = start.elapsed();
    env.assert_no_leftovers();
    (
        json(&o)["outcome"].clone(),
        o.status.code(),
        stderr(&o),
        took,
    )
}

#[test]
fn guest_kernel_panic_is_reported_with_console_lines() {
    let Some(env) = VmEnv::new() else { return };
    let (outcome, code, err, took) = faulty(&env, "kernel-panic", 60);
    assert_eq!(code, Some(1));
    assert_eq!(outcome["end"]["kind"], json!("kernel_panic"), "{outcome:#}");
    assert_eq!(
        outcome["end"]["message"],
        json!("Kernel panic - not syncing: sysrq triggered crash")
    );
    assert!(err.contains("guest kernel panic"), "{err}");
    assert!(err.contains("last console lines"), "{err}");
    assert!(outcome["ready_ms"].is_number(), "the agent was ready first");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn agent_exiting_early_is_reported_with_its_status() {
    let Some(env) = VmEnv::new() else { return };
    let (outcome, code, err, took) = faulty(&env, "agent-exit", 60);
    assert_eq!(code, Some(1));
    assert_eq!(outcome["end"]["kind"], json!("agent_exited"), "{outcome:#}");
    assert_eq!(outcome["end"]["exit_code"], json!(3));
    assert!(err.contains("guest agent exited"), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

#[test]
fn agent_that_never_answers_times_out() {
    let Some(env) = VmEnv::new() else { return };
    let (outcome, code, err, took) = faulty(&env, "hang", 12);
    assert_eq!(code, Some(1));
    assert_eq!(
        outcome["end"],
        json!({"kind": "timeout", "after_s": 12.0, "agent_ready": false})
    );
    assert!(err.contains("never reported ready"), "{err}");
    assert!(took >= Duration::from_secs(12), "took {took:?}");
    assert!(took < Duration::from_secs(25), "took {took:?}");
}

#[test]
fn corrupt_frames_become_errors_and_good_ones_still_count() {
    let Some(env) = VmEnv::new() else { return };
    let (outcome, code, err, _) = faulty(&env, "garbage", 60);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(outcome["end"]["kind"], json!("completed"));
    let errors = outcome["protocol_errors"].to_string();
    assert!(errors.contains("failed its CRC32 check"), "{errors}");
    assert!(
        errors.contains("exceeds the 16777216-byte limit"),
        "{errors}"
    );
    // The valid frames after the garbage were read: the report arrived.
    assert!(
        outcome["report"]["layout"]["cpus"].is_array(),
        "{outcome:#}"
    );
}

#[test]
fn backend_failure_is_reported_with_qemus_own_words() {
    let Some(env) = VmEnv::new() else { return };
    let o = run(&mut env.ktstr(&[
        "vm",
        "probe",
        "--backend",
        "qemu-tcg",
        "--memory-mb",
        "100000000",
        "--json",
    ]));
    assert_eq!(o.status.code(), Some(1));
    let outcome = &json(&o)["outcome"];
    assert_eq!(
        outcome["end"],
        json!({"kind": "backend_failed", "status": "exit status: 1"})
    );
    let diag = outcome["backend_diagnostics"].as_str().unwrap();
    // Guest RAM is a memfd QEMU maps (and the host maps again for the
    // monitor, which is then only unavailable): QEMU's own refusal.
    assert!(
        diag.contains("unable to map backing store for guest RAM"),
        "{diag}"
    );
    assert!(stderr(&o).contains("qemu-tcg said:"), "{}", stderr(&o));
    env.assert_no_leftovers();
}

#[test]
fn ctrl_c_stops_the_vm_and_cleans_up() {
    let Some(env) = VmEnv::new() else { return };
    let mut child = env
        .ktstr(&[
            "vm",
            "probe",
            "--backend",
            "qemu-tcg",
            "--fault",
            "hang",
            "--timeout",
            "120",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ktstr");
    let tmp = env.tmp.path().to_string_lossy().into_owned();
    let until = Instant::now() + Duration::from_secs(60);
    while !common::processes_mentioning(&tmp)
        .iter()
        .any(|p| p.contains("qemu-system"))
    {
        assert!(Instant::now() < until, "qemu never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
    signal::kill(pid, Signal::SIGINT).expect("SIGINT to ktstr");
    let start = Instant::now();
    let status = child.wait().expect("wait");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "interrupted probe fails");
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("interrupted"), "{err}");
    env.assert_no_leftovers();
}

#[test]
fn auto_backend_probes_kvm_once_and_records_the_choice() {
    let Some(env) = VmEnv::new() else { return };
    let o = run(&mut env.ktstr(&["vm", "probe", "--backend", "auto", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let verdict = &v["probe"];
    assert!(verdict["reason"].is_string(), "{v:#}");
    assert!(verdict["own_kvm_reason"].is_string(), "{v:#}");
    let want = if verdict["own_kvm"] == json!(true) {
        "kvm"
    } else if verdict["qemu_kvm"] == json!(true) {
        "qemu-kvm"
    } else {
        "qemu-tcg"
    };
    assert_eq!(v["backend"], json!(want));
    assert_eq!(v["outcome"]["backend"], json!(want));
    let cached = env.cache.path().join("probe/kvm.json");
    assert!(cached.is_file());
    assert_eq!(
        v["initramfs"]["cached"],
        json!(false),
        "first use builds the base"
    );
    // The second run reuses the verdict instead of probing again, and the
    // initramfs base instead of building it again.
    let o = run(&mut env.ktstr(&["vm", "probe", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let again = json(&o);
    assert_eq!(again["probe"]["checked_at"], verdict["checked_at"]);
    assert_eq!(again["initramfs"]["cached"], json!(true));
    assert_eq!(again["initramfs"]["key"], v["initramfs"]["key"]);
    env.assert_no_leftovers();
}
