//! Job and cgroup values computed from the worker rows with Polars: the
//! one place the registry's [`Source`]s are turned into expressions, used
//! when a dataset is written and again by every compare.

use polars::prelude::*;

use crate::error::{frame, StatsError};
use crate::metrics::{Source, METRICS};
use crate::tables::{JOB_ID, KEY_COLUMNS};

/// `names` as column expressions.
pub fn cols(names: &[&str]) -> Vec<Expr> {
    names.iter().map(|n| col(*n)).collect()
}

/// The CPU-time spread of each cgroup of each job: (largest - smallest) /
/// mean of its workers' CPU time, in percent, as the verdict computes it
/// (`ktstr_plan::measures::spread_pct`); null for a cgroup of one worker
/// or without CPU time.
fn cgroup_spread(workers: LazyFrame) -> LazyFrame {
    let mut by = cols(JOB_ID);
    by.push(col("cgroup"));
    workers
        .group_by(by)
        .agg([
            col("cpu_time_ms").sum().alias("cpu_sum"),
            col("cpu_time_ms").max().alias("cpu_max"),
            col("cpu_time_ms").min().alias("cpu_min"),
            len().alias("workers"),
        ])
        .with_column(
            when(
                col("workers")
                    .gt_eq(lit(2))
                    .and(col("cpu_sum").gt(lit(0.0))),
            )
            .then(
                (col("cpu_max") - col("cpu_min")) * col("workers").cast(DataType::Float64)
                    / col("cpu_sum")
                    * lit(100.0),
            )
            .otherwise(lit(NULL).cast(DataType::Float64))
            .alias("spread_pct"),
        )
}

/// Each job's metrics (the registry's worker-sourced ones and the spread),
/// one row per [`JOB_ID`], with the job's [`KEY_COLUMNS`].
pub fn job_metrics(workers: LazyFrame) -> LazyFrame {
    let mut aggs: Vec<Expr> = KEY_COLUMNS
        .iter()
        .filter(|c| !JOB_ID.contains(c))
        .map(|c| col(*c).first())
        .collect();
    for m in METRICS {
        let e = match m.source {
            Source::WorkerSum(c) => col(c).sum().cast(DataType::Float64),
            Source::WorkerMean(c) => col(c).mean(),
            Source::WorkerMax(c) => col(c).max().cast(DataType::Float64),
            Source::CgroupSpreadMax | Source::Job(_) => continue,
        };
        aggs.push(e.alias(m.name));
    }
    aggs.push(len().alias("workers").cast(DataType::UInt32));
    let per_job = workers.clone().group_by(cols(JOB_ID)).agg(aggs);
    let spread = cgroup_spread(workers)
        .group_by(cols(JOB_ID))
        .agg([col("spread_pct").max()]);
    per_job.join(
        spread,
        cols(JOB_ID),
        cols(JOB_ID),
        JoinArgs::new(JoinType::Left),
    )
}

/// The jobs table (the jobs' own facts `base` with their metrics) and the
/// cgroups table, from the worker rows.
pub fn jobs_and_cgroups(
    base: &DataFrame,
    workers: &DataFrame,
) -> Result<(DataFrame, DataFrame), StatsError> {
    let metrics = job_metrics(workers.clone().lazy()).select(metric_and_id_columns());
    let jobs = base
        .clone()
        .lazy()
        .join(
            metrics,
            cols(JOB_ID),
            cols(JOB_ID),
            JoinArgs::new(JoinType::Left),
        )
        .sort(
            ["run_id", "job", "kernel", "repetition"],
            SortMultipleOptions::default(),
        )
        .collect()
        .map_err(frame("computing the jobs table"))?;
    let cgroups = cgroups(workers.clone().lazy())
        .collect()
        .map_err(frame("computing the cgroups table"))?;
    Ok((jobs, cgroups))
}

/// The job id, the worker-sourced metrics, the spread and the worker count.
fn metric_and_id_columns() -> Vec<Expr> {
    let mut v = cols(JOB_ID);
    for m in METRICS {
        if !matches!(m.source, Source::Job(_)) {
            v.push(col(m.name));
        }
    }
    v.push(col("workers"));
    v
}

/// One row per cgroup of each job.
fn cgroups(workers: LazyFrame) -> LazyFrame {
    let mut by = cols(JOB_ID);
    by.push(col("cgroup"));
    let mut aggs: Vec<Expr> = KEY_COLUMNS
        .iter()
        .filter(|c| !JOB_ID.contains(c))
        .map(|c| col(*c).first())
        .collect();
    aggs.extend([
        len().alias("workers").cast(DataType::UInt32),
        col("iterations").sum().alias("iterations"),
        col("rate_per_s").sum().alias("throughput"),
        col("cpu_time_ms").sum().alias("cpu_time_ms"),
        col("max_gap_ms").max().alias("max_gap_ms"),
        col("wake_p50_us").mean().alias("wake_p50_us"),
        col("wake_p99_us").max().alias("wake_p99_us"),
        col("run_delay_ms").mean().alias("run_delay_ms"),
        col("migrations").sum().alias("migrations"),
    ]);
    let mut key = cols(JOB_ID);
    key.push(col("cgroup"));
    workers
        .clone()
        .group_by(by)
        .agg(aggs)
        .join(
            cgroup_spread(workers).select([
                col("run_id"),
                col("job"),
                col("kernel"),
                col("repetition"),
                col("cgroup"),
                col("spread_pct"),
            ]),
            key.clone(),
            key,
            JoinArgs::new(JoinType::Left),
        )
        .sort(
            ["run_id", "job", "kernel", "repetition", "cgroup"],
            SortMultipleOptions::default(),
        )
}
