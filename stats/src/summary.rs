//! Summaries of a dataset: jobs, outcomes and the median of every metric
//! by cell (`ktstr stats`, `stats show --by`), and the list of runs.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use crate::error::{frame, StatsError};
use crate::metrics::METRICS;
use crate::tables::Tables;

/// One cell's summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    /// The cell: `--by` column to value.
    pub cell: BTreeMap<String, String>,
    /// Jobs in it.
    pub jobs: u32,
    /// Jobs that passed.
    pub passed: u32,
    /// Jobs that failed (or were inconclusive).
    pub failed: u32,
    /// The median of each metric over its jobs (None: no job has it).
    pub medians: BTreeMap<&'static str, Option<f64>>,
}

/// The summary of `tables` by the `by` columns.
pub fn summarize(tables: &Tables, by: &[String]) -> Result<Vec<SummaryRow>, StatsError> {
    let mut aggs = vec![
        len().alias("jobs").cast(DataType::UInt32),
        col("outcome")
            .eq(lit("pass"))
            .sum()
            .alias("passed")
            .cast(DataType::UInt32),
        col("outcome")
            .neq(lit("pass"))
            .and(col("outcome").neq(lit("skip")))
            .sum()
            .alias("failed")
            .cast(DataType::UInt32),
    ];
    for m in METRICS {
        aggs.push(col(m.name).cast(DataType::Float64).median().alias(m.name));
    }
    let by_cols: Vec<Expr> = by.iter().map(|c| col(c.as_str())).collect();
    let df = tables
        .jobs
        .clone()
        .lazy()
        .group_by(by_cols)
        .agg(aggs)
        .sort(by.to_vec(), SortMultipleOptions::default())
        .collect()
        .map_err(frame("summarizing"))?;
    rows(&df, by)
}

/// The rows of a summary frame.
fn rows(df: &DataFrame, by: &[String]) -> Result<Vec<SummaryRow>, StatsError> {
    let f = frame("reading the summary");
    let keys: Vec<StringChunked> = by
        .iter()
        .map(|c| df.column(c).and_then(|c| c.str().cloned()))
        .collect::<Result<_, _>>()
        .map_err(&f)?;
    let count = |name: &str| df.column(name).and_then(|c| c.u32().cloned());
    let (jobs, passed, failed) = (
        count("jobs").map_err(&f)?,
        count("passed").map_err(&f)?,
        count("failed").map_err(&f)?,
    );
    let medians: Vec<Float64Chunked> = METRICS
        .iter()
        .map(|m| df.column(m.name).and_then(|c| c.f64().cloned()))
        .collect::<Result<_, _>>()
        .map_err(&f)?;
    Ok((0..df.height())
        .map(|i| SummaryRow {
            cell: by
                .iter()
                .cloned()
                .zip(keys.iter().map(|k| k.get(i).unwrap_or("").to_string()))
                .collect(),
            jobs: jobs.get(i).unwrap_or(0),
            passed: passed.get(i).unwrap_or(0),
            failed: failed.get(i).unwrap_or(0),
            medians: METRICS
                .iter()
                .zip(&medians)
                .map(|(m, c)| (m.name, c.get(i)))
                .collect(),
        })
        .collect())
}
