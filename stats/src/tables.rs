//! Sidecars as tables: one row per worker (every telemetry field), per
//! progress sample (long form), per job, per cgroup, per CPU of each
//! host-side monitor sample (long form), and per selftest. The worker and
//! progress tables are filled from the sidecars; the job and cgroup
//! tables are computed from them with Polars ([`crate::derive`]), the same
//! way the compare computes them, so they always agree.

use polars::prelude::*;

use ktstr_run::Sidecar;

use crate::error::{frame, StatsError};

/// The columns that name a job's configuration, in every table: what
/// `--by` and filters take.
pub const KEY_COLUMNS: &[&str] = &[
    "run_id",
    "scenario",
    "preset",
    "topology",
    "scheduler",
    "scheduler_args",
    "kernel",
    "backend",
];

/// The columns that identify one job within a dataset.
pub const JOB_ID: &[&str] = &["run_id", "job", "kernel", "repetition"];

/// The six tables of a run.
#[derive(Debug, Clone)]
pub struct Tables {
    /// One row per job.
    pub jobs: DataFrame,
    /// One row per cgroup of each job.
    pub cgroups: DataFrame,
    /// One row per worker of each job.
    pub workers: DataFrame,
    /// One row per progress sample of each worker.
    pub progress: DataFrame,
    /// One row per CPU of each host-side monitor sample (run queues over
    /// time, on the workers' clock like `progress`).
    pub monitor: DataFrame,
    /// One row per sched_ext selftest of each selftest job.
    pub selftests: DataFrame,
}

/// The table names, in the order they are written.
pub const TABLES: [&str; 6] = [
    "jobs",
    "cgroups",
    "workers",
    "progress",
    "monitor",
    "selftests",
];

impl Tables {
    /// The table called `name`.
    pub fn get(&self, name: &str) -> Option<&DataFrame> {
        match name {
            "jobs" => Some(&self.jobs),
            "cgroups" => Some(&self.cgroups),
            "workers" => Some(&self.workers),
            "progress" => Some(&self.progress),
            "monitor" => Some(&self.monitor),
            "selftests" => Some(&self.selftests),
            _ => None,
        }
    }

    /// Builds every table from `sidecars`.
    pub fn from_sidecars(sidecars: &[Sidecar]) -> Result<Tables, StatsError> {
        let (base, workers, progress) = raw_tables(sidecars)?;
        let (jobs, cgroups) = crate::derive::jobs_and_cgroups(&base, &workers)?;
        let mut m = MonitorCols::default();
        let mut t = crate::selftests::SelftestCols::default();
        for s in sidecars {
            m.push(s);
            t.push(&key_values(s), s);
        }
        Ok(Tables {
            jobs,
            cgroups,
            workers,
            progress,
            monitor: m.finish()?,
            selftests: t.finish()?,
        })
    }
}

/// Column builders for the per-job facts.
#[derive(Default)]
struct JobCols {
    key: [Vec<String>; 8],
    job: Vec<String>,
    repetition: Vec<u32>,
    repetitions: Vec<u32>,
    cpus: Vec<u32>,
    host_kernel: Vec<String>,
    host_cpus: Vec<u32>,
    outcome: Vec<String>,
    reasons: Vec<String>,
    seconds: Vec<f64>,
    ready_ms: Vec<Option<f64>>,
    plan_ms: Vec<Option<f64>>,
}

/// The configuration columns of `s`, in [`KEY_COLUMNS`] order.
fn key_values(s: &Sidecar) -> [String; 8] {
    let topology = s.topology.to_string();
    let preset = ktstr_topology::presets::name_of(&s.topology)
        .map(str::to_string)
        .unwrap_or_else(|| topology.clone());
    let (scheduler, args) = match &s.scheduler {
        Some(spec) => (spec.name.clone(), spec.args.join(" ")),
        None => ("eevdf".to_string(), String::new()),
    };
    [
        s.run_id.clone(),
        s.plan.name.clone(),
        preset,
        topology,
        scheduler,
        args,
        s.kernel.clone(),
        s.backend.to_string(),
    ]
}

