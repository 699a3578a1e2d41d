//! Every work type runs in a real worker process (the guest agent binary
//! in `--worker` mode, here on the host) and reports real telemetry.

mod common;

use std::path::Path;
use std::time::Duration;

use common::worker::run;
use ktstr_guest_agent::workers::{Worker, WorkerSpec};
use ktstr_plan::policy::Policy;
use ktstr_plan::work::{Phase, Work};

fn all_work() -> Vec<(Work, bool)> {
    // (work, whether it measures wake latency)
    vec![
        (Work::SpinWait, false),
        (Work::YieldHeavy, false),
        (Work::Mixed, true),
        (Work::IoSync, false),
        (
            Work::Bursty {
                burst_ms: 5,
                sleep_ms: 5,
            },
            true,
        ),
        (Work::PipeIo, true),
        (Work::FutexPingPong, true),
        (Work::FutexFanOut { fanout: 4 }, true),
        (Work::CachePressure { size_kb: 256 }, false),
        (Work::CacheYield { size_kb: 64 }, false),
        (Work::CachePipe { size_kb: 64 }, true),
        (Work::ForkExit, false),
        (Work::NiceSweep, false),
        (Work::AffinityChurn, false),
        (Work::PolicyChurn, false),
        (Work::FanOutCompute { fanout: 3 }, false),
        (Work::PageFaultChurn { pages: 64 }, false),
        (Work::MutexContention { threads: 3 }, true),
        (
            Work::WakeChain {
                depth: 3,
                pipe: false,
            },
            true,
        ),
        (Work::ThunderingHerd { waiters: 4 }, true),
        (Work::PreemptStorm, true),
        // RtStarvation: in tests/work_types.rs (its FIFO hog would stall
        // the RT threads of other work running beside it).
    ]
}

#[test]
fn every_work_type_makes_progress_and_reports() {
    for (work, wakes) in all_work() {
        let name = work.name();
        let r = run(work, 300);
        assert_eq!(r.error, None, "{name}: {r:?}");
        assert!(r.iterations > 0, "{name} made no progress: {r:?}");
        assert!(r.wall_ms >= 250.0, "{name}: {r:?}");
        assert!(r.cpu_time_ms > 0.0, "{name}: {r:?}");
        assert!(!r.cpus_used.is_empty(), "{name}");
        assert!(
            r.max_gap_ms > 0.0 && r.max_gap_ms <= r.wall_ms,
            "{name}: {r:?}"
        );
        if wakes {
            assert!(r.wake_samples > 0, "{name} took no wake samples: {r:?}");
            assert!(r.wake_p50_us <= r.wake_p99_us && r.wake_p99_us <= r.wake_max_us);
        }
    }
}

#[test]
fn a_sequence_runs_its_phases_and_a_spinner_uses_its_cpu() {
    let seq = Work::Sequence {
        phases: vec![
            Phase {
                work: Work::SpinWait,
                secs: 0.1,
            },
            Phase {
                work: Work::PreemptStorm,
                secs: 0.1,
            },
        ],
    };
    let r = run(seq, 500);
    assert_eq!(r.error, None);
    assert!(r.wake_samples > 0, "the sleeping phase ran: {r:?}");
    // A spinner never sleeps: it runs, waits for a CPU (a loaded host gives
    // it less CPU, not sleep), or its CPU is stolen by the hypervisor under
    // this host (a CI machine's vCPU lost 54 ms of 398 that way, invisible
    // to the run delay): the steal of the CPUs it used is counted as such.
    let (spin, steal) = common::worker::run_counting_steal(Work::SpinWait, 400);
    assert!(
        spin.cpu_time_ms + spin.run_delay_ms + steal > 0.9 * spin.wall_ms
            && spin.off_cpu_ms < spin.run_delay_ms + steal + 0.1 * spin.wall_ms,
        "a spinner is on CPU or waiting for one (steal {steal} ms): {spin:?}"
    );
    let sleeper = run(
        Work::Bursty {
            burst_ms: 1,
            sleep_ms: 20,
        },
        400,
    );
    assert!(
        sleeper.off_cpu_ms > 0.5 * sleeper.wall_ms,
        "mostly asleep: {sleeper:?}"
    );
}

#[test]
fn a_worker_that_cannot_set_up_reports_why() {
    let spec = WorkerSpec {
        cgroup: "t".into(),
        index: 3,
        work: Work::SpinWait,
        nice: 0,
        policy: Policy::Normal,
        cpus: Some(vec![4000]),
        comm: None,
    };
    let exe = Path::new(env!("CARGO_BIN_EXE_ktstr-guest-agent"));
    let mut w = Worker::spawn(exe, spec).unwrap();
    w.start().unwrap();
    let r = w.stop(Duration::from_secs(10));
    assert_eq!(r.index, 3);
    assert!(
        r.error.as_deref().unwrap_or("").contains("affinity"),
        "{r:?}"
    );
}

/// A worker pinned by its spec to another CPU than the one it starts on
/// reports only the CPU it was pinned to, and no migration: the probe
/// starts after the pinning.
#[test]
fn a_pinned_worker_reports_no_migration_from_before_its_pinning() {
    use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
    use nix::unistd::Pid;
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cpus < 2 {
        eprintln!("not run: one CPU, nothing to move from");
        return;
    }
    // The child starts where this thread is allowed: CPU 0 only.
    let before = sched_getaffinity(Pid::from_raw(0)).unwrap();
    let mut only0 = CpuSet::new();
    only0.set(0).unwrap();
    sched_setaffinity(Pid::from_raw(0), &only0).unwrap();
    let spec = WorkerSpec {
        cgroup: "t".into(),
        index: 0,
        work: Work::SpinWait,
        nice: 0,
        policy: Policy::Normal,
        cpus: Some(vec![1]),
        comm: None,
    };
    let exe = Path::new(env!("CARGO_BIN_EXE_ktstr-guest-agent"));
    let mut w = Worker::spawn(exe, spec).expect("spawn worker");
    sched_setaffinity(Pid::from_raw(0), &before).unwrap();
    w.start().expect("start");
    std::thread::sleep(Duration::from_millis(500));
    let r = w.stop(Duration::from_secs(10));
    assert_eq!(r.cpus_used, [1], "{r:?}");
    assert_eq!(r.migrations, 0, "{r:?}");
}

/// `io_sync` keeps writing and syncing a file that never grows past 1 MiB
/// (the guest's /tmp lives in its RAM).
#[test]
fn io_sync_rewrites_a_bounded_file() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = WorkerSpec {
        cgroup: "t".into(),
        index: 0,
        work: Work::IoSync,
        nice: 0,
        policy: Policy::Normal,
        cpus: None,
        comm: None,
    };
    let exe = Path::new(env!("CARGO_BIN_EXE_ktstr-guest-agent"));
    // The worker's temp dir comes from TMPDIR, inherited from here.
    std::env::set_var("TMPDIR", tmp.path());
    let mut w = Worker::spawn(exe, spec).expect("spawn worker");
    std::env::remove_var("TMPDIR");
    w.start().expect("start");
    let mut largest = 0u64;
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        for e in std::fs::read_dir(tmp.path()).unwrap().flatten() {
            largest = largest.max(e.metadata().map_or(0, |m| m.len()));
        }
    }
    let r = w.stop(Duration::from_secs(10));
    assert!(r.error.is_none(), "{r:?}");
    assert!(
        r.iterations > 256,
        "too few writes to tell: {}",
        r.iterations
    );
    assert!(largest <= 1 << 20, "the file grew to {largest} bytes");
    assert!(largest > 0, "no file was seen");
}
