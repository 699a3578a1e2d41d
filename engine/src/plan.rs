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

/// The longest scenario, in seconds.
pub const MAX_DURATION_S: f64 = 3600.0;

/// Why `secs` cannot be a scenario's duration, if it cannot: it must be
/// more than 0 and at most [`MAX_DURATION_S`] (NaN and infinities are
/// not).
pub fn check_duration(secs: f64) -> Result<(), String> {
    if secs > 0.0 && secs <= MAX_DURATION_S {
        return Ok(());
    }
    Err(format!(
        "duration must be more than 0 and at most {MAX_DURATION_S} s, not {secs}"
    ))
}

/// A place in a script (1-based line and column).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePos {
    /// Line.
    pub line: usize,
    /// Column.
    pub col: usize,
    /// The file, when it is not the scenario's own script: an imported
    /// module's path, or [`crate::check::STDLIB_FILE`] for the stdlib.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// For a position in another file: the call in the scenario's own
    /// script that led there (`k::steady(...)` for a cgroup the stdlib
    /// defines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<Box<SourcePos>>,
}

impl SourcePos {
    /// The file this position is in: its own, else `main` (the scenario's).
    pub fn file_or<'a>(&'a self, main: &'a str) -> &'a str {
        self.file.as_deref().unwrap_or(main)
    }
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
    /// Where the script set each bound, by its function name
    /// (`min_llcs`, `requires_smt`, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub at: BTreeMap<String, SourcePos>,
}

impl TopologyConstraints {
    /// Whether `t` is within the bounds.
    pub fn accepts(&self, t: &Topology) -> bool {
        self.violations(t).is_empty()
    }

    /// Each bound `t` breaks: (the bound's function name, why).
    pub fn violations(&self, t: &Topology) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut lower = |name: &'static str, bound: Option<u32>, have: u32, what: &str| {
            if let Some(b) = bound.filter(|&b| have < b) {
                out.push((name, format!("{name}({b}): {t} has {have} {what}")));
            }
        };
        lower("min_llcs", self.min_llcs, t.llcs(), "LLCs");
        lower("min_cpus", self.min_cpus, t.cpus(), "CPUs");
        lower(
            "min_numa_nodes",
            self.min_numa_nodes,
            t.numa_nodes(),
            "NUMA nodes",
        );
        let mut upper = |name: &'static str, bound: Option<u32>, have: u32, what: &str| {
            if let Some(b) = bound.filter(|&b| have > b) {
                out.push((name, format!("{name}({b}): {t} has {have} {what}")));
            }
        };
        upper("max_llcs", self.max_llcs, t.llcs(), "LLCs");
        upper("max_cpus", self.max_cpus, t.cpus(), "CPUs");
        upper(
            "max_numa_nodes",
            self.max_numa_nodes,
            t.numa_nodes(),
            "NUMA nodes",
        );
        if self.requires_smt && t.threads_per_core() < 2 {
            out.push((
                "requires_smt",
                format!("requires_smt(): {t} has 1 thread per core"),
            ));
        }
        out
    }

    /// Where the script set bound `name`, if it did.
    pub fn position(&self, name: &str) -> Option<&SourcePos> {
        self.at.get(name)
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

/// The longest cgroup name, in bytes.
pub const MAX_CGROUP_NAME: usize = 64;

/// Why `name` cannot name a cgroup, if it cannot. A name becomes a
/// directory in the guest's cgroup tree beside the kernel's interface
/// files (which all contain a `.`) and ktstr's own `_workers` leaf, so it
/// is 1 to [`MAX_CGROUP_NAME`] ASCII letters, digits, `_` and `-`, starting
/// with a letter or digit.
pub fn check_cgroup_name(name: &str) -> Result<(), String> {
    let shown = format!("{name:?}");
    let shown: String = shown.chars().take(40).collect();
    let problem = if name.is_empty() {
        "is empty".to_string()
    } else if name.len() > MAX_CGROUP_NAME {
        format!(
            "is {} bytes; at most {MAX_CGROUP_NAME} are allowed",
            name.len()
        )
    } else if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        "must start with a letter or digit".to_string()
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        "may hold only ASCII letters, digits, `_` and `-`".to_string()
    } else {
        return Ok(());
    };
    Err(format!("cgroup name {shown} {problem}"))
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
