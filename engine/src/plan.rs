//! The Plan: everything a checked script asked for, as serializable data.

use std::collections::BTreeMap;

use ktstr_topology::Topology;
use serde::{Deserialize, Serialize};

use crate::claims::Claim;
use crate::cpuset::CpusetSpec;
use crate::policy::{Affinity, Policy};
use crate::work::Work;

/// Default scenario length in seconds.
pub const DEFAULT_DURATION_S: f64 = 10.0;

/// A place in the script (1-based).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePos {
    /// Line.
    pub line: usize,
    /// Column.
    pub col: usize,
}

/// A recorded scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The engine that recorded it.
    pub engine_version: String,
    /// The script file.
    pub source: String,
    /// Scenario name.
    pub name: String,
    /// One-line description.
    pub description: String,
    /// Run length in seconds.
    pub duration_s: f64,
    /// The topology it runs on.
    pub topology: TopologyReq,
    /// The scheduler; None means the kernel's own (EEVDF).
    pub scheduler: Option<SchedulerSpec>,
    /// Threshold overrides by name.
    pub thresholds: BTreeMap<String, f64>,
    /// What the kernel must offer.
    pub kernel: KernelReq,
    /// Cgroups that exist from the start, parents before children.
    pub cgroups: Vec<CgroupDef>,
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Claims judged after the run.
    pub claims: Vec<Claim>,
}

/// A fixed topology or constraints the gauntlet satisfies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TopologyReq {
    /// Exactly this topology.
    Fixed {
        /// The topology.
        topology: Topology,
    },
    /// Any topology within these bounds.
    Constraints(TopologyConstraints),
}

/// Bounds on the topologies a scenario accepts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologyConstraints {
    /// At least this many LLCs.
    pub min_llcs: Option<u32>,
    /// At most this many LLCs.
    pub max_llcs: Option<u32>,
    /// At least this many CPUs.
    pub min_cpus: Option<u32>,
    /// At most this many CPUs.
    pub max_cpus: Option<u32>,
    /// At least this many NUMA nodes.
    pub min_numa_nodes: Option<u32>,
    /// At most this many NUMA nodes.
    pub max_numa_nodes: Option<u32>,
    /// SMT (two or more threads per core) required.
    pub requires_smt: bool,
}

impl TopologyConstraints {
    /// Whether `t` is within the bounds.
    pub fn accepts(&self, t: &Topology) -> bool {
        let within = |v: u32, lo: Option<u32>, hi: Option<u32>| {
            lo.is_none_or(|l| v >= l) && hi.is_none_or(|h| v <= h)
        };
        within(t.llcs(), self.min_llcs, self.max_llcs)
            && within(t.cpus(), self.min_cpus, self.max_cpus)
            && within(t.numa_nodes(), self.min_numa_nodes, self.max_numa_nodes)
            && (!self.requires_smt || t.threads_per_core() > 1)
    }

    /// The smallest gauntlet preset within the bounds.
    pub fn smallest_preset(&self) -> Option<(&'static str, Topology)> {
        ktstr_topology::presets::presets()
            .into_iter()
            .find(|(_, t)| self.accepts(t))
    }
}

impl TopologyReq {
    /// The topology a single run uses: the fixed one, or the smallest
    /// preset satisfying the constraints.
    pub fn default_topology(&self) -> Option<Topology> {
        match self {
            TopologyReq::Fixed { topology } => Some(*topology),
            TopologyReq::Constraints(c) => c.smallest_preset().map(|(_, t)| t),
        }
    }
}

/// A scheduler binary and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSpec {
    /// Binary name (sample scheduler or on PATH) or path.
    pub name: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Where the script named it.
    pub at: SourcePos,
}

/// Kernel requirements.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelReq {
    /// Minimum version (`6.12`).
    pub min_version: Option<String>,
    /// Config options that must be `y` (`CONFIG_SCHED_CLASS_EXT`).
    pub config: Vec<String>,
}

/// One cgroup and its workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CgroupDef {
    /// Name, unique in the scenario.
    pub name: String,
    /// Parent cgroup's name for nested cgroups.
    pub parent: Option<String>,
    /// Worker processes.
    pub workers: u32,
    /// What they do.
    pub work: Work,
    /// Allowed CPUs (None: all).
    pub cpuset: Option<CpusetSpec>,
    /// Nice value of the workers.
    pub nice: i32,
    /// Scheduling policy of the workers.
    pub policy: Policy,
    /// Per-worker affinity.
    pub affinity: Affinity,
    /// Worker process name.
    pub comm: Option<String>,
    /// Where the script defined it.
    pub at: SourcePos,
}

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
