//! A manifest and its checked scripts, expanded into the jobs of a sweep:
//! every scenario × topology × scheduler × kernel cell, once per
//! repetition.

use std::path::PathBuf;

use ktstr_plan::{Plan, SchedulerSpec, TopologyReq};
use ktstr_topology::{presets, Topology};

use ktstr_plan::selftests::SelftestSpec;

use super::manifest::{Manifest, PresetSelection};
use crate::selftest::{SelftestJob, SELFTESTS_NAME, SELFTESTS_SCHEDULER};
use crate::sidecar::Repetition;

/// One cell of a sweep: a scenario on a topology under a scheduler and a
/// kernel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cell {
    /// The scenario's name.
    pub scenario: String,
    /// The preset's name, or the topology written out.
    pub preset: String,
    /// The scheduler with its arguments (`eevdf` for the kernel's own).
    pub scheduler: String,
    /// The kernel identifier (`default` for the default kernel).
    pub kernel: String,
}

impl Cell {
    /// `scenario::preset::scheduler::kernel`, stable across runs.
    pub fn key(&self) -> String {
        format!(
            "{}::{}::{}::{}",
            self.scenario, self.preset, self.scheduler, self.kernel
        )
    }
}

/// One job of a sweep.
#[derive(Debug, Clone)]
pub struct GauntletJob {
    /// Its cell.
    pub cell: Cell,
    /// The script it came from.
    pub script: PathBuf,
    /// The plan to run (the manifest's duration and scheduler applied).
    pub plan: Plan,
    /// The topology.
    pub topology: Topology,
    /// The kernel identifier (None: the default kernel).
    pub kernel: Option<String>,
    /// The cell passes only by failing (the manifest says so).
    pub expect_fail: bool,
    /// Which repetition.
    pub repetition: Repetition,
    /// A selftest job: the kernel's sched_ext selftests instead of the
    /// plan (which only records it).
    pub selftests: Option<SelftestJob>,
}

impl GauntletJob {
    /// The cell's key and the repetition: stable, unique in a sweep.
    pub fn key(&self) -> String {
        format!("{}::run{}", self.cell.key(), self.repetition.index)
    }
}

/// A scenario the sweep cannot run anywhere (no selected topology fits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    /// The scenario.
    pub scenario: String,
    /// Why.
    pub why: String,
}

/// The topologies `selection` offers a plan, by label.
fn offered(selection: &PresetSelection) -> Vec<(String, Topology)> {
    match selection {
        PresetSelection::Default => presets::presets()
            .into_iter()
            .filter(|(_, t)| presets::in_default_sweep(t))
            .map(|(n, t)| (n.to_string(), t))
            .collect(),
        PresetSelection::All => presets::presets()
            .into_iter()
            .map(|(n, t)| (n.to_string(), t))
            .collect(),
        PresetSelection::List(list) => list.clone(),
    }
}

/// The label a topology goes by: its preset's name, or itself.
fn label(t: &Topology) -> String {
    presets::name_of(t).map_or_else(|| t.to_string(), str::to_string)
}

/// Every job of `manifest` over `plans` (each checked, from its script),
/// in manifest order, and the scenarios no topology fits.
pub fn expand(manifest: &Manifest, plans: &[(PathBuf, Plan)]) -> (Vec<GauntletJob>, Vec<Unfit>) {
    let offered = offered(&manifest.presets);
    let kernels: Vec<Option<String>> = if manifest.kernels.is_empty() {
        vec![None]
    } else {
        manifest.kernels.iter().cloned().map(Some).collect()
    };
    let mut jobs = Vec::new();
    let mut unfit = Vec::new();
    for (script, plan) in plans {
        let topologies: Vec<(String, Topology)> = match &plan.topology {
            TopologyReq::Fixed { topology } => vec![(label(topology), *topology)],
            TopologyReq::Constraints(c) => offered
                .iter()
                .filter(|(_, t)| c.accepts(t))
                .cloned()
                .collect(),
        };
        if topologies.is_empty() {
            unfit.push(Unfit {
                scenario: plan.name.clone(),
                why: "no selected topology satisfies its constraints".into(),
            });
            continue;
        }
        for (plan, scheduler, expect_fail) in variants(manifest, plan) {
            for (preset, topology) in &topologies {
                for kernel in &kernels {
                    for index in 1..=manifest.repetitions {
                        jobs.push(GauntletJob {
                            cell: Cell {
                                scenario: plan.name.clone(),
                                preset: preset.clone(),
                                scheduler: scheduler.clone(),
                                kernel: kernel.clone().unwrap_or_else(|| "default".into()),
                            },
                            script: script.clone(),
                            plan: plan.clone(),
                            topology: *topology,
                            kernel: kernel.clone(),
                            expect_fail,
                            repetition: Repetition {
                                index,
                                of: manifest.repetitions,
                            },
                            selftests: None,
                        });
                    }
                }
            }
        }
    }
    if let Some(spec) = &manifest.selftests {
        jobs.extend(selftest_jobs(manifest, spec, &offered, &kernels));
    }
    (jobs, unfit)
}

/// The selftest jobs: one per preset × kernel × repetition.
fn selftest_jobs(
    manifest: &Manifest,
    spec: &SelftestSpec,
    offered: &[(String, Topology)],
    kernels: &[Option<String>],
) -> Vec<GauntletJob> {
    let job = SelftestJob {
        spec: spec.clone(),
        runner: None,
    };
    let mut jobs = Vec::new();
    for (preset, topology) in offered {
        for kernel in kernels {
            for index in 1..=manifest.repetitions {
                jobs.push(GauntletJob {
                    cell: Cell {
                        scenario: SELFTESTS_NAME.into(),
                        preset: preset.clone(),
                        scheduler: SELFTESTS_SCHEDULER.into(),
                        kernel: kernel.clone().unwrap_or_else(|| "default".into()),
                    },
                    script: PathBuf::from(SELFTESTS_NAME),
                    plan: crate::selftest::plan(&job, *topology),
                    topology: *topology,
                    kernel: kernel.clone(),
                    expect_fail: false,
                    repetition: Repetition {
                        index,
                        of: manifest.repetitions,
                    },
                    selftests: Some(job.clone()),
                });
            }
        }
    }
    jobs
}

/// The plan under each of the manifest's schedulers (or as the script has
/// it), with the manifest's duration: (plan, scheduler label, expect fail).
fn variants(manifest: &Manifest, plan: &Plan) -> Vec<(Plan, String, bool)> {
    let mut base = plan.clone();
    if let Some(d) = manifest.duration {
        base.duration_s = d;
    }
    if manifest.schedulers.is_empty() {
        let label = base.scheduler.as_ref().map_or("eevdf".to_string(), |s| {
            std::iter::once(s.name.as_str())
                .chain(s.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        });
        return vec![(base, label, false)];
    }
    manifest
        .schedulers
        .iter()
        .map(|choice| {
            let mut p = base.clone();
            p.scheduler = (!choice.is_eevdf()).then(|| SchedulerSpec {
                name: choice.name.clone(),
                args: choice.args.clone(),
                at: Default::default(),
            });
            (p, choice.label(), choice.expect_fail)
        })
        .collect()
}
