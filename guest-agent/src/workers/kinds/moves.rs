//! Work that moves itself on purpose: across NUMA nodes, between
//! cgroups, away from its own memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{walk, Run, SPIN};
use crate::workers::probe::{current_cpu_and_node, Probe};
use crate::workers::sys;

/// The allowed CPUs of each NUMA node that has some, from sysfs; an error
/// when fewer than two nodes do.
fn nodes_with_cpus(what: &str) -> Result<Vec<Vec<u32>>, String> {
    let allowed = sys::allowed_cpus();
    let layout = ktstr_topology::sysfs::read_layout(Path::new("/sys"))
        .map_err(|e| format!("{what}: reading the CPU layout: {e}"))?;
    let nodes: Vec<Vec<u32>> = layout
        .numa_nodes
        .iter()
        .map(|n| {
            n.cpus
                .iter()
                .copied()
                .filter(|c| allowed.contains(c))
                .collect::<Vec<u32>>()
        })
        .filter(|c| !c.is_empty())
        .collect();
    if nodes.len() < 2 {
        return Err(format!(
            "{what}: its CPUs {allowed:?} lie on one NUMA node (use min_numa_nodes(2))"
        ));
    }
    Ok(nodes)
}

/// Moves itself to the next node's CPUs every iteration.
pub(super) fn numa_migration_churn(r: &Run, p: &mut Probe) -> Result<(), String> {
    let nodes = nodes_with_cpus("numa_migration_churn")?;
    let all = sys::allowed_cpus();
    let mut i = 0;
    let result = (|| {
        while !r.done() {
            let to = &nodes[i % nodes.len()];
            sys::set_affinity(to).map_err(|e| format!("sched_setaffinity: {e}"))?;
            sys::spin(SPIN / 4);
            let (_, node) = current_cpu_and_node();
            p.count(&format!("on_node{node}"), 1);
            i += 1;
            p.progress();
        }
        Ok(())
    })();
    let _ = sys::set_affinity(&all);
    result
}

/// Sweeps a `size_kb` buffer, moving to the next node's CPUs each second:
/// the pages stay where they were first touched.
pub(super) fn numa_working_set_sweep(r: &Run, p: &mut Probe, size_kb: u32) -> Result<(), String> {
    let nodes = nodes_with_cpus("numa_working_set_sweep")?;
    let all = sys::allowed_cpus();
    let mut buf = vec![0u8; size_kb as usize * 1024];
    let (mut i, mut moved_at) = (0, Instant::now());
    let result = (|| {
        sys::set_affinity(&nodes[0]).map_err(|e| format!("sched_setaffinity: {e}"))?;
        while !r.done() {
            if moved_at.elapsed() >= Duration::from_secs(1) {
                i += 1;
                let to = &nodes[i % nodes.len()];
                sys::set_affinity(to).map_err(|e| format!("sched_setaffinity: {e}"))?;
                p.count("node_moves", 1);
                moved_at = Instant::now();
            }
            walk(&mut buf);
            p.progress();
        }
        Ok(())
    })();
    let _ = sys::set_affinity(&all);
    result
}

/// This process's cgroup directory (cgroup v2), from `/proc/self/cgroup`.
fn own_cgroup() -> Result<PathBuf, String> {
    let text = std::fs::read_to_string("/proc/self/cgroup")
        .map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let rel = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or("no cgroup v2 line in /proc/self/cgroup")?;
    Ok(Path::new(crate::plan::CGROUP_ROOT).join(rel.trim_start_matches('/')))
}

/// Moves this process into `dir`.
fn enter(dir: &Path) -> Result<(), String> {
    let procs = dir.join("cgroup.procs");
    std::fs::write(&procs, "0").map_err(|e| format!("{}: {e}", procs.display()))
}

/// Two child cgroups of the worker's own, removed (after moving back) on
/// drop.
struct ChurnPair {
    home: PathBuf,
    children: [PathBuf; 2],
}

impl ChurnPair {
    fn new() -> Result<Self, String> {
        let home = own_cgroup()?;
        let pid = std::process::id();
        let children = [
            home.join(format!("churn-{pid}-a")),
            home.join(format!("churn-{pid}-b")),
        ];
        for c in &children {
            std::fs::create_dir(c).map_err(|e| format!("mkdir {}: {e}", c.display()))?;
        }
        Ok(ChurnPair { home, children })
    }
}

impl Drop for ChurnPair {
    fn drop(&mut self) {
        let _ = enter(&self.home);
        for c in &self.children {
            let _ = std::fs::remove_dir(c);
        }
    }
}

/// Moves itself between two child cgroups of its own, spinning a little
/// in each.
pub(super) fn cgroup_churn(r: &Run, p: &mut Probe) -> Result<(), String> {
    let pair = ChurnPair::new()?;
    let mut i = 0;
    while !r.done() {
        enter(&pair.children[i % 2])?;
        p.count("cgroup_moves", 1);
        sys::spin(SPIN / 4);
        i += 1;
        p.progress();
    }
    Ok(())
}
