//! The newer work types, each in a real worker process (the guest agent
//! in `--worker` mode, here on the host), each showing through its
//! counters and telemetry that it does what its name says. The ones that
//! need SMT siblings, two NUMA nodes or a cgroup of their own are shown in
//! a VM (`tests/vm_verdicts.rs`); here they must refuse clearly when the
//! host lacks what they need.

mod common;

use std::path::Path;

use common::worker::run;
use ktstr_plan::work::{CustomStep, Work};
use ktstr_proto::WorkerReport;

fn counter(r: &WorkerReport, name: &str) -> u64 {
    r.counters.get(name).copied().unwrap_or(0)
}

/// Runs `work` and checks it progressed without error.
fn ran(work: Work, millis: u64) -> WorkerReport {
    let name = work.name();
    let r = run(work, millis);
    assert_eq!(r.error, None, "{name}: {r:?}");
    assert!(r.iterations > 0, "{name} made no progress: {r:?}");
    r
}

#[test]
fn compute_work_computes() {
    // On CPU or waiting for one, or its CPU stolen by the hypervisor under
    // this host (a CI machine showed 71 ms of 294 neither).
    let (r, steal) = common::worker::run_counting_steal(Work::AluHot, 300);
    assert_eq!(r.error, None, "{r:?}");
    assert!(r.iterations > 0, "{r:?}");
    assert!(
        r.cpu_time_ms + r.run_delay_ms + steal > 0.8 * r.wall_ms,
        "steal {steal} ms: {r:?}"
    );
    let r = ran(Work::IpcVariance { size_kb: 4096 }, 300);
    assert_eq!(counter(&r, "alu_phases"), r.iterations, "{r:?}");
    assert_eq!(counter(&r, "chase_phases"), r.iterations, "{r:?}");
    let r = ran(Work::FanOutCompute { fanout: 3 }, 300);
    assert_eq!(counter(&r, "rounds"), r.iterations, "{r:?}");
    assert!(r.wake_samples > 0, "the messenger woke its threads: {r:?}");
    let r = ran(Work::IdleChurn { sleep_us: 2000 }, 300);
    assert!(r.off_cpu_ms > 0.5 * r.wall_ms, "mostly idle: {r:?}");
    assert!(r.wake_samples > 10, "{r:?}");
}

#[test]
fn io_work_does_io() {
    let r = ran(Work::IoSyncWrite { block_kb: 16 }, 300);
    assert_eq!(counter(&r, "bytes_written"), r.iterations * 16 * 1024);
    let r = ran(Work::IoRandRead { size_kb: 1024 }, 300);
    assert_eq!(counter(&r, "reads"), r.iterations);
    let r = ran(Work::IoConvoy { threads: 4 }, 400);
    assert_eq!(counter(&r, "appends"), r.iterations);
    // Each append waited for the lock the other three hold in turn.
    assert!(r.wake_samples > 0 && r.wake_p99_us > 0.0, "{r:?}");
}

#[test]
fn wake_work_wakes() {
    let r = ran(Work::AsymmetricWaker { work_us: 500 }, 400);
    assert_eq!(counter(&r, "wakes_sent"), r.iterations);
    assert!(r.wake_samples > 0, "{r:?}");
    let r = ran(Work::EpollStorm { fds: 16 }, 300);
    assert!(counter(&r, "epoll_events") > 0, "{r:?}");
    assert!(r.wake_samples > 0, "{r:?}");
    let r = ran(Work::ProducerConsumerImbalance { consumers: 2 }, 400);
    let consumed = counter(&r, "items_consumed");
    assert!(consumed > 0 && consumed <= r.iterations, "{r:?}");
    let r = ran(
        Work::WakeChain {
            depth: 4,
            pipe: true,
        },
        300,
    );
    assert!(r.wake_samples > 0, "{r:?}");
    let r = ran(Work::SignalStorm, 300);
    let (sent, handled) = (counter(&r, "signals_sent"), counter(&r, "signals_handled"));
    assert!(handled > 0 && handled <= sent, "{r:?}");
}

#[test]
fn priority_work_uses_the_classes_it_names() {
    let r = ran(Work::PolicyChurn, 300);
    for policy in [0, 3, 5, 1, 2] {
        // SCHED_OTHER, BATCH, IDLE, FIFO, RR
        assert!(
            counter(&r, &format!("policy{policy}")) > 0,
            "{policy}: {r:?}"
        );
    }
    let r = ran(Work::PreemptStorm, 300);
    assert!(counter(&r, "fifo_wakeups") > 10, "{r:?}");
    let r = ran(Work::PriorityInversion { spinners: 1 }, 600);
    assert!(counter(&r, "holder_acquisitions") > 0, "{r:?}");
    assert_eq!(counter(&r, "waiter_acquisitions"), r.iterations);
    assert!(r.wake_samples > 0, "the FIFO waiter's waits: {r:?}");
    // Last, and in this test only: a FIFO hog exhausts its CPU's RT
    // budget, which would stall the FIFO threads above if they ran beside
    // it. The worker shares its CPU with the hog: it progresses only in
    // what RT throttling leaves (50 ms of every second by default), and
    // only on that CPU.
    let r = ran(Work::RtStarvation, 1500);
    assert_eq!(r.cpus_used, [counter(&r, "hog_cpu") as u32], "{r:?}");
    assert!(r.max_gap_ms > 100.0, "the hog held the CPU: {r:?}");
}

#[test]
fn custom_work_runs_its_steps() {
    let steps = vec![
        CustomStep::Spin { us: 200 },
        CustomStep::Sleep { us: 500 },
        CustomStep::Yield,
        CustomStep::Io { kb: 4 },
        CustomStep::FutexWait { us: 300 },
    ];
    let r = ran(Work::Custom { steps }, 400);
    // Two blocking steps per pass, each a wake sample (the last pass may
    // have been cut short by the stop).
    assert!(r.wake_samples + 2 >= 2 * r.iterations, "{r:?}");
    // A pass lasts at least its 1 ms of sleeping and spinning.
    assert!(r.iterations <= 400, "{r:?}");
}

/// Work that needs what this host may lack says so.
#[test]
fn placement_work_refuses_a_host_without_what_it_needs() {
    let layout = ktstr_topology::sysfs::read_layout(Path::new("/sys")).unwrap();
    if layout.numa_nodes.len() < 2 {
        let r = run(Work::NumaMigrationChurn, 100);
        assert!(
            r.error.as_deref().unwrap_or("").contains("one NUMA node"),
            "{r:?}"
        );
    }
    if layout.smt_siblings.iter().all(|s| s.len() < 2) {
        let r = run(Work::SmtSiblingSpin, 100);
        assert!(
            r.error
                .as_deref()
                .unwrap_or("")
                .contains("no two SMT siblings"),
            "{r:?}"
        );
    }
}
