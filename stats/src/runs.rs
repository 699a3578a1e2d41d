//! Runs and their datasets: every run directory (`<runs>/<run-id>/`) gets
//! its dataset in `stats/`; a RUN argument is a run id, `newest`, or the
//! path of a dataset (or of a run directory that has one).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::dataset::{Dataset, MANIFEST};
use crate::error::StatsError;

/// The dataset's directory inside a run directory.
pub const STATS_DIR: &str = "stats";

/// Writes the dataset of the sidecars in `run_dir` to `run_dir/stats`.
pub fn write_run_dataset(run_dir: &Path) -> Result<Dataset, StatsError> {
    let tables = Dataset::tables_of_sidecars(run_dir)?;
    Dataset::write(&run_dir.join(STATS_DIR), tables)
}

/// A run that has a dataset.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunEntry {
    /// The run id (its directory's name).
    pub id: String,
    /// Its dataset.
    pub dataset: PathBuf,
    /// Jobs in it.
    pub jobs: usize,
    /// When the dataset was written (seconds since the epoch).
    pub written: u64,
}

/// Every run under `runs` with a dataset, oldest first.
pub fn list(runs: &Path) -> Vec<RunEntry> {
    let Ok(dirs) = std::fs::read_dir(runs) else {
        return Vec::new();
    };
    let mut out: Vec<RunEntry> = dirs
        .flatten()
        .filter_map(|d| {
            let dataset = d.path().join(STATS_DIR);
            let manifest = dataset.join(MANIFEST);
            let meta = std::fs::metadata(&manifest).ok()?;
            let text = std::fs::read(&manifest).ok()?;
            let m: crate::dataset::Manifest = serde_json::from_slice(&text).ok()?;
            let written = meta
                .modified()
                .ok()?
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?
                .as_secs();
            Some(RunEntry {
                id: d.file_name().to_string_lossy().into_owned(),
                dataset,
                jobs: m.rows.get("jobs").copied().unwrap_or(0),
                written,
            })
        })
        .collect();
    out.sort_by(|a, b| (a.written, &a.id).cmp(&(b.written, &b.id)));
    out
}

/// The dataset directory `spec` names: `newest`, a run id under `runs`,
/// or a path (a dataset, or a run directory with one).
pub fn resolve(spec: &str, runs: &Path) -> Result<PathBuf, StatsError> {
    let known = || {
        let ids: Vec<String> = list(runs).into_iter().map(|r| r.id).collect();
        if ids.is_empty() {
            "none".to_string()
        } else {
            ids.join(", ")
        }
    };
    if spec == "newest" || spec == "latest" {
        return list(runs)
            .pop()
            .map(|r| r.dataset)
            .ok_or_else(|| StatsError::Empty {
                path: runs.to_path_buf(),
                what: "no run with a dataset here yet (ktstr run or ktstr gauntlet writes one)"
                    .into(),
            });
    }
    let path = Path::new(spec);
    if path.is_dir() {
        if path.join(MANIFEST).is_file() {
            return Ok(path.to_path_buf());
        }
        if path.join(STATS_DIR).join(MANIFEST).is_file() {
            return Ok(path.join(STATS_DIR));
        }
        return Err(StatsError::Empty {
            path: path.to_path_buf(),
            what: format!("no dataset here ({MANIFEST}); make one from its sidecars with `ktstr stats import {spec}`"),
        });
    }
    let in_runs = runs.join(spec).join(STATS_DIR);
    if in_runs.join(MANIFEST).is_file() {
        return Ok(in_runs);
    }
    Err(StatsError::UnknownRun {
        name: spec.to_string(),
        runs: runs.to_path_buf(),
        known: known(),
    })
}
