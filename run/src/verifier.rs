//! The verifier sweep (`ktstr verifier`): load one scheduler on each
//! kernel × topology and report, for every BPF program, how many
//! instructions the kernel's verifier processed to accept it (schedulers
//! size loops from CPU counts, so the topology matters), or which program
//! it rejected and why; and compare a sweep with an earlier one.

use std::collections::BTreeMap;

use ktstr_kernel::{BootKernel, Observer};
use ktstr_plan::results::BpfProgram;
use ktstr_plan::sched_exit::verifier_rejection;
use ktstr_plan::verdict::Outcome;
use ktstr_plan::{Plan, SchedulerSpec};
use ktstr_topology::Topology;
use ktstr_vmm::probe::BackendChoice;
use serde::{Deserialize, Serialize};

use crate::error::RunError;
use crate::job::{JobRequest, Runner};

/// The verifier's limit on processed instructions per program.
pub const VERIFIER_INSN_LIMIT: u32 = 1_000_000;

/// How one kernel × topology went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CellOutcome {
    /// Every program loaded; the scheduler attached.
    Loaded {
        /// Each program, by name.
        programs: Vec<BpfProgram>,
    },
    /// The verifier rejected a program.
    Rejected {
        /// The program (None when the output did not say).
        program: Option<String>,
        /// The verifier's one-line reason and its log's last lines.
        message: String,
    },
    /// The scheduler did not attach for another reason (or the VM failed).
    Failed {
        /// Why.
        reason: String,
    },
}

/// One kernel × topology of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifierCell {
    /// The kernel (its cache key or image path).
    pub kernel: String,
    /// The guest's topology.
    pub topology: Topology,
    /// What happened.
    pub outcome: CellOutcome,
}

/// A sweep: one scheduler over kernels × topologies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifierReport {
    /// The scheduler and its arguments.
    pub scheduler: SchedulerSpec,
    /// Every cell, kernels outer, topologies inner.
    pub cells: Vec<VerifierCell>,
}

/// A plan that only attaches `scheduler` and holds it for a second.
fn attach_only(scheduler: &SchedulerSpec, topology: Topology) -> Plan {
    let mut plan = Plan::bare(
        "verifier",
        "ktstr verifier",
        "load the scheduler and read its programs".into(),
        1.0,
        topology,
    );
    plan.scheduler = Some(scheduler.clone());
    plan
}

/// Loads `scheduler` on `kernel` with `topology` and reads its programs.
pub fn sweep_cell(
    runner: &Runner,
    scheduler: &SchedulerSpec,
    kernel: &BootKernel,
    topology: Topology,
    backend: BackendChoice,
    observer: &dyn Observer,
) -> Result<VerifierCell, RunError> {
    let mut req = JobRequest::new(attach_only(scheduler, topology), topology, kernel.clone());
    req.backend = backend;
    req.monitor_ms = None;
    let release = crate::job::kernel_release(kernel).map(str::to_string);
    let result = runner.run(req, observer)?;
    let attached = result
        .telemetry
        .scheduler
        .iter()
        .any(|s| s.state == "attached");
    let outcome = if attached && !result.telemetry.bpf_programs.is_empty() {
        CellOutcome::Loaded {
            programs: result.telemetry.bpf_programs.clone(),
        }
    } else if let Some((program, message)) = rejection(&result.telemetry, release.as_deref()) {
        CellOutcome::Rejected { program, message }
    } else {
        let reason = match result.verdict.outcome {
            Outcome::Pass => "the scheduler attached but no BPF program was found".into(),
            _ => result.verdict.reasons.join("; "),
        };
        CellOutcome::Failed { reason }
    };
    Ok(VerifierCell {
        kernel: crate::vm::kernel_label(kernel),
        topology,
        outcome,
    })
}

/// The rejected program and the verifier's message, from the scheduler's
/// failure detail.
fn rejection(
    t: &crate::telemetry::Telemetry,
    release: Option<&str>,
) -> Option<(Option<String>, String)> {
    t.scheduler.iter().find_map(|s| {
        let line = verifier_rejection(&s.detail, release)?;
        let program = s.detail.lines().find_map(|l| {
            let rest = l.split_once("prog '")?.1;
            let (name, tail) = rest.split_once('\'')?;
            tail.contains("load failed").then(|| name.to_string())
        });
        Some((program, line))
    })
}

/// One program's change between two sweeps of the same kernel and
/// topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramChange {
    /// Kernel, topology and program.
    pub cell: String,
    /// The program.
    pub program: String,
    /// Instructions before (None: not loaded then).
    pub before: Option<u32>,
    /// Instructions now (None: rejected or gone now).
    pub after: Option<u32>,
    /// Whether this change fails the comparison: grown past the ratio, or
    /// newly rejected.
    pub regression: bool,
}

