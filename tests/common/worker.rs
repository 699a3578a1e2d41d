//! One work type in a real worker process (the guest agent binary in
//! `--worker` mode, here on the host).

use std::path::Path;
use std::time::Duration;

use ktstr_guest_agent::workers::{Worker, WorkerSpec};
use ktstr_plan::policy::Policy;
use ktstr_plan::work::Work;
use ktstr_proto::WorkerReport;

/// Runs `work` for `millis` ms in a worker of cgroup `t` and returns its
/// report.
pub fn run(work: Work, millis: u64) -> WorkerReport {
    let spec = WorkerSpec {
        cgroup: "t".into(),
        index: 0,
        work,
        nice: 0,
        policy: Policy::Normal,
        cpus: None,
        comm: Some("ktstr-test".into()),
    };
    let exe = Path::new(env!("CARGO_BIN_EXE_ktstr-guest-agent"));
    let mut w = Worker::spawn(exe, spec).expect("spawn worker");
    w.start().expect("start");
    std::thread::sleep(Duration::from_millis(millis));
    w.stop(Duration::from_secs(10))
}

/// [`run`], and the hypervisor's steal time on the CPUs the worker used
/// meanwhile, ms: time the host's own vCPUs were not run, which the
/// worker sees neither as CPU time nor as run delay.
pub fn run_counting_steal(work: Work, millis: u64) -> (WorkerReport, f64) {
    let before = steal_ms_per_cpu();
    let r = run(work, millis);
    let after = steal_ms_per_cpu();
    let at = |m: &std::collections::BTreeMap<u32, f64>, c: u32| m.get(&c).copied().unwrap_or(0.0);
    let steal = r
        .cpus_used
        .iter()
        .map(|&c| at(&after, c) - at(&before, c))
        .sum();
    (r, steal)
}

/// Each host CPU's steal time so far (`/proc/stat`, in USER_HZ ticks of
/// 10 ms), ms.
fn steal_ms_per_cpu() -> std::collections::BTreeMap<u32, f64> {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    stat.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let cpu: u32 = f.next()?.strip_prefix("cpu")?.parse().ok()?;
            let steal: f64 = f.nth(7)?.parse().ok()?;
            Some((cpu, steal * 10.0))
        })
        .collect()
}
