//! The host-side monitor on real VMs: run queues read from guest memory
//! while the guest runs (pinned spinners counted per CPU), a stalling
//! scheduler caught by the monitor before the kernel's watchdog.

mod common;

use common::VmEnv;
use ktstr_plan::monitor::MonitorReport;
use ktstr_plan::verdict::Outcome;
use ktstr_run::Sidecar;

/// `ktstr run ARGS --backend qemu-tcg`: exit code, output, the one
/// sidecar.
fn ktstr_run(env: &VmEnv, args: &[&str]) -> (Option<i32>, String, Sidecar) {
    let (code, out, mut sidecars) = env.run_tcg(args);
    assert_eq!(sidecars.len(), 1, "{out}");
    (code, out, sidecars.remove(0))
}

/// The most frequent `nr_running` of `cpu` over the samples between 1 s
/// into the run and 0.5 s before its end.
fn usual_nr_running(m: &MonitorReport, cpu: usize) -> u32 {
    let end = m.workers_ms.expect("the run's length") - 500;
    let mut counts = std::collections::BTreeMap::new();
    for s in m
        .samples
        .iter()
        .filter(|s| s.at_ms >= 1000 && s.at_ms <= end)
    {
        *counts.entry(s.cpus[cpu].nr_running).or_insert(0u32) += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(_, n)| n)
        .map(|(v, _)| v)
        .expect("samples in the window")
}

#[test]
fn the_host_reads_each_cpus_run_queue_length_from_guest_memory() {
    let Some(env) = VmEnv::new() else { return };
    let (code, out, s) = ktstr_run(&env, &["tests/scenarios/monitor_pins.rhai"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(s.verdict.outcome, Outcome::Pass, "{:?}", s.verdict);
    let m =
        s.vm.monitor
            .as_ref()
            .expect("the sidecar holds the monitor");
    assert_eq!(m.unavailable, None, "{m:?}");
    assert_eq!(m.period_ms, 100);
    // 6 s at 100 ms: about 60 samples of the workers' run, each of 4 CPUs.
    let during = m.samples.iter().filter(|s| (0..6000).contains(&s.at_ms));
    assert!(during.count() >= 40, "{} samples", m.samples.len());
    assert!(m.samples.iter().all(|s| s.cpus.len() == 4));
    for (cpu, pinned) in [(1, 1), (2, 2), (3, 3)] {
        assert_eq!(usual_nr_running(m, cpu), pinned, "CPU {cpu}");
    }
    // The CPUs with spinners were running one of them, not idling; each
    // run queue's clock moved forward.
    let mid: Vec<_> = m
        .samples
        .iter()
        .filter(|s| (1000..5000).contains(&s.at_ms))
        .collect();
    for cpu in 1..4 {
        let busy = mid.iter().filter(|s| s.cpus[cpu].curr_pid > 0).count();
        assert!(
            busy * 10 >= mid.len() * 9,
            "CPU {cpu}: {busy}/{}",
            mid.len()
        );
        let first = mid.first().unwrap().cpus[cpu].clock_ns;
        let last = mid.last().unwrap().cpus[cpu].clock_ns;
        assert!(last > first + 1_000_000_000, "CPU {cpu}: {first} .. {last}");
    }
    // Its figures are claim metrics too: LLC {2, 3} holds 2 against 3
    // spinners, LLC {0, 1} at most 1 against 1.
    let ratio = m.metric("rq_imbalance").unwrap();
    assert!((1.2..=2.0).contains(&ratio), "{ratio}");
    assert_eq!(m.metric("cpu_stall_ms").unwrap(), 0.0);
}

#[test]
fn a_stalling_scheduler_is_caught_by_the_monitor_naming_the_cpu() {
    let Some(env) = VmEnv::new() else { return };
    // scx_qmap -t 3 drops every third user task it is given: those tasks
    // are runnable on a CPU that never runs them, until the kernel's
    // watchdog (5 s) kills the scheduler.
    let (code, out, s) = ktstr_run(&env, &["examples/qmap_stall.rhai"]);
    assert_eq!(code, Some(1), "{out}");
    let stall = s
        .verdict
        .reasons
        .iter()
        .find(|r| r.starts_with("CPU ") && r.contains("stalled"))
        .unwrap_or_else(|| panic!("no monitor stall in {:?}", s.verdict));
    assert!(stall.contains("host-side monitor"), "{stall}");
    // The stall lasted past the threshold before it ended, so the monitor
    // saw it before the watchdog ended it by killing the scheduler.
    let m = s.vm.monitor.as_ref().unwrap();
    let (from, to) = m.judged_for_stalls();
    let longest = m.stalls(from, to)[0].clone();
    assert!(
        longest.ms as f64 > s.verdict.thresholds["max_cpu_stall_ms"],
        "{longest:?}"
    );
    assert!(
        stall.starts_with(&format!("CPU {} stalled", longest.cpu)),
        "{stall}"
    );
    let died = s
        .telemetry
        .scheduler
        .iter()
        .any(|e| e.state == "exited" && e.detail.contains("runnable task stall"));
    assert!(died, "{:?}", s.telemetry.scheduler);
    // The failure dump: scx_qmap's global data, read from the guest while
    // the dead scheduler still held its maps, named from its BTF ...
    let g = s.telemetry.bpf_globals.as_ref().expect("a failure dump");
    assert_eq!(g.when, "scheduler died", "{g:?}");
    let var = |map: &str, name: &str| {
        g.globals
            .iter()
            .find(|v| v.map.ends_with(map) && v.name == name)
            .unwrap_or_else(|| panic!("no {name} in {g:?}"))
    };
    assert!(var(".bss", "nr_enqueued").number.is_some());
    assert!(var(".bss", "____qmap_enqueue.user_cnt").number.unwrap() > 0.0);
    assert_eq!(var(".rodata", "stall_user_nth").value, "3");
    // The scheduler's own exit record, a struct, names the watchdog.
    assert!(var(".data", "uei").value.contains("runnable task stall"));
    // ... and a digest of it, with each CPU's last state, in the notes.
    let digest = s
        .verdict
        .notes
        .iter()
        .find(|n| n.starts_with("scheduler data at scheduler died:"))
        .unwrap_or_else(|| panic!("{:?}", s.verdict.notes));
    assert!(
        digest.contains("nr_dequeued=") || digest.contains("nr_enqueued="),
        "{digest}"
    );
    assert!(digest.contains("user_cnt="), "{digest}");
    assert!(
        s.verdict.notes.iter().any(|n| n.starts_with("CPUs at ")),
        "{:?}",
        s.verdict.notes
    );
    assert!(
        out.contains("note: scheduler data at scheduler died"),
        "{out}"
    );
}
