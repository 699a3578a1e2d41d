//! Where workers ran: how often they changed CPU, and on multi-node
//! topologies how much of their time they spent on one node.

use ktstr_topology::Topology;

use super::{Findings, Limits};
use crate::measures::{self, MIN_MIGRATION_ITERATIONS, MIN_NUMA_OBSERVED_MS};
use crate::results::WorkerReport;

/// The placement checks of cgroup `name`'s workers on `topology`.
pub(super) fn check(
    name: &str,
    workers: &[WorkerReport],
    topology: &Topology,
    limits: &Limits,
    f: &mut Findings,
) {
    let ws: Vec<&WorkerReport> = workers.iter().collect();
    let iterations: u64 = ws.iter().map(|w| w.iterations).sum();
    let max_ratio = limits.get("max_migration_ratio");
    if iterations >= MIN_MIGRATION_ITERATIONS {
        if let Ok(ratio) = measures::migration_ratio(&ws) {
            if ratio > max_ratio {
                f.reasons.push(format!(
                    "cgroup {name}: restless, {ratio:.2} CPU changes per iteration \
                     (threshold {max_ratio})"
                ));
            }
        }
    }
    if topology.numa_nodes() < 2 {
        return;
    }
    let min_local = limits.get("min_numa_local_pct");
    for (i, w) in workers.iter().enumerate() {
        let Some((pct, observed)) = measures::numa_local(w) else {
            continue;
        };
        if observed >= MIN_NUMA_OBSERVED_MS && pct < min_local {
            f.reasons.push(format!(
                "worker {name}[{i}] wandered across NUMA nodes: {pct:.0}% of its time on \
                 its most used node (at least {min_local:.0}%)"
            ));
        }
    }
}
