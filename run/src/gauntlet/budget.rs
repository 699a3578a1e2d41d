//! `--budget SECS`: what a sweep can afford. Each job's cost is estimated
//! (from earlier runs of the same job when their sidecars are at hand,
//! else from a model of boot time by vCPU count plus the run itself), then
//! the cells that cover the most distinct (scenario, topology feature,
//! scheduler, kernel) per second are chosen until the budget is spent;
//! a scenario or scheduler not yet run at all counts once more.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ktstr_topology::{presets, Topology};

use super::expand::{Cell, GauntletJob};

/// Boot to agent ready under TCG by vCPU count, seconds (README: measured
/// on the project's 2-core machines; the cost grows faster than the vCPU
/// count).
pub const BOOT_MODEL: [(u32, f64); 6] = [
    (2, 2.4),
    (4, 2.8),
    (8, 4.1),
    (16, 11.2),
    (32, 23.8),
    (64, 87.0),
];

/// Seconds a job costs besides boot and its plan (setup, collection,
/// power-off).
pub const JOB_OVERHEAD_S: f64 = 2.0;

/// Seconds the 21 sched_ext selftests of 6.12 took under TCG at 2 and 4
/// vCPUs (README), for a selftest job with no history.
pub const SELFTESTS_ESTIMATE_S: f64 = 45.0;

/// Estimated seconds to boot a `vcpus`-vCPU guest: the model,
/// interpolated linearly, extended in proportion past its last point.
pub fn boot_estimate(vcpus: u32) -> f64 {
    let (first, last) = (BOOT_MODEL[0], BOOT_MODEL[BOOT_MODEL.len() - 1]);
    if vcpus <= first.0 {
        return first.1;
    }
    if vcpus >= last.0 {
        return last.1 * f64::from(vcpus) / f64::from(last.0);
    }
    let i = BOOT_MODEL.partition_point(|(v, _)| *v < vcpus);
    let ((v0, s0), (v1, s1)) = (BOOT_MODEL[i - 1], BOOT_MODEL[i]);
    s0 + (s1 - s0) * f64::from(vcpus - v0) / f64::from(v1 - v0)
}

/// Seconds earlier runs of each job took, by job label (`scenario
/// topology scheduler`): the median over the sidecars under `runs`.
pub fn history(runs: &Path) -> BTreeMap<String, f64> {
    let mut seen: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let Ok(dirs) = std::fs::read_dir(runs) else {
        return BTreeMap::new();
    };
    for dir in dirs.flatten() {
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let p = f.path();
            if p.extension().is_some_and(|e| e == "json") {
                if let Ok(s) = crate::Sidecar::read(&p) {
                    seen.entry(s.job).or_default().push(s.timings.seconds);
                }
            }
        }
    }
    seen.into_iter()
        .map(|(job, mut secs)| {
            secs.sort_by(f64::total_cmp);
            (job, secs[secs.len() / 2])
        })
        .collect()
}

/// A job's label as its sidecar records it.
fn job_label(j: &GauntletJob) -> String {
    if j.selftests.is_some() {
        return format!("{} {}", j.plan.name, j.topology);
    }
    let sched = j
        .plan
        .scheduler
        .as_ref()
        .map_or("eevdf", |s| s.name.as_str());
    format!("{} {} {sched}", j.plan.name, j.topology)
}

/// The estimated seconds of `job`: its history, else the model.
pub fn cost(job: &GauntletJob, history: &BTreeMap<String, f64>) -> f64 {
    history.get(&job_label(job)).copied().unwrap_or_else(|| {
        let work = match job.selftests {
            Some(_) => SELFTESTS_ESTIMATE_S,
            None => job.plan.duration_s,
        };
        boot_estimate(job.topology.cpus()) + work + JOB_OVERHEAD_S
    })
}

/// What a topology brings to coverage: its tags and its CPU-count band.
fn features(t: &Topology) -> Vec<String> {
    let band = match t.cpus() {
        0..=4 => "cpus<=4",
        5..=16 => "cpus<=16",
        17..=64 => "cpus<=64",
        _ => "cpus>64",
    };
    let mut f: Vec<String> = presets::tags(t).into_iter().map(str::to_string).collect();
    f.push(band.to_string());
    f
}

/// What a job covers: each (scenario, topology feature, scheduler,
/// kernel), plus the scenario and the scheduler on their own, so that a
/// small budget reaches every scenario and scheduler before it covers one
/// of them on more topologies.
fn coverage(j: &GauntletJob) -> Vec<String> {
    let c = &j.cell;
    let mut units: Vec<String> = features(&j.topology)
        .into_iter()
        .map(|f| format!("{}|{f}|{}|{}", c.scenario, c.scheduler, c.kernel))
        .collect();
    units.push(format!("{}||*|{}", c.scenario, c.kernel));
    units.push(format!("*||{}|{}", c.scheduler, c.kernel));
    units
}

/// The jobs that fit `budget` seconds, cell by cell (a cell's repetitions
/// stay together), and the cells left out.
pub fn select(
    jobs: Vec<GauntletJob>,
    budget: f64,
    history: &BTreeMap<String, f64>,
) -> (Vec<GauntletJob>, Vec<Cell>) {
    let mut cells: BTreeMap<Cell, (f64, Vec<String>)> = BTreeMap::new();
    for j in &jobs {
        let c = cells
            .entry(j.cell.clone())
            .or_insert_with(|| (0.0, coverage(j)));
        c.0 += cost(j, history);
    }
    let mut covered: BTreeSet<String> = BTreeSet::new();
    let mut chosen: BTreeSet<Cell> = BTreeSet::new();
    let mut left = budget;
    loop {
        let best = cells
            .iter()
            .filter(|(c, (cost, _))| !chosen.contains(*c) && *cost <= left)
            .map(|(c, (cost, units))| {
                let new = units.iter().filter(|u| !covered.contains(*u)).count();
                (c, *cost, new as f64 / cost.max(0.001))
            })
            .filter(|(_, _, value)| *value > 0.0)
            .max_by(|a, b| a.2.total_cmp(&b.2).then(b.1.total_cmp(&a.1)));
        let Some((cell, cost, _)) = best else { break };
        let cell = cell.clone();
        left -= cost;
        covered.extend(cells[&cell].1.iter().cloned());
        chosen.insert(cell);
    }
    let out: Vec<Cell> = cells
        .keys()
        .filter(|c| !chosen.contains(*c))
        .cloned()
        .collect();
    let kept = jobs
        .into_iter()
        .filter(|j| chosen.contains(&j.cell))
        .collect();
    (kept, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_model_interpolates_and_extends() {
        assert_eq!(boot_estimate(1), 2.4);
        assert_eq!(boot_estimate(8), 4.1);
        assert!((boot_estimate(12) - 7.65).abs() < 1e-9);
        assert_eq!(boot_estimate(128), 174.0);
    }
}
