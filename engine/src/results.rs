//! The typed results claims are judged against (filled in by the run).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one worker did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerResults {
    /// Loop iterations completed.
    pub iterations: u64,
    /// Longest interval between progress points, ms.
    pub max_gap_ms: f64,
    /// CPU migrations.
    pub migrations: u64,
    /// Median wake-up latency, µs.
    pub wake_p50_us: f64,
    /// 99th percentile wake-up latency, µs.
    pub wake_p99_us: f64,
    /// Time runnable but waiting for a CPU (schedstat), ms.
    pub run_delay_ms: f64,
    /// CPU time, ms.
    pub cpu_time_ms: f64,
    /// Every CPU the worker ran on.
    #[serde(default)]
    pub cpus_used: Vec<u32>,
    /// Cumulative iterations at regular instants: (ms since the run
    /// started, iterations completed by then), ascending in time.
    #[serde(default)]
    pub progress: Vec<(f64, u64)>,
    /// Why the worker could not do its work, if it could not.
    #[serde(default)]
    pub error: Option<String>,
}

/// Workers of one cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupResults {
    /// One entry per worker, in spawn order.
    pub workers: Vec<WorkerResults>,
}

/// Everything a run measured, by cgroup name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// Cgroup name to its results.
    pub cgroups: BTreeMap<String, CgroupResults>,
}