/// The jobs' own facts, the worker table and the progress table.
fn raw_tables(sidecars: &[Sidecar]) -> Result<(DataFrame, DataFrame, DataFrame), StatsError> {
    let mut j = JobCols::default();
    let mut w = WorkerCols::default();
    let mut p = ProgressCols::default();
    for s in sidecars {
        let key = key_values(s);
        for (col, v) in j.key.iter_mut().zip(key.iter()) {
            col.push(v.clone());
        }
        j.job.push(s.job.clone());
        j.repetition.push(s.repetition.index);
        j.repetitions.push(s.repetition.of);
        j.cpus.push(s.topology.cpus());
        j.host_kernel.push(s.host.kernel.clone());
        j.host_cpus.push(s.host.cpus as u32);
        j.outcome.push(s.verdict.outcome.label().to_lowercase());
        j.reasons.push(s.verdict.reasons.join("; "));
        j.seconds.push(s.timings.seconds);
        j.ready_ms.push(s.timings.ready_ms);
        j.plan_ms
            .push(s.timings.plan_ms.or(s.telemetry.duration_ms));
        for r in &s.telemetry.workers {
            w.push(&key, s, r);
            p.push(s, r);
        }
    }
    let mut cols = key_columns(j.key);
    cols.extend([
        Column::new("job".into(), j.job),
        Column::new("repetition".into(), j.repetition),
        Column::new("repetitions".into(), j.repetitions),
        Column::new("cpus".into(), j.cpus),
        Column::new("host_kernel".into(), j.host_kernel),
        Column::new("host_cpus".into(), j.host_cpus),
        Column::new("outcome".into(), j.outcome),
        Column::new("reasons".into(), j.reasons),
        Column::new("seconds".into(), j.seconds),
        Column::new("ready_ms".into(), j.ready_ms),
        Column::new("plan_ms".into(), j.plan_ms),
    ]);
    let jobs = DataFrame::new_infer_height(cols).map_err(frame("building the jobs table"))?;
    Ok((jobs, w.finish()?, p.finish()?))
}

/// The [`KEY_COLUMNS`] as columns.
pub(crate) fn key_columns(key: [Vec<String>; 8]) -> Vec<Column> {
    KEY_COLUMNS
        .iter()
        .zip(key)
        .map(|(name, values)| Column::new((*name).into(), values))
        .collect()
}

/// Column builders for the worker table.
#[derive(Default)]
struct WorkerCols {
    key: [Vec<String>; 8],
    job: Vec<String>,
    repetition: Vec<u32>,
    cgroup: Vec<String>,
    index: Vec<u32>,
    pid: Vec<u32>,
    iterations: Vec<u64>,
    rate_per_s: Vec<f64>,
    cpu_time_ms: Vec<f64>,
    wall_ms: Vec<f64>,
    off_cpu_ms: Vec<f64>,
    migrations: Vec<u64>,
    cpus_used: Vec<String>,
    max_gap_ms: Vec<f64>,
    max_gap_at_ms: Vec<f64>,
    max_gap_cpu: Vec<u32>,
    wake_samples: Vec<u64>,
    wake_p50_us: Vec<Option<f64>>,
    wake_p99_us: Vec<Option<f64>>,
    wake_max_us: Vec<Option<f64>>,
    run_delay_ms: Vec<f64>,
    error: Vec<Option<String>>,
}

impl WorkerCols {
    /// Adds worker `r` of job `s`.
    fn push(&mut self, key: &[String; 8], s: &Sidecar, r: &ktstr_plan::results::WorkerReport) {
        for (col, v) in self.key.iter_mut().zip(key.iter()) {
            col.push(v.clone());
        }
        self.job.push(s.job.clone());
        self.repetition.push(s.repetition.index);
        self.cgroup.push(r.cgroup.clone());
        self.index.push(r.index);
        self.pid.push(r.pid);
        self.iterations.push(r.iterations);
        let rate = if r.wall_ms > 0.0 {
            r.iterations as f64 * 1000.0 / r.wall_ms
        } else {
            0.0
        };
        self.rate_per_s.push(rate);
        self.cpu_time_ms.push(r.cpu_time_ms);
        self.wall_ms.push(r.wall_ms);
        self.off_cpu_ms.push(r.off_cpu_ms);
        self.migrations.push(r.migrations);
        let cpus: Vec<String> = r.cpus_used.iter().map(u32::to_string).collect();
        self.cpus_used.push(cpus.join(","));
        self.max_gap_ms.push(r.max_gap_ms);
        self.max_gap_at_ms.push(r.max_gap_at_ms);
        self.max_gap_cpu.push(r.max_gap_cpu);
        self.wake_samples.push(r.wake_samples);
        // A worker that never slept has no wake latency (not 0 µs).
        let wake = |v: f64| (r.wake_samples > 0).then_some(v);
        self.wake_p50_us.push(wake(r.wake_p50_us));
        self.wake_p99_us.push(wake(r.wake_p99_us));
        self.wake_max_us.push(wake(r.wake_max_us));
        self.run_delay_ms.push(r.run_delay_ms);
        self.error.push(r.error.clone());
    }

