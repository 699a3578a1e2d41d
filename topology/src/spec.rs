//! [`Topology`]: the CPU topology a test declares, `NnNlNcNt`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{CpuLayout, NumaNode, TopologyError};

/// The ACPI SLIT distance of a node to itself.
pub const LOCAL_DISTANCE: u32 = 10;
/// The distance between two different nodes of a declared topology.
pub const REMOTE_DISTANCE: u32 = 20;
/// The most CPUs a topology may declare.
pub const MAX_CPUS: u32 = 4096;

/// A uniform CPU topology: `numa_nodes` nodes holding `llcs` last-level
/// caches between them (evenly), each LLC shared by `cores_per_llc` cores
/// of `threads_per_core` SMT threads.
///
/// CPUs are numbered thread-fastest: CPU `i` is thread `i % t` of core
/// `(i / t) % c` of LLC `i / (c * t)`, and LLC `l` is on node
/// `l / (llcs / numa_nodes)`. Callers ask the methods ([`Self::node_of_llc`],
/// [`Self::llc_cpus`], ...) rather than compute this themselves, so that
/// non-uniform layouts (per-node LLC counts and memory, memory-only nodes)
/// can be added without changing them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "TopologyFields", into = "TopologyFields")]
pub struct Topology {
    numa_nodes: u32,
    llcs: u32,
    cores_per_llc: u32,
    threads_per_core: u32,
}

/// A CPU's place in a [`Topology`] ([`Topology::cpu_position`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuPosition {
    /// Its LLC.
    pub llc: u32,
    /// Its core within the LLC.
    pub core: u32,
    /// Its SMT thread within the core.
    pub thread: u32,
}

/// The serialized form of [`Topology`], validated on the way in.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopologyFields {
    numa_nodes: u32,
    llcs: u32,
    cores_per_llc: u32,
    threads_per_core: u32,
}

impl TryFrom<TopologyFields> for Topology {
    type Error = TopologyError;
    fn try_from(f: TopologyFields) -> Result<Self, TopologyError> {
        Topology::new(f.numa_nodes, f.llcs, f.cores_per_llc, f.threads_per_core)
    }
}

impl From<Topology> for TopologyFields {
    fn from(t: Topology) -> Self {
        TopologyFields {
            numa_nodes: t.numa_nodes,
            llcs: t.llcs,
            cores_per_llc: t.cores_per_llc,
            threads_per_core: t.threads_per_core,
        }
    }
}

impl Topology {
    /// A validated topology: every count at least 1, LLCs divisible evenly
    /// over the NUMA nodes, at most [`MAX_CPUS`] CPUs.
    pub fn new(
        numa_nodes: u32,
        llcs: u32,
        cores_per_llc: u32,
        threads_per_core: u32,
    ) -> Result<Self, TopologyError> {
        let t = Topology {
            numa_nodes,
            llcs,
            cores_per_llc,
            threads_per_core,
        };
        let invalid = |reason: String| TopologyError::Invalid {
            topology: t.to_string(),
            reason,
        };
        for (what, n) in [
            ("NUMA nodes", numa_nodes),
            ("LLCs", llcs),
            ("cores per LLC", cores_per_llc),
            ("threads per core", threads_per_core),
        ] {
            if n == 0 {
                return Err(invalid(format!("{what} must be at least 1")));
            }
        }
        if !llcs.is_multiple_of(numa_nodes) {
            return Err(invalid(format!(
                "{llcs} LLCs do not divide evenly over {numa_nodes} NUMA nodes"
            )));
        }
        let cpus = u64::from(llcs) * u64::from(cores_per_llc) * u64::from(threads_per_core);
        if cpus > u64::from(MAX_CPUS) {
            return Err(invalid(format!(
                "{cpus} CPUs exceed the maximum of {MAX_CPUS}"
            )));
        }
        Ok(t)
    }

    /// NUMA nodes that hold CPUs.
    pub fn numa_nodes(&self) -> u32 {
        self.numa_nodes
    }

    /// Last-level caches in the whole machine.
    pub fn llcs(&self) -> u32 {
        self.llcs
    }

    /// Cores sharing each LLC.
    pub fn cores_per_llc(&self) -> u32 {
        self.cores_per_llc
    }

    /// SMT threads per core.
    pub fn threads_per_core(&self) -> u32 {
        self.threads_per_core
    }

    /// Logical CPUs in total.
    pub fn cpus(&self) -> u32 {
        self.llcs * self.cores_per_llc * self.threads_per_core
    }

    /// Logical CPUs sharing one LLC.
    pub fn cpus_per_llc(&self) -> u32 {
        self.cores_per_llc * self.threads_per_core
    }

    /// LLCs on node `node`.
    pub fn llcs_on_node(&self, node: u32) -> Vec<u32> {
        let per = self.llcs / self.numa_nodes;
        (node * per..(node + 1) * per).collect()
    }

    /// The NUMA node LLC `llc` belongs to.
    pub fn node_of_llc(&self, llc: u32) -> u32 {
        llc / (self.llcs / self.numa_nodes)
    }

    /// Where CPU `cpu` sits: its LLC, its core within the LLC and its
    /// thread within the core.
    pub fn cpu_position(&self, cpu: u32) -> CpuPosition {
        let t = self.threads_per_core;
        CpuPosition {
            llc: cpu / self.cpus_per_llc(),
            core: (cpu / t) % self.cores_per_llc,
            thread: cpu % t,
        }
    }

    /// The NUMA node CPU `cpu` belongs to.
    pub fn node_of_cpu(&self, cpu: u32) -> u32 {
        self.node_of_llc(cpu / self.cpus_per_llc())
    }

