//! The cgroup v2 tree a plan runs in: `/sys/fs/cgroup/ktstr/<a>/<b>...`,
//! with the cpuset and cpu controllers enabled down to every level.
//!
//! cgroup v2 lets no process live in a cgroup that hands controllers to
//! children, so a cgroup that has children keeps its own workers in a leaf
//! `<name>/_workers`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{AgentError, Result};

/// Controllers a ktstr tree enables.
const CONTROLLERS: &str = "+cpuset +cpu";
/// The leaf for the workers of a cgroup with children.
pub const WORKERS_LEAF: &str = "_workers";

/// The tree under `<base>/ktstr`.
#[derive(Debug)]
pub struct CgroupTree {
    root: PathBuf,
}

fn at(path: &Path, what: &str, e: io::Error) -> AgentError {
    AgentError::io(what, path, e)
}

impl CgroupTree {
    /// Creates `<base>/ktstr` with the controllers enabled (base is
    /// `/sys/fs/cgroup` in the guest).
    pub fn create(base: &Path) -> Result<Self> {
        enable(base)?;
        let root = base.join("ktstr");
        if root.exists() {
            remove_tree(&root);
        }
        fs::create_dir(&root).map_err(|e| at(&root, "mkdir", e))?;
        enable(&root)?;
        Ok(CgroupTree { root })
    }

    /// The directory of cgroup `chain` (its ancestors' names, then its own).
    pub fn dir(&self, chain: &[String]) -> PathBuf {
        chain.iter().fold(self.root.clone(), |p, n| p.join(n))
    }

    /// Creates cgroup `chain`; `has_children` makes it a parent with a
    /// workers leaf, whose children get the controllers when
    /// `controllers`. Returns the directory its processes go into.
    pub fn add(&self, chain: &[String], has_children: bool, controllers: bool) -> Result<PathBuf> {
        let dir = self.dir(chain);
        fs::create_dir(&dir).map_err(|e| at(&dir, "mkdir", e))?;
        if has_children {
            if controllers {
                enable(&dir)?;
            }
            let leaf = dir.join(WORKERS_LEAF);
            fs::create_dir(&leaf).map_err(|e| at(&leaf, "mkdir", e))?;
            return Ok(leaf);
        }
        Ok(dir)
    }

    /// Removes the whole tree (processes must be gone).
    pub fn remove(self) {
        remove_tree(&self.root);
    }
}

/// Enables the controllers for the children of `dir`.
fn enable(dir: &Path) -> Result<()> {
    let path = dir.join("cgroup.subtree_control");
    fs::write(&path, CONTROLLERS).map_err(|e| at(&path, "write", e))
}

/// Moves `pid` into the cgroup whose process directory is `dir`.
pub fn move_pid(dir: &Path, pid: u32) -> Result<()> {
    let path = dir.join("cgroup.procs");
    fs::write(&path, pid.to_string()).map_err(|e| at(&path, &format!("move pid {pid} via"), e))
}

/// The pids in the cgroup whose process directory is `dir`.
pub fn pids(dir: &Path) -> Vec<u32> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Sets the cpuset of cgroup directory `dir` (empty: inherit the parent's).
pub fn set_cpus(dir: &Path, cpus: &str) -> Result<()> {
    let path = dir.join("cpuset.cpus");
    fs::write(&path, cpus).map_err(|e| at(&path, &format!("write `{cpus}` to"), e))
}

/// The cpuset configured on `dir` (empty when inherited).
pub fn cpus(dir: &Path) -> String {
    fs::read_to_string(dir.join("cpuset.cpus"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Removes `dir` and everything below it, deepest first.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.path().is_dir() {
                remove_tree(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}
