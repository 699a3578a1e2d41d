//! Steps: ops that change the running scenario, then a hold.

use serde::{Deserialize, Serialize};

use crate::cgroup::CgroupDef;
use crate::cpuset::CpusetSpec;
use crate::plan::SourcePos;
use crate::policy::{Affinity, Policy};

/// How long a step holds after its ops.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "hold", rename_all = "snake_case", deny_unknown_fields)]
pub enum Hold {
    /// A fraction of the scenario's duration.
    Frac {
        /// 0 < f <= 1.
        f: f64,
    },
    /// A fixed number of seconds.
    Fixed {
        /// Seconds.
        secs: f64,
    },
    /// Repeat the ops `times` times, sharing what time is left evenly.
    Looped {
        /// Repetitions.
        times: u32,
    },
}

/// Ops followed by a hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What changes at the start of the step.
    pub ops: Vec<Op>,
    /// How long the step lasts.
    pub hold: Hold,
    /// Where the script wrote it.
    pub at: SourcePos,
}

/// A change to the running scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Create a cgroup and start its workers.
    AddCgroup {
        /// The cgroup.
        cgroup: CgroupDef,
    },
    /// Stop a cgroup's workers and remove it.
    RemoveCgroup {
        /// Its name.
        name: String,
    },
    /// Set a cgroup's cpuset.
    SetCpuset {
        /// The cgroup.
        name: String,
        /// The new cpuset.
        cpuset: CpusetSpec,
    },
    /// Allow a cgroup every CPU again.
    ClearCpuset {
        /// The cgroup.
        name: String,
    },
    /// Exchange two cgroups' cpusets.
    SwapCpusets {
        /// One cgroup.
        a: String,
        /// The other.
        b: String,
    },
    /// Start `count` more workers in a cgroup.
    Spawn {
        /// The cgroup.
        name: String,
        /// How many.
        count: u32,
    },
    /// Stop a cgroup's workers (the cgroup stays).
    StopCgroup {
        /// The cgroup.
        name: String,
    },
    /// Change the workers' affinity.
    SetAffinity {
        /// The cgroup.
        name: String,
        /// The new affinity.
        affinity: Affinity,
    },
    /// Move every task of one cgroup into another.
    MoveTasks {
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// Change the workers' nice value.
    SetNice {
        /// The cgroup.
        name: String,
        /// The nice value.
        nice: i32,
    },
    /// Change the workers' policy.
    SetPolicy {
        /// The cgroup.
        name: String,
        /// The policy.
        policy: Policy,
    },
}
