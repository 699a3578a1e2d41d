//! The thresholds a plan job is judged by: every layer in one place.

use std::collections::BTreeMap;

use ktstr_plan::thresholds::{self, Layers, Speed};
use ktstr_plan::Plan;
use ktstr_sched::SchedulersToml;
use ktstr_vmm::BackendKind;

/// How fast guests run on `kind`: TCG emulates, KVM does not.
pub fn speed(kind: BackendKind) -> Speed {
    match kind {
        BackendKind::QemuTcg => Speed::Emulated,
        BackendKind::Kvm | BackendKind::QemuKvm => Speed::Hardware,
    }
}

/// Built-in defaults (the gap scaled for the backend `kind`), then the
/// plan's scheduler's layer from `registry`, the plan's own, and
/// `command_line`'s.
pub fn in_force(
    plan: &Plan,
    registry: &SchedulersToml,
    command_line: &[(String, f64)],
    kind: BackendKind,
) -> BTreeMap<String, f64> {
    let scheduler = plan
        .scheduler
        .as_ref()
        .and_then(|s| registry.entry(&s.name))
        .map(|e| &e.thresholds);
    let layers = Layers {
        scheduler,
        scenario: Some(&plan.thresholds),
        command_line,
    };
    thresholds::in_force(&layers, speed(kind))
}
