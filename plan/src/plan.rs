//! The Plan: everything a checked script asked for, as serializable data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cgroup::CgroupDef;
use crate::claims::Claim;
use crate::steps::{Op, Step};
use crate::topology_req::TopologyReq;

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
    /// module's path, or `ktstr:stdlib.rhai` for the stdlib.
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
    /// A negative test: the run passes only when it fails (the reason says
    /// what the failure shows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_fail: Option<ExpectFail>,
    /// Host files shipped into the guest (`guest_file(...)`,
    /// `--sched-file`): scheduler configurations and the like.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ShippedFile>,
}

/// Where shipped files appear in the guest.
pub const GUEST_FILES_DIR: &str = "/files";

/// The largest file a plan may ship, bytes.
pub const MAX_SHIPPED_FILE_BYTES: u64 = 64 << 20;

/// A host file shipped into the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShippedFile {
    /// Its absolute path on the host.
    pub host: String,
    /// Its path in the guest: [`GUEST_FILES_DIR`]/its file name.
    pub guest: String,
}

impl ShippedFile {
    /// Checks the host file at `path` (a readable regular file of at most
    /// [`MAX_SHIPPED_FILE_BYTES`], with a plain file name) and names its
    /// guest path; `Err` says what is wrong with it.
    pub fn new(path: &std::path::Path) -> Result<Self, String> {
        let shown = path.display();
        let meta = std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?;
        if !meta.is_file() {
            return Err(format!("{shown} is not a regular file"));
        }
        if meta.len() > MAX_SHIPPED_FILE_BYTES {
            return Err(format!(
                "{shown} is {} bytes; files shipped into the guest may have at most {}",
                meta.len(),
                MAX_SHIPPED_FILE_BYTES
            ));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| !n.is_empty() && !n.starts_with('.') && !n.contains(['/', '\\']))
            .ok_or_else(|| format!("{shown}: the file name must be plain UTF-8, not hidden"))?;
        let host = std::fs::canonicalize(path).map_err(|e| format!("{shown}: {e}"))?;
        Ok(ShippedFile {
            host: host.display().to_string(),
            guest: format!("{GUEST_FILES_DIR}/{name}"),
        })
    }

    /// Adds `f` to `files`, refusing a second file of the same guest path
    /// from another host path (the same file twice is kept once).
    pub fn add_to(files: &mut Vec<ShippedFile>, f: ShippedFile) -> Result<(), String> {
        match files.iter().find(|g| g.guest == f.guest) {
            Some(g) if g.host == f.host => Ok(()),
            Some(g) => Err(format!(
                "{} and {} would both be {} in the guest; rename one",
                g.host, f.host, f.guest
            )),
            None => {
                files.push(f);
                Ok(())
            }
        }
    }
}

impl Plan {
    /// A plan of no cgroups, steps or claims on a fixed `topology`, for
    /// jobs ktstr makes itself (a verifier cell, a selftest job): named
    /// `name`, from `source`, running `duration_s`.
    pub fn bare(
        name: &str,
        source: &str,
        description: String,
        duration_s: f64,
        topology: ktstr_topology::Topology,
    ) -> Plan {
        Plan {
            engine_version: crate::PLAN_VERSION.into(),
            source: source.into(),
            name: name.into(),
            description,
            duration_s,
            topology: TopologyReq::Fixed { topology },
            scheduler: None,
            thresholds: Default::default(),
            kernel: KernelReq::default(),
            cgroups: Vec::new(),
            steps: Vec::new(),
            claims: Vec::new(),
            expect_fail: None,
            files: Vec::new(),
        }
    }

    /// The most workers alive at once during the run (cgroups from the
    /// start, then each step's adds, spawns, removals and stops): how many
    /// CPUs the scenario keeps busy at most.
    pub fn peak_workers(&self) -> u64 {
        use std::collections::BTreeMap;
        let mut alive: BTreeMap<&str, u64> = self
            .cgroups
            .iter()
            .map(|c| (c.name.as_str(), u64::from(c.workers)))
            .collect();
        let mut peak: u64 = alive.values().sum();
        for step in &self.steps {
            for op in &step.ops {
                match op {
                    Op::AddCgroup { cgroup } => {
                        alive.insert(&cgroup.name, u64::from(cgroup.workers));
                    }
                    Op::Spawn { name, count } => {
                        *alive.entry(name).or_default() += u64::from(*count);
                    }
                    Op::RemoveCgroup { name } | Op::StopCgroup { name } => {
                        alive.remove(name.as_str());
                    }
                    _ => {}
                }
            }
            peak = peak.max(alive.values().sum());
        }
        peak
    }
}

/// `expect_fail("reason")`: the scenario is a negative test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectFail {
    /// Why it must fail.
    pub reason: String,
    /// Where the script said it.
    pub at: SourcePos,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_workers_follows_adds_spawns_and_removals() {
        let cgroup = |name: &str, workers: u32| {
            serde_json::json!({"name": name, "parent": null, "workers": workers,
                "work": {"type": "spin_wait"}, "cpuset": null, "nice": 0,
                "policy": {"policy": "normal"}, "affinity": {"affinity": "inherit"},
                "comm": null, "at": {"line": 1, "col": 1}})
        };
        let step = |ops: serde_json::Value| {
            serde_json::json!({"ops": ops, "hold": {"hold": "fixed", "secs": 1.0},
                               "at": {"line": 1, "col": 1}})
        };
        let plan: Plan = serde_json::from_value(serde_json::json!({
            "engine_version": "0", "source": "t", "name": "t", "description": "t",
            "duration_s": 10.0,
            "topology": {"kind": "constraints", "min_llcs": null, "max_llcs": null,
                         "min_cpus": null, "max_cpus": null, "min_numa_nodes": null,
                         "max_numa_nodes": null, "requires_smt": false},
            "scheduler": null, "thresholds": {}, "kernel": {"min_version": null, "config": []},
            "cgroups": [cgroup("a", 2), cgroup("b", 1)],
            "steps": [
                step(serde_json::json!([{"op": "spawn", "name": "a", "count": 3}])),
                step(serde_json::json!([{"op": "remove_cgroup", "name": "a"},
                                        {"op": "add_cgroup", "cgroup": cgroup("c", 2)}])),
            ],
            "claims": []
        }))
        .expect("the test plan parses");
        assert_eq!(plan.peak_workers(), 6);
    }
}
