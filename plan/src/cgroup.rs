//! One cgroup of a scenario, and what may name one.

use serde::{Deserialize, Serialize};

use crate::cpuset::CpusetSpec;
use crate::plan::SourcePos;
use crate::policy::{Affinity, Policy};
use crate::work::Work;

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
    /// Whether its children (and its own workers' leaf, when it has
    /// children) get the cpu and cpuset controllers; false leaves its
    /// `cgroup.subtree_control` empty: they only group tasks.
    #[serde(default = "controllers_default", skip_serializing_if = "Clone::clone")]
    pub controllers: bool,
    /// Where the script defined it.
    pub at: SourcePos,
}

fn controllers_default() -> bool {
    true
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