    /// The CPUs sharing LLC `llc`.
    pub fn llc_cpus(&self, llc: u32) -> Vec<u32> {
        let per = self.cpus_per_llc();
        (llc * per..(llc + 1) * per).collect()
    }

    /// The CPUs of NUMA node `node`.
    pub fn node_cpus(&self, node: u32) -> Vec<u32> {
        self.llcs_on_node(node)
            .into_iter()
            .flat_map(|l| self.llc_cpus(l))
            .collect()
    }

    /// The SLIT distance from node `from` to node `to`.
    pub fn distance(&self, from: u32, to: u32) -> u32 {
        if from == to {
            LOCAL_DISTANCE
        } else {
            REMOTE_DISTANCE
        }
    }

    /// The layout a machine of this topology shows its operating system.
    pub fn expected_layout(&self) -> CpuLayout {
        let t = self.threads_per_core;
        let nodes: Vec<u32> = (0..self.numa_nodes).collect();
        CpuLayout {
            cpus: (0..self.cpus()).collect(),
            llcs: (0..self.llcs).map(|l| self.llc_cpus(l)).collect(),
            smt_siblings: (0..self.cpus() / t)
                .map(|core| (core * t..(core + 1) * t).collect())
                .collect(),
            numa_nodes: nodes
                .iter()
                .map(|&id| NumaNode {
                    id,
                    cpus: self.node_cpus(id),
                })
                .collect(),
            distances: nodes
                .iter()
                .map(|&a| nodes.iter().map(|&b| self.distance(a, b)).collect())
                .collect(),
        }
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}n{}l{}c{}t",
            self.numa_nodes, self.llcs, self.cores_per_llc, self.threads_per_core
        )
    }
}

impl FromStr for Topology {
    type Err = TopologyError;

    /// Parses `2,4,2,1` or `2n4l2c1t` (letters in that order, any case).
    fn from_str(input: &str) -> Result<Self, TopologyError> {
        let syntax = |reason: &str| TopologyError::Syntax {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let s = input.trim().to_ascii_lowercase();
        let parts: Vec<&str> = if s.contains(',') {
            s.split(',').map(str::trim).collect()
        } else {
            let mut rest = s.as_str();
            let mut parts = Vec::new();
            for unit in ['n', 'l', 'c', 't'] {
                let (num, tail) = rest
                    .split_once(unit)
                    .ok_or_else(|| syntax(&format!("missing the `{unit}` count")))?;
                parts.push(num);
                rest = tail;
            }
            if !rest.is_empty() {
                return Err(syntax(&format!(
                    "unexpected `{rest}` after the thread count"
                )));
            }
            parts
        };
        if parts.len() != 4 {
            return Err(syntax(&format!("{} numbers given, 4 needed", parts.len())));
        }
        let mut n = [0u32; 4];
        for (slot, p) in n.iter_mut().zip(&parts) {
            *slot = p
                .parse()
                .map_err(|_| syntax(&format!("`{p}` is not a count")))?;
        }
        Topology::new(n[0], n[1], n[2], n[3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_positions_and_nodes_follow_the_numbering() {
        let t: Topology = "2n4l3c2t".parse().unwrap();
        // CPU 7: thread 1 of core 0 of LLC 1 (6 CPUs per LLC), node 0.
        let p = t.cpu_position(7);
        assert_eq!((p.llc, p.core, p.thread), (1, 0, 1));
        assert_eq!(t.node_of_cpu(7), 0);
        assert_eq!(t.node_of_cpu(12), 1);
        for node in 0..2 {
            for cpu in t.node_cpus(node) {
                assert_eq!(t.node_of_cpu(cpu), node);
                assert!(t.llc_cpus(t.cpu_position(cpu).llc).contains(&cpu));
            }
        }
    }

    #[test]
    fn parses_both_forms_and_displays() {
        let a: Topology = "2n4l2c1t".parse().unwrap();
        let b: Topology = "2,4,2,1".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2n4l2c1t");
        assert_eq!(a.cpus(), 8);
        assert_eq!(" 1N2L2C2T ".parse::<Topology>().unwrap().cpus(), 8);
    }

    #[test]
    fn rejects_invalid_with_reason() {
        let cases = [
            ("2n3l2c1t", "do not divide evenly"),
            ("0n1l1c1t", "NUMA nodes must be at least 1"),
            ("1n1l0c1t", "cores per LLC must be at least 1"),
            ("1,2,3", "3 numbers given"),
            ("1n2l3c", "missing the `t` count"),
            ("1n2l3c1tx", "unexpected `x`"),
            ("1nxl3c1t", "`x` is not a count"),
            ("1n64l64c2t", "exceed the maximum"),
        ];
        for (input, want) in cases {
            let e = input.parse::<Topology>().unwrap_err().to_string();
            assert!(e.contains(want), "{input}: {e}");
        }
    }

    #[test]
    fn expected_layout_numbers_threads_fastest() {
        let l = "2n4l2c2t".parse::<Topology>().unwrap().expected_layout();
        assert_eq!(l.cpus.len(), 16);
        assert_eq!(l.llcs[1], vec![4, 5, 6, 7]);
        assert_eq!(l.smt_siblings[3], vec![6, 7]);
        assert_eq!(l.numa_nodes[1].cpus, (8..16).collect::<Vec<_>>());
        assert_eq!(l.distances, vec![vec![10, 20], vec![20, 10]]);
    }

    #[test]
    fn serde_validates() {
        let t: Topology = "1n3l3c1t".parse().unwrap();
        let j = serde_json::to_string(&t).unwrap();
        assert_eq!(serde_json::from_str::<Topology>(&j).unwrap(), t);
        let bad = r#"{"numa_nodes":2,"llcs":3,"cores_per_llc":1,"threads_per_core":1}"#;
        assert!(serde_json::from_str::<Topology>(bad).is_err());
    }
}
