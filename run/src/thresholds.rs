//! The thresholds a plan job is judged by: every layer in one place.

use std::collections::BTreeMap;

use ktstr_plan::thresholds::{self, InForce, Layers, Speed};
use ktstr_plan::Plan;
use ktstr_sched::SchedulersToml;
use ktstr_vmm::BackendKind;

/// How fast guests run on `kind` when `busy` guest CPUs (this VM's and
/// those of VMs running beside it) share the host's cores: TCG emulates,
/// KVM does not.
pub fn speed(kind: BackendKind, busy: u64) -> Speed {
    match kind {
        BackendKind::QemuTcg => Speed::Emulated {
            busy_per_core: busy as f64 / host_cores() as f64,
        },
        BackendKind::Kvm | BackendKind::QemuKvm => Speed::Hardware,
    }
}

/// The host's CPUs available to this process.
pub fn host_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How many guest CPUs `plan` keeps busy on `topology`: its peak of
/// workers (and the agent), at most every CPU.
pub fn busy_vcpus(plan: &Plan, topology: &ktstr_topology::Topology) -> u64 {
    (plan.peak_workers() + 1).min(u64::from(topology.cpus()))
}

/// Built-in defaults (time thresholds scaled for the backend `kind` and
/// the `busy` guest CPUs sharing the host), then the plan's scheduler's
/// layer from `registry`, the plan's own, and `command_line`'s.
pub fn in_force(
    plan: &Plan,
    registry: &SchedulersToml,
    command_line: &[(String, f64)],
    kind: BackendKind,
    busy: u64,
) -> BTreeMap<String, f64> {
    let scheduler = plan.scheduler.as_ref().map(|s| s.name.as_str());
    explain(
        Some(&plan.thresholds),
        scheduler,
        registry,
        command_line,
        speed(kind, busy),
    )
    .into_iter()
    .map(|(k, f)| (k, f.value))
    .collect()
}

/// Every threshold in force with the layer it came from: the built-in
/// defaults at `speed`, `scheduler`'s entry in `registry`, the
/// `scenario`'s own values and `command_line`'s (`ktstr thresholds`).
pub fn explain(
    scenario: Option<&BTreeMap<String, f64>>,
    scheduler: Option<&str>,
    registry: &SchedulersToml,
    command_line: &[(String, f64)],
    speed: Speed,
) -> BTreeMap<String, InForce> {
    let layers = Layers {
        scheduler: scheduler
            .and_then(|s| registry.entry(s))
            .map(|e| &e.thresholds),
        scenario,
        command_line,
    };
    thresholds::explain(&layers, speed)
}