/// Compares `now` with `before` cell by cell: every program whose count
/// changed, and whether it grew by more than `max_ratio` or a cell that
/// loaded is now rejected.
pub fn compare(
    before: &VerifierReport,
    now: &VerifierReport,
    max_ratio: f64,
) -> Vec<ProgramChange> {
    let key = |c: &VerifierCell| format!("{} {}", c.kernel, c.topology);
    let counts = |c: &VerifierCell| -> BTreeMap<String, u32> {
        match &c.outcome {
            CellOutcome::Loaded { programs } => programs
                .iter()
                .map(|p| (p.name.clone(), p.verified_insns))
                .collect(),
            _ => BTreeMap::new(),
        }
    };
    let mut changes = Vec::new();
    for cell in &now.cells {
        let Some(old) = before.cells.iter().find(|c| key(c) == key(cell)) else {
            continue;
        };
        let (was, is) = (counts(old), counts(cell));
        if let CellOutcome::Rejected { program, .. } = &cell.outcome {
            if matches!(old.outcome, CellOutcome::Loaded { .. }) {
                changes.push(ProgramChange {
                    cell: key(cell),
                    program: program.clone().unwrap_or_else(|| "(unnamed)".into()),
                    before: program.as_ref().and_then(|p| was.get(p).copied()),
                    after: None,
                    regression: true,
                });
            }
            continue;
        }
        for (name, &n) in &is {
            let b = was.get(name).copied();
            if b == Some(n) {
                continue;
            }
            let grew = b.is_some_and(|b| f64::from(n) > f64::from(b) * max_ratio);
            changes.push(ProgramChange {
                cell: key(cell),
                program: name.clone(),
                before: b,
                after: Some(n),
                regression: grew,
            });
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prog(name: &str, n: u32) -> BpfProgram {
        BpfProgram {
            id: 1,
            name: name.into(),
            prog_type: 27,
            xlated_bytes: 8 * n,
            verified_insns: n,
        }
    }

    fn report(cells: Vec<(&str, CellOutcome)>) -> VerifierReport {
        VerifierReport {
            scheduler: SchedulerSpec {
                name: "s".into(),
                args: vec![],
                at: Default::default(),
            },
            cells: cells
                .into_iter()
                .map(|(t, outcome)| VerifierCell {
                    kernel: "k".into(),
                    topology: t.parse().unwrap(),
                    outcome,
                })
                .collect(),
        }
    }

    fn loaded(p: &[(&str, u32)]) -> CellOutcome {
        CellOutcome::Loaded {
            programs: p.iter().map(|(n, c)| prog(n, *c)).collect(),
        }
    }

    #[test]
    fn growth_past_the_ratio_and_new_rejections_are_regressions() {
        let before = report(vec![
            ("1n1l2c1t", loaded(&[("a", 1000), ("b", 1000), ("c", 50)])),
            ("2n4l2c1t", loaded(&[("a", 2000)])),
        ]);
        let now = report(vec![
            // a +5 % (a change), b +20 % (a regression), c unchanged.
            ("1n1l2c1t", loaded(&[("a", 1050), ("b", 1200), ("c", 50)])),
            (
                "2n4l2c1t",
                CellOutcome::Rejected {
                    program: Some("a".into()),
                    message: "too many insns".into(),
                },
            ),
        ]);
        let c = compare(&before, &now, 1.1);
        let shown: Vec<(&str, Option<u32>, Option<u32>, bool)> = c
            .iter()
            .map(|c| (c.program.as_str(), c.before, c.after, c.regression))
            .collect();
        assert_eq!(
            shown,
            [
                ("a", Some(1000), Some(1050), false),
                ("b", Some(1000), Some(1200), true),
                ("a", Some(2000), None, true),
            ]
        );
        // The same sweep twice: nothing changed.
        assert!(compare(&before, &before, 1.1).is_empty());
    }

    #[test]
    fn the_rejected_program_is_read_from_libbpfs_output() {
        let t = crate::telemetry::Telemetry {
            scheduler: vec![crate::telemetry::SchedulerEvent {
                state: "failed".into(),
                detail: "libbpf: prog 'lavd_dispatch': BPF program load failed: \
                         Permission denied\nlibbpf: prog 'lavd_dispatch': -- BEGIN PROG \
                         LOAD LOG --\nR2 min value is negative\nprocessed 1234 insns"
                    .into(),
            }],
            ..Default::default()
        };
        let (program, message) = rejection(&t, Some("6.12.118")).unwrap();
        assert_eq!(program.as_deref(), Some("lavd_dispatch"));
        assert!(
            message.contains("rejected program lavd_dispatch"),
            "{message}"
        );
    }
}