    /// The worker table.
    fn finish(self) -> Result<DataFrame, StatsError> {
        let mut cols = key_columns(self.key);
        cols.extend([
            Column::new("job".into(), self.job),
            Column::new("repetition".into(), self.repetition),
            Column::new("cgroup".into(), self.cgroup),
            Column::new("index".into(), self.index),
            Column::new("pid".into(), self.pid),
            Column::new("iterations".into(), self.iterations),
            Column::new("rate_per_s".into(), self.rate_per_s),
            Column::new("cpu_time_ms".into(), self.cpu_time_ms),
            Column::new("wall_ms".into(), self.wall_ms),
            Column::new("off_cpu_ms".into(), self.off_cpu_ms),
            Column::new("migrations".into(), self.migrations),
            Column::new("cpus_used".into(), self.cpus_used),
            Column::new("max_gap_ms".into(), self.max_gap_ms),
            Column::new("max_gap_at_ms".into(), self.max_gap_at_ms),
            Column::new("max_gap_cpu".into(), self.max_gap_cpu),
            Column::new("wake_samples".into(), self.wake_samples),
            Column::new("wake_p50_us".into(), self.wake_p50_us),
            Column::new("wake_p99_us".into(), self.wake_p99_us),
            Column::new("wake_max_us".into(), self.wake_max_us),
            Column::new("run_delay_ms".into(), self.run_delay_ms),
            Column::new("error".into(), self.error),
        ]);
        DataFrame::new_infer_height(cols).map_err(frame("building the workers table"))
    }
}

/// Column builders for the progress table.
#[derive(Default)]
struct ProgressCols {
    run_id: Vec<String>,
    job: Vec<String>,
    kernel: Vec<String>,
    repetition: Vec<u32>,
    cgroup: Vec<String>,
    index: Vec<u32>,
    at_ms: Vec<f64>,
    iterations: Vec<u64>,
}

impl ProgressCols {
    /// Adds the samples of worker `r` of job `s`.
    fn push(&mut self, s: &Sidecar, r: &ktstr_plan::results::WorkerReport) {
        for point in &r.progress {
            self.run_id.push(s.run_id.clone());
            self.job.push(s.job.clone());
            self.kernel.push(s.kernel.clone());
            self.repetition.push(s.repetition.index);
            self.cgroup.push(r.cgroup.clone());
            self.index.push(r.index);
            self.at_ms.push(point.at_ms);
            self.iterations.push(point.iterations);
        }
    }

    /// The progress table.
    fn finish(self) -> Result<DataFrame, StatsError> {
        DataFrame::new_infer_height(vec![
            Column::new("run_id".into(), self.run_id),
            Column::new("job".into(), self.job),
            Column::new("kernel".into(), self.kernel),
            Column::new("repetition".into(), self.repetition),
            Column::new("cgroup".into(), self.cgroup),
            Column::new("index".into(), self.index),
            Column::new("at_ms".into(), self.at_ms),
            Column::new("iterations".into(), self.iterations),
        ])
        .map_err(frame("building the progress table"))
    }
}

/// Column builders for the monitor table.
#[derive(Default)]
struct MonitorCols {
    run_id: Vec<String>,
    job: Vec<String>,
    kernel: Vec<String>,
    repetition: Vec<u32>,
    at_ms: Vec<i64>,
    cpu: Vec<u32>,
    nr_running: Vec<u32>,
    scx_nr_running: Vec<Option<u32>>,
    local_dsq: Vec<Option<u32>>,
    clock_ns: Vec<u64>,
    curr_pid: Vec<i32>,
    curr_comm: Vec<String>,
}

impl MonitorCols {
    /// Adds every CPU of every monitor sample of job `s`.
    fn push(&mut self, s: &Sidecar) {
        let Some(m) = &s.vm.monitor else { return };
        for sample in &m.samples {
            for (cpu, c) in sample.cpus.iter().enumerate() {
                self.run_id.push(s.run_id.clone());
                self.job.push(s.job.clone());
                self.kernel.push(s.kernel.clone());
                self.repetition.push(s.repetition.index);
                self.at_ms.push(sample.at_ms);
                self.cpu.push(cpu as u32);
                self.nr_running.push(c.nr_running);
                self.scx_nr_running.push(c.scx_nr_running);
                self.local_dsq.push(c.local_dsq);
                self.clock_ns.push(c.clock_ns);
                self.curr_pid.push(c.curr_pid);
                self.curr_comm.push(c.curr_comm.clone());
            }
        }
    }

    /// The monitor table.
    fn finish(self) -> Result<DataFrame, StatsError> {
        DataFrame::new_infer_height(vec![
            Column::new("run_id".into(), self.run_id),
            Column::new("job".into(), self.job),
            Column::new("kernel".into(), self.kernel),
            Column::new("repetition".into(), self.repetition),
            Column::new("at_ms".into(), self.at_ms),
            Column::new("cpu".into(), self.cpu),
            Column::new("nr_running".into(), self.nr_running),
            Column::new("scx_nr_running".into(), self.scx_nr_running),
            Column::new("local_dsq".into(), self.local_dsq),
            Column::new("clock_ns".into(), self.clock_ns),
            Column::new("curr_pid".into(), self.curr_pid),
            Column::new("curr_comm".into(), self.curr_comm),
        ])
        .map_err(frame("building the monitor table"))
    }
}
