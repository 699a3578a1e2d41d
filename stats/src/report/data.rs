//! What the report plots, taken from a dataset's tables: the matrix of
//! outcomes, each job's progress rate per cgroup, and the per-worker
//! distributions of gap and wake latency by cell.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::error::{frame, StatsError};
use crate::tables::Tables;

/// One cell of the outcome matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct MatrixCell {
    /// Jobs.
    pub jobs: u32,
    /// Jobs that passed.
    pub passed: u32,
    /// Jobs skipped.
    pub skipped: u32,
}

/// The outcome matrix: rows are scenarios, columns `preset scheduler`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matrix {
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels.
    pub columns: Vec<String>,
    /// The cells that have jobs, by (row, column) index.
    pub cells: BTreeMap<(usize, usize), MatrixCell>,
}

/// A string column of `df`.
fn strs(df: &DataFrame, name: &str) -> Result<StringChunked, StatsError> {
    df.column(name)
        .and_then(|c| c.str().cloned())
        .map_err(frame("reading the report's data"))
}

/// A column of `df` as f64.
fn floats(df: &DataFrame, name: &str) -> Result<Float64Chunked, StatsError> {
    df.column(name)
        .and_then(|c| c.cast(&DataType::Float64))
        .and_then(|c| c.f64().cloned())
        .map_err(frame("reading the report's data"))
}

/// The outcome matrix of the jobs table.
pub fn matrix(tables: &Tables) -> Result<Matrix, StatsError> {
    let jobs = &tables.jobs;
    let (scenario, preset, sched, outcome) = (
        strs(jobs, "scenario")?,
        strs(jobs, "preset")?,
        strs(jobs, "scheduler")?,
        strs(jobs, "outcome")?,
    );
    let mut m = Matrix::default();
    let mut cells: BTreeMap<(String, String), MatrixCell> = BTreeMap::new();
    for i in 0..jobs.height() {
        let row = scenario.get(i).unwrap_or("").to_string();
        let column = format!(
            "{} {}",
            preset.get(i).unwrap_or(""),
            sched.get(i).unwrap_or("")
        );
        let c = cells.entry((row, column)).or_insert(MatrixCell {
            jobs: 0,
            passed: 0,
            skipped: 0,
        });
        c.jobs += 1;
        match outcome.get(i) {
            Some("pass") => c.passed += 1,
            Some("skip") => c.skipped += 1,
            _ => {}
        }
    }
    for (r, c) in cells.keys() {
        if !m.rows.contains(r) {
            m.rows.push(r.clone());
        }
        if !m.columns.contains(c) {
            m.columns.push(c.clone());
        }
    }
    m.rows.sort();
    m.columns.sort();
    for ((r, c), cell) in cells {
        let ri = m.rows.iter().position(|x| *x == r).unwrap_or(0);
        let ci = m.columns.iter().position(|x| *x == c).unwrap_or(0);
        m.cells.insert((ri, ci), cell);
    }
    Ok(m)
}

/// One job's progress: per cgroup, (seconds, iterations per second).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The job and its repetition.
    pub title: String,
    /// Per cgroup, its rate over time.
    pub series: BTreeMap<String, Vec<(f64, f64)>>,
}

/// The progress of the first repetition of each job in `tables`, at
/// most `limit` jobs.
pub fn progress(tables: &Tables, limit: usize) -> Result<Vec<Progress>, StatsError> {
    let df = tables
        .progress
        .clone()
        .lazy()
        .filter(col("repetition").eq(lit(1u32)))
        .with_column(col("at_ms").cast(DataType::Int64).alias("at_ms"))
        .group_by([
            col("run_id"),
            col("job"),
            col("kernel"),
            col("cgroup"),
            col("at_ms"),
        ])
        .agg([col("iterations")
            .sum()
            .cast(DataType::Float64)
            .alias("iterations")])
        .sort(
            ["run_id", "job", "kernel", "cgroup", "at_ms"],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(frame("gathering progress"))?;
    let (run, job, kernel, cgroup) = (
        strs(&df, "run_id")?,
        strs(&df, "job")?,
        strs(&df, "kernel")?,
        strs(&df, "cgroup")?,
    );
    let (at, iters) = (floats(&df, "at_ms")?, floats(&df, "iterations")?);
    let mut out: Vec<Progress> = Vec::new();
    let mut last: Option<(String, String, f64, f64)> = None;
    for i in 0..df.height() {
        let title = format!(
            "{} (kernel {}, run {})",
            job.get(i).unwrap_or(""),
            kernel.get(i).unwrap_or(""),
            run.get(i).unwrap_or("")
        );
        if out.last().is_none_or(|p| p.title != title) {
            if out.len() == limit {
                break;
            }
            out.push(Progress {
                title: title.clone(),
                series: BTreeMap::new(),
            });
        }
        let cg = cgroup.get(i).unwrap_or("").to_string();
        let (t, n) = (at.get(i).unwrap_or(0.0), iters.get(i).unwrap_or(0.0));
        if let Some((lt, lc, t0, n0)) = &last {
            if *lt == title && *lc == cg && t > *t0 {
                let rate = (n - n0) * 1000.0 / (t - t0);
                if let Some(p) = out.last_mut() {
                    p.series
                        .entry(cg.clone())
                        .or_default()
                        .push((t / 1000.0, rate));
                }
            }
        }
        last = Some((title, cg, t, n));
    }
    Ok(out)
}

/// Per cell (`scenario preset scheduler`), the workers' values of a
/// worker column (nulls left out), cells in order.
pub fn distribution(tables: &Tables, column: &str) -> Result<Vec<(String, Vec<f64>)>, StatsError> {
    let w = &tables.workers;
    let (scenario, preset, sched) = (
        strs(w, "scenario")?,
        strs(w, "preset")?,
        strs(w, "scheduler")?,
    );
    let values = floats(w, column)?;
    let mut cells: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for i in 0..w.height() {
        if let Some(v) = values.get(i).filter(|v| v.is_finite()) {
            let key = format!(
                "{} {} {}",
                scenario.get(i).unwrap_or(""),
                preset.get(i).unwrap_or(""),
                sched.get(i).unwrap_or("")
            );
            cells.entry(key).or_default().push(v);
        }
    }
    Ok(cells.into_iter().collect())
}
