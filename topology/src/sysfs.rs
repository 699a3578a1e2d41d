//! Reads a [`CpuLayout`] from a sysfs tree: the host's `/sys`, or the
//! guest's own from inside a VM.

use std::fs;
use std::path::{Path, PathBuf};

use crate::{cpulist, CpuLayout, NumaNode, TopologyError, LOCAL_DISTANCE};

/// Reads the layout under `sys` (normally `/sys`): online CPUs from
/// `devices/system/cpu/online`; each CPU's LLC group from its highest-level
/// cache (`cache/index3` on x86) `shared_cpu_list`; SMT siblings from
/// `topology/thread_siblings_list`; nodes from `devices/system/node/node*`
/// `cpulist` and `distance`. Groups are cut down to online CPUs. A kernel
/// without NUMA shows one node 0 holding every CPU.
pub fn read_layout(sys: &Path) -> Result<CpuLayout, TopologyError> {
    let cpu_dir = sys.join("devices/system/cpu");
    let cpus = cpulist::parse(&read(&cpu_dir.join("online"))?)?;
    let online =
        |group: Vec<u32>| -> Vec<u32> { group.into_iter().filter(|c| cpus.contains(c)).collect() };
    let mut llcs = Vec::new();
    let mut smt_siblings = Vec::new();
    for &cpu in &cpus {
        let dir = cpu_dir.join(format!("cpu{cpu}"));
        llcs.push(online(match llc_dir(&dir)? {
            Some(d) => cpulist::parse(&read(&d.join("shared_cpu_list"))?)?,
            None => vec![cpu],
        }));
        let siblings = dir.join("topology/thread_siblings_list");
        smt_siblings.push(online(if siblings.exists() {
            cpulist::parse(&read(&siblings)?)?
        } else {
            vec![cpu]
        }));
    }
    let (numa_nodes, distances) = read_nodes(sys, &cpus)?;
    let mut layout = CpuLayout {
        cpus,
        llcs,
        smt_siblings,
        numa_nodes,
        distances,
    };
    layout.normalize();
    Ok(layout)
}

/// The cache directory of the highest level under `cpu_dir/cache`, if any.
fn llc_dir(cpu_dir: &Path) -> Result<Option<PathBuf>, TopologyError> {
    let cache = cpu_dir.join("cache");
    let Ok(entries) = fs::read_dir(&cache) else {
        return Ok(None);
    };
    let mut best: Option<(u32, PathBuf)> = None;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_index = entry.file_name().to_string_lossy().starts_with("index");
        if !is_index || !path.join("shared_cpu_list").exists() {
            continue;
        }
        let level = parse_u32(&path.join("level"))?;
        if best.as_ref().is_none_or(|(l, _)| level > *l) {
            best = Some((level, path));
        }
    }
    Ok(best.map(|(_, p)| p))
}

type Nodes = (Vec<NumaNode>, Vec<Vec<u32>>);

fn read_nodes(sys: &Path, cpus: &[u32]) -> Result<Nodes, TopologyError> {
    let node_dir = sys.join("devices/system/node");
    let mut ids: Vec<u32> = match fs::read_dir(&node_dir) {
        Ok(entries) => entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_prefix("node")?.parse().ok()
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    if ids.is_empty() {
        let node = NumaNode {
            id: 0,
            cpus: cpus.to_vec(),
        };
        return Ok((vec![node], vec![vec![LOCAL_DISTANCE]]));
    }
    ids.sort_unstable();
    let mut nodes = Vec::new();
    let mut distances = Vec::new();
    for id in ids {
        let dir = node_dir.join(format!("node{id}"));
        let node_cpus = cpulist::parse(&read(&dir.join("cpulist"))?)?;
        nodes.push(NumaNode {
            id,
            cpus: node_cpus.into_iter().filter(|c| cpus.contains(c)).collect(),
        });
        let path = dir.join("distance");
        let row = read(&path)?
            .split_whitespace()
            .map(|d| d.parse().map_err(|_| bad(&path, "not a distance list")))
            .collect::<Result<Vec<u32>, _>>()?;
        distances.push(row);
    }
    Ok((nodes, distances))
}

fn read(path: &Path) -> Result<String, TopologyError> {
    fs::read_to_string(path).map_err(|e| bad(path, &e.to_string()))
}

fn parse_u32(path: &Path) -> Result<u32, TopologyError> {
    read(path)?
        .trim()
        .parse()
        .map_err(|_| bad(path, "not a number"))
}

fn bad(path: &Path, reason: &str) -> TopologyError {
    TopologyError::Sysfs {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Topology;

    fn put(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    /// A fake sysfs tree as Linux shows `topo`, built from the layout.
    fn fake_sysfs(root: &Path, t: Topology) {
        let l = t.expected_layout();
        put(root, "devices/system/cpu/online", &cpulist::format(&l.cpus));
        for &cpu in &l.cpus {
            let llc = l.llcs.iter().find(|g| g.contains(&cpu)).unwrap();
            let smt = l.smt_siblings.iter().find(|g| g.contains(&cpu)).unwrap();
            let d = format!("devices/system/cpu/cpu{cpu}");
            put(root, &format!("{d}/cache/index0/level"), "1\n");
            put(
                root,
                &format!("{d}/cache/index0/shared_cpu_list"),
                &cpulist::format(smt),
            );
            put(root, &format!("{d}/cache/index3/level"), "3\n");
            put(
                root,
                &format!("{d}/cache/index3/shared_cpu_list"),
                &cpulist::format(llc),
            );
            put(
                root,
                &format!("{d}/topology/thread_siblings_list"),
                &cpulist::format(smt),
            );
        }
        for (n, row) in l.numa_nodes.iter().zip(&l.distances) {
            let d = format!("devices/system/node/node{}", n.id);
            put(root, &format!("{d}/cpulist"), &cpulist::format(&n.cpus));
            let row: Vec<String> = row.iter().map(u32::to_string).collect();
            put(root, &format!("{d}/distance"), &row.join(" "));
        }
    }

    #[test]
    fn reads_back_what_a_topology_lays_out() {
        for spec in ["1n1l2c1t", "1n2l2c2t", "2n4l2c1t", "1n3l3c1t"] {
            let t: Topology = spec.parse().unwrap();
            let dir = tempfile::tempdir().unwrap();
            fake_sysfs(dir.path(), t);
            let seen = read_layout(dir.path()).unwrap();
            assert_eq!(seen, t.expected_layout(), "{spec}");
        }
    }

    #[test]
    fn offline_cpus_are_cut_and_missing_numa_is_one_node() {
        let t: Topology = "1n1l4c1t".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        fake_sysfs(dir.path(), t);
        fs::remove_dir_all(dir.path().join("devices/system/node")).unwrap();
        put(dir.path(), "devices/system/cpu/online", "0-2");
        let seen = read_layout(dir.path()).unwrap();
        assert_eq!(seen.cpus, vec![0, 1, 2]);
        assert_eq!(seen.llcs, vec![vec![0, 1, 2]]);
        assert_eq!(seen.numa_nodes[0].cpus, vec![0, 1, 2]);
        assert_eq!(seen.distances, vec![vec![10]]);
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_layout(dir.path()).unwrap_err().to_string();
        assert!(e.contains("devices/system/cpu/online"), "{e}");
    }

    #[test]
    fn host_sysfs_reads() {
        let l = read_layout(Path::new("/sys")).unwrap();
        assert!(!l.cpus.is_empty());
        assert_eq!(l.numa_nodes.len(), l.distances.len());
    }
}
