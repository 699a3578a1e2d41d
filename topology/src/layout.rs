//! [`CpuLayout`]: the CPU layout a machine shows its operating system.

use serde::{Deserialize, Serialize};

use crate::cpulist;

/// One NUMA node and the online CPUs on it (empty for a memory-only node).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumaNode {
    /// The node id.
    pub id: u32,
    /// Its online CPUs, ascending.
    pub cpus: Vec<u32>,
}

/// Online CPUs, LLC groups, SMT sibling groups, NUMA nodes and their
/// distances. Every list is ascending and groups are ordered by their
/// first CPU, so two layouts compare equal exactly when they describe the
/// same machine. `distances[i][j]` is the distance from `numa_nodes[i]` to
/// `numa_nodes[j]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuLayout {
    /// Online CPU ids.
    pub cpus: Vec<u32>,
    /// Groups of CPUs sharing a last-level cache.
    pub llcs: Vec<Vec<u32>>,
    /// Groups of SMT siblings (one group per core).
    pub smt_siblings: Vec<Vec<u32>>,
    /// NUMA nodes.
    pub numa_nodes: Vec<NumaNode>,
    /// The node distance matrix.
    pub distances: Vec<Vec<u32>>,
}

impl CpuLayout {
    /// Puts every list in canonical order (see the type's docs).
    pub fn normalize(&mut self) {
        self.cpus.sort_unstable();
        self.cpus.dedup();
        for groups in [&mut self.llcs, &mut self.smt_siblings] {
            for g in groups.iter_mut() {
                g.sort_unstable();
                g.dedup();
            }
            groups.retain(|g| !g.is_empty());
            groups.sort();
            groups.dedup();
        }
        for n in &mut self.numa_nodes {
            n.cpus.sort_unstable();
        }
    }

    /// Every way `self` differs from `expected`, one line each, naming
    /// groups as CPU lists; empty when they are equal.
    pub fn differences(&self, expected: &CpuLayout) -> Vec<String> {
        let mut out = Vec::new();
        if self.cpus != expected.cpus {
            out.push(format!(
                "cpus: saw {}, expected {}",
                cpulist::format(&self.cpus),
                cpulist::format(&expected.cpus)
            ));
        }
        for (what, saw, want) in [
            ("LLC groups", &self.llcs, &expected.llcs),
            (
                "SMT sibling groups",
                &self.smt_siblings,
                &expected.smt_siblings,
            ),
        ] {
            if saw != want {
                out.push(format!(
                    "{what}: saw {}, expected {}",
                    groups(saw),
                    groups(want)
                ));
            }
        }
        if self.numa_nodes != expected.numa_nodes {
            let show = |nodes: &[NumaNode]| {
                nodes
                    .iter()
                    .map(|n| format!("node{}={}", n.id, cpulist::format(&n.cpus)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            out.push(format!(
                "NUMA nodes: saw {}, expected {}",
                show(&self.numa_nodes),
                show(&expected.numa_nodes)
            ));
        }
        if self.distances != expected.distances {
            out.push(format!(
                "distances: saw {:?}, expected {:?}",
                self.distances, expected.distances
            ));
        }
        out
    }
}

fn groups(g: &[Vec<u32>]) -> String {
    g.iter()
        .map(|c| format!("[{}]", cpulist::format(c)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use crate::Topology;

    #[test]
    fn differences_name_each_mismatch() {
        let want = "1n2l2c1t".parse::<Topology>().unwrap().expected_layout();
        assert!(want.differences(&want).is_empty());
        let mut saw = want.clone();
        saw.llcs = vec![vec![0, 1, 2, 3]];
        saw.distances = vec![vec![10, 20]];
        let d = saw.differences(&want);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0], "LLC groups: saw [0-3], expected [0-1] [2-3]");
        assert!(d[1].starts_with("distances"));
    }

    #[test]
    fn normalize_orders_groups() {
        let mut l = "1n2l2c1t".parse::<Topology>().unwrap().expected_layout();
        let want = l.clone();
        l.llcs = vec![vec![3, 2], vec![1, 0], vec![2, 3]];
        l.normalize();
        assert_eq!(l, want);
    }
}
