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
