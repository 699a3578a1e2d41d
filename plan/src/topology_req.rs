//! Which topology a scenario runs on: a fixed one, or bounds the gauntlet
//! satisfies (with where the script set each bound).

use std::collections::BTreeMap;

use ktstr_topology::Topology;
use serde::{Deserialize, Serialize};

use crate::plan::SourcePos;

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
        let bounds = [
            ("min_llcs", self.min_llcs, t.llcs(), "LLCs"),
            ("max_llcs", self.max_llcs, t.llcs(), "LLCs"),
            ("min_cpus", self.min_cpus, t.cpus(), "CPUs"),
            ("max_cpus", self.max_cpus, t.cpus(), "CPUs"),
            (
                "min_numa_nodes",
                self.min_numa_nodes,
                t.numa_nodes(),
                "NUMA nodes",
            ),
            (
                "max_numa_nodes",
                self.max_numa_nodes,
                t.numa_nodes(),
                "NUMA nodes",
            ),
        ];
        let mut out = Vec::new();
        for (name, bound, have, what) in bounds {
            let Some(b) = bound else { continue };
            let broken = if name.starts_with("min_") {
                have < b
            } else {
                have > b
            };
            if broken {
                out.push((name, format!("{name}({b}): {t} has {have} {what}")));
            }
        }
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

    /// The topology a run uses when the user may name one: `over` (which
    /// replaces a fixed topology, and must satisfy constraints), else the
    /// default. None when nothing fits.
    pub fn choose(&self, over: Option<Topology>) -> Option<Topology> {
        match (over, self) {
            (Some(t), TopologyReq::Constraints(c)) => c.accepts(&t).then_some(t),
            (Some(t), TopologyReq::Fixed { .. }) => Some(t),
            (None, req) => req.default_topology(),
        }
    }
}
