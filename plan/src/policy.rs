//! Scheduling policies and per-worker affinity intents.

use serde::{Deserialize, Serialize};

/// A Linux scheduling policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum Policy {
    /// SCHED_OTHER / SCHED_NORMAL.
    Normal,
    /// SCHED_BATCH.
    Batch,
    /// SCHED_IDLE.
    Idle,
    /// SCHED_FIFO at a priority 1-99.
    Fifo {
        /// RT priority.
        prio: u8,
    },
    /// SCHED_RR at a priority 1-99.
    Rr {
        /// RT priority.
        prio: u8,
    },
}

/// How each worker's CPU affinity is set inside its cgroup's cpuset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "affinity", rename_all = "snake_case", deny_unknown_fields)]
pub enum Affinity {
    /// Whatever the cgroup allows.
    Inherit,
    /// A random subset of `cpus` CPUs of the cpuset.
    RandomSubset {
        /// CPUs per worker.
        cpus: u32,
    },
    /// The CPUs of one LLC, workers spread over LLCs.
    LlcAligned,
    /// One CPU each, round robin.
    SingleCpu,
    /// Exactly these CPUs.
    Exact {
        /// CPU ids.
        cpus: Vec<u32>,
    },
}
