//! Gauntlet sweeps: a manifest's scenarios × topologies × schedulers ×
//! kernels, run as parallel jobs within what the host gives and what the
//! budget allows, recorded as a report, a matrix and JUnit.
//!
//! - [`manifest`]: `gauntlet.toml`, validated with file:line:col errors.
//! - [`expand`]: the checked plans × the manifest's choices → jobs.
//! - [`shard`]: `--shard K/N`, a partition stable under reordering.
//! - [`budget`]: cost estimates and the cells that fit a budget.
//! - [`pool`]: parallel execution bounded by host CPUs and memory.
//! - [`report`]: records, the matrix, JUnit, `gauntlet.json`.
//!
//! Checking the scripts is the caller's (the engine's); this module takes
//! their Plans and knows no Rhai.

pub mod budget;
pub mod expand;
pub mod manifest;
pub mod pool;
pub mod report;
pub mod shard;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Instant;

pub use expand::{expand, Cell, GauntletJob, Unfit};
pub use manifest::{Manifest, ManifestError, PresetSelection, SchedulerChoice};
pub use pool::{Capacity, PoolObserver, Shared};
pub use report::{CellRecord, GauntletReport, JobRecord};
pub use shard::Shard;

/// Which of a sweep's jobs to run.
#[derive(Debug, Clone, Default)]
pub struct Selection<'a> {
    /// Only this shard.
    pub shard: Option<Shard>,
    /// Only jobs whose cell key contains this.
    pub filter: Option<&'a str>,
    /// Only these cells (`--rerun-failed`).
    pub cells: Option<&'a BTreeSet<CellRecord>>,
    /// Only what fits this many estimated seconds.
    pub budget: Option<f64>,
}

/// The jobs `sel` keeps, in order, and the cells the budget left out.
pub fn select(
    jobs: Vec<GauntletJob>,
    sel: &Selection,
    history: &BTreeMap<String, f64>,
) -> (Vec<GauntletJob>, Vec<Cell>) {
    let mut jobs: Vec<GauntletJob> = jobs
        .into_iter()
        .filter(|j| sel.filter.is_none_or(|f| j.cell.key().contains(f)))
        .filter(|j| {
            sel.cells
                .is_none_or(|c| c.contains(&CellRecord::from(&j.cell)))
        })
        .collect();
    if let Some(shard) = sel.shard {
        jobs = shard.select(jobs);
    }
    match sel.budget {
        Some(b) => budget::select(jobs, b, history),
        None => (jobs, Vec::new()),
    }
}

/// Runs `jobs` within `cap`, recording each into `report` as it ends;
/// an interrupted sweep records what did not start.
pub fn run(
    jobs: Vec<GauntletJob>,
    cap: Capacity,
    shared: &Shared,
    events: &dyn PoolObserver,
    report: &mut GauntletReport,
) {
    let start = Instant::now();
    let planned: Vec<(CellRecord, u32)> = jobs
        .iter()
        .map(|j| (CellRecord::from(&j.cell), j.repetition.index))
        .collect();
    let done = pool::run(jobs, cap, shared, events);
    report.jobs = done.iter().map(|(j, r)| report::record(j, r)).collect();
    report.interrupted = shared.cancel.load(Ordering::SeqCst);
    report.not_run = planned
        .into_iter()
        .filter(|(c, rep)| {
            !report
                .jobs
                .iter()
                .any(|j| &j.cell == c && j.repetition == *rep)
        })
        .map(|(c, _)| c)
        .collect();
    report.wall_s = start.elapsed().as_secs_f64();
}
