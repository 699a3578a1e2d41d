//! Observations: each job's value of each metric, computed from the worker
//! rows that a selection matches, then gathered by cell (the `--by`
//! columns) into the samples a compare or a noise estimate works on. One
//! job is one observation: repetitions are the sample, workers are not.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::derive::{cols, job_metrics};
use crate::error::{frame, StatsError};
use crate::metrics::Metric;
use crate::select::{apply, Filter};
use crate::tables::{Tables, JOB_ID};

/// A cell: the values of the `--by` columns, in their order.
pub type CellKey = Vec<String>;

/// Samples by cell, then by metric name.
pub type Samples = BTreeMap<CellKey, BTreeMap<&'static str, Vec<f64>>>;

/// One row per job that `filters` match, with its configuration and every
/// metric.
pub fn observations(tables: &Tables, filters: &[Filter]) -> Result<DataFrame, StatsError> {
    let workers = apply(&tables.workers, filters)?;
    let mut keep = cols(JOB_ID);
    keep.push(col("ready_ms"));
    let jobs = apply(&tables.jobs, filters)?.select(keep);
    job_metrics(workers)
        .join(
            jobs,
            cols(JOB_ID),
            cols(JOB_ID),
            JoinArgs::new(JoinType::Inner),
        )
        .collect()
        .map_err(frame("computing each job's metrics"))
}

/// The samples of `metrics` in each cell of `obs` by `by`. A job without a
/// value (a metric its workers do not have) adds nothing to that sample.
pub fn samples(
    obs: &DataFrame,
    by: &[String],
    metrics: &[&'static Metric],
) -> Result<Samples, StatsError> {
    let f = frame("gathering samples");
    let keys: Vec<StringChunked> = by
        .iter()
        .map(|c| obs.column(c).and_then(|c| c.str().cloned()))
        .collect::<Result<_, _>>()
        .map_err(&f)?;
    let values: Vec<Float64Chunked> = metrics
        .iter()
        .map(|m| {
            obs.column(m.name)
                .and_then(|c| c.cast(&DataType::Float64))
                .and_then(|c| c.f64().cloned())
        })
        .collect::<Result<_, _>>()
        .map_err(&f)?;
    let mut out: Samples = BTreeMap::new();
    for i in 0..obs.height() {
        let key: CellKey = keys
            .iter()
            .map(|k| k.get(i).unwrap_or("").to_string())
            .collect();
        let cell = out.entry(key).or_default();
        for (m, v) in metrics.iter().zip(&values) {
            let sample = cell.entry(m.name).or_default();
            if let Some(x) = v.get(i).filter(|x| x.is_finite()) {
                sample.push(x);
            }
        }
    }
    Ok(out)
}
