//! The plan's cgroups and their workers, and the ops that change them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ktstr_plan::cpuset::CpusetSpec;
use ktstr_plan::policy::Affinity;
use ktstr_plan::{CgroupDef, Op, Plan};
use ktstr_proto::WorkerReport;
use ktstr_topology::{cpulist, Topology};

use crate::cgroups::{self, CgroupTree};
use crate::error::{AgentError, Result};
use crate::workers::{sys, Worker, WorkerSpec};

/// How long a stopped worker may take to report.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// One cgroup of the plan.
struct Group {
    def: CgroupDef,
    procs: PathBuf,
    dir: PathBuf,
    workers: Vec<Worker>,
    spawned: u32,
}

/// Every cgroup and worker of a running plan.
pub struct Groups {
    tree: CgroupTree,
    topology: Topology,
    exe: PathBuf,
    parents: BTreeSet<String>,
    /// Every cgroup keeps its workers in a leaf (a live session cannot
    /// know which cgroups will get children).
    all_parents: bool,
    groups: BTreeMap<String, Group>,
    /// Reports of workers already stopped (stop_cgroup, remove_cgroup).
    pub reports: Vec<WorkerReport>,
}

impl Groups {
    /// An empty tree under `base` for `plan` on `topology`; workers run
    /// `exe --worker`.
    pub fn new(base: &Path, plan: &Plan, topology: Topology, exe: PathBuf) -> Result<Self> {
        let mut parents: BTreeSet<String> = plan
            .cgroups
            .iter()
            .filter_map(|c| c.parent.clone())
            .collect();
        for step in &plan.steps {
            for op in &step.ops {
                if let Op::AddCgroup { cgroup } = op {
                    parents.extend(cgroup.parent.clone());
                }
            }
        }
        Self::empty(base, topology, exe, parents, false)
    }

    /// An empty tree under `base` for a live session on `topology`: any
    /// cgroup may get children later, so each keeps its workers in a leaf.
    pub fn live(base: &Path, topology: Topology, exe: PathBuf) -> Result<Self> {
        Self::empty(base, topology, exe, BTreeSet::new(), true)
    }

    fn empty(
        base: &Path,
        topology: Topology,
        exe: PathBuf,
        parents: BTreeSet<String>,
        all_parents: bool,
    ) -> Result<Self> {
        Ok(Groups {
            tree: CgroupTree::create(base)?,
            topology,
            exe,
            parents,
            all_parents,
            groups: BTreeMap::new(),
            reports: Vec::new(),
        })
    }

    fn chain(&self, def: &CgroupDef) -> Vec<String> {
        let mut chain = vec![def.name.clone()];
        let mut parent = def.parent.clone();
        while let Some(p) = parent {
            chain.insert(0, p.clone());
            parent = self.groups.get(&p).and_then(|g| g.def.parent.clone());
        }
        chain
    }

    /// Creates a cgroup and its (gated) workers.
    pub fn add(&mut self, def: &CgroupDef) -> Result<()> {
        let chain = self.chain(def);
        if self.groups.contains_key(&def.name) {
            return Err(AgentError::Plan(format!("cgroup `{}` exists", def.name)));
        }
        let has_children = self.all_parents || self.parents.contains(&def.name);
        let procs = self.tree.add(&chain, has_children, def.controllers)?;
        let dir = self.tree.dir(&chain);
        if let Some(spec) = &def.cpuset {
            let cpus = spec.resolve(&self.topology).map_err(AgentError::Plan)?;
            cgroups::set_cpus(&dir, &cpulist::format(&cpus))?;
        }
        self.groups.insert(
            def.name.clone(),
            Group {
                def: def.clone(),
                procs,
                dir,
                workers: Vec::new(),
                spawned: 0,
            },
        );
        self.spawn(&def.name, def.workers)
    }

    /// Spawns `n` more gated workers into cgroup `name`.
    fn spawn(&mut self, name: &str, n: u32) -> Result<()> {
        let topology = self.topology;
        let exe = self.exe.clone();
        let g = self.groups.get_mut(name).ok_or_else(|| no_cgroup(name))?;
        let allowed = match &g.def.cpuset {
            Some(s) => s.resolve(&topology).map_err(AgentError::Plan)?,
            None => (0..topology.cpus()).collect(),
        };
        for _ in 0..n {
            let index = g.spawned;
            g.spawned += 1;
            let spec = WorkerSpec {
                cgroup: name.to_string(),
                index,
                work: g.def.work.clone(),
                nice: g.def.nice,
                policy: g.def.policy,
                cpus: affinity_cpus(&g.def.affinity, &allowed, index, &topology),
                comm: g.def.comm.clone(),
            };
            let w = Worker::spawn(&exe, spec)
                .map_err(|e| AgentError::start(format!("a worker of `{name}`"), e))?;
            cgroups::move_pid(&g.procs, w.pid())?;
            g.workers.push(w);
        }
        Ok(())
    }

    /// Opens every gate that is still closed.
    pub fn start_all(&mut self) -> Result<()> {
        for g in self.groups.values_mut() {
            for w in &mut g.workers {
                w.start()
                    .map_err(|e| AgentError::start(format!("a worker of `{}`", g.def.name), e))?;
            }
        }
        Ok(())
    }

    /// Applies one op of a step; new workers start at once.
    pub fn apply(&mut self, op: &Op) -> Result<()> {
        match op {
            Op::AddCgroup { cgroup } => {
                self.add(cgroup)?;
                return self.start_new(&cgroup.name);
            }
            Op::RemoveCgroup { name } => {
                self.stop(name);
                if let Some(g) = self.groups.remove(name) {
                    let _ = std::fs::remove_dir(&g.procs);
                    let _ = std::fs::remove_dir(&g.dir);
                }
            }
            Op::StopCgroup { name } => self.stop(name),
            Op::SetCpuset { name, cpuset } => {
                let cpus = cpuset.resolve(&self.topology).map_err(AgentError::Plan)?;
                cgroups::set_cpus(&self.group(name)?.dir, &cpulist::format(&cpus))?;
            }
            Op::ClearCpuset { name } => cgroups::set_cpus(&self.group(name)?.dir, "")?,
            Op::SwapCpusets { a, b } => {
                let (da, db) = (self.group(a)?.dir.clone(), self.group(b)?.dir.clone());
                let (ca, cb) = (cgroups::cpus(&da), cgroups::cpus(&db));
                cgroups::set_cpus(&da, &cb)?;
                cgroups::set_cpus(&db, &ca)?;
            }
            Op::Spawn { name, count } => {
                self.spawn(name, *count)?;
                return self.start_new(name);
            }
            Op::MoveTasks { from, to } => {
                let dest = self.group(to)?.procs.clone();
                let moved = std::mem::take(&mut self.group_mut(from)?.workers);
                for w in &moved {
                    cgroups::move_pid(&dest, w.pid())?;
                }
                self.group_mut(to)?.workers.extend(moved);
            }
            Op::SetAffinity { name, affinity } => self.retune(name, |pid, g, topo| {
                let allowed = cpus_of(g, topo);
                let cpus = affinity_cpus(affinity, &allowed, 0, topo).unwrap_or(allowed);
                for_tasks(pid, |tid| sys::set_affinity_of(tid, &cpus))
            })?,
            Op::SetNice { name, nice } => self.retune(name, |pid, _, _| {
                for_tasks(pid, |tid| sys::set_nice_of(tid, *nice))
            })?,
            Op::SetPolicy { name, policy } => self.retune(name, |pid, _, _| {
                let (pol, prio) = sys::policy_numbers(*policy);
                for_tasks(pid, |tid| sys::set_policy_of(tid, pol, prio))
            })?,
        }
        Ok(())
    }

    fn group(&self, name: &str) -> Result<&Group> {
        self.groups.get(name).ok_or_else(|| no_cgroup(name))
    }

    fn group_mut(&mut self, name: &str) -> Result<&mut Group> {
        self.groups.get_mut(name).ok_or_else(|| no_cgroup(name))
    }

    fn start_new(&mut self, name: &str) -> Result<()> {
        let g = self.group_mut(name)?;
        for w in g.workers.iter_mut().filter(|w| !w.started()) {
            w.start()
                .map_err(|e| AgentError::start(format!("a worker of `{name}`"), e))?;
        }
        Ok(())
    }

    fn retune(
        &mut self,
        name: &str,
        f: impl Fn(u32, &Group, &Topology) -> std::io::Result<()>,
    ) -> Result<()> {
        let g = self.group(name)?;
        for w in &g.workers {
            f(w.pid(), g, &self.topology)
                .map_err(|e| AgentError::Plan(format!("cgroup `{name}`: {e}")))?;
        }
        Ok(())
    }

    /// Stops the workers of `name`, keeping their reports.
    fn stop(&mut self, name: &str) {
        if let Some(g) = self.groups.get_mut(name) {
            let workers = std::mem::take(&mut g.workers)
                .into_iter()
                .map(|w| (name.to_string(), w));
            self.reports.extend(stop_workers(workers.collect()));
        }
    }

    /// Every worker's report so far: each running worker is asked at
    /// once and waited on together for up to `wait`; stopped workers as
    /// they ended.
    pub fn reports_so_far(&mut self, wait: Duration) -> Vec<WorkerReport> {
        let mut asked = Vec::new();
        for (name, g) in &mut self.groups {
            for w in &mut g.workers {
                asked.push((name.clone(), w.ask_report()));
            }
        }
        let deadline = std::time::Instant::now() + wait;
        let mut reports = self.reports.clone();
        let running = self.groups.values().flat_map(|g| g.workers.iter());
        for ((name, token), w) in asked.into_iter().zip(running) {
            let report = token.and_then(|t| w.report_so_far(t, deadline));
            let mut r = report.unwrap_or_else(|| WorkerReport {
                cgroup: name.clone(),
                pid: w.pid(),
                error: Some(format!("no report within {wait:?}")),
                ..WorkerReport::default()
            });
            r.cgroup = name;
            reports.push(r);
        }
        reports
    }

    /// Where each cgroup's workers may run and are running now.
    pub fn placement(&self) -> Vec<ktstr_plan::live::Placement> {
        self.groups
            .iter()
            .map(|(name, g)| {
                let mut cpus_now: Vec<u32> =
                    g.workers.iter().flat_map(|w| task_cpus(w.pid())).collect();
                cpus_now.sort_unstable();
                cpus_now.dedup();
                ktstr_plan::live::Placement {
                    cgroup: name.clone(),
                    allowed: std::fs::read_to_string(g.dir.join("cpuset.cpus.effective"))
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                    cpus_now,
                }
            })
            .collect()
    }

    /// Stops every worker, removes the tree, returns every report.
    pub fn finish(mut self) -> Vec<WorkerReport> {
        let all: Vec<(String, Worker)> = self
            .groups
            .iter_mut()
            .flat_map(|(name, g)| {
                std::mem::take(&mut g.workers)
                    .into_iter()
                    .map(move |w| (name.clone(), w))
            })
            .collect();
        let mut reports = std::mem::take(&mut self.reports);
        reports.extend(stop_workers(all));
        self.tree.remove();
        reports
    }
}

/// The CPUs the threads of process `pid` last ran on (`processor`, the
/// 39th field of `/proc/PID/task/TID/stat`).
fn task_cpus(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            let after_comm = &stat[stat.rfind(')')? + 1..];
            after_comm.split_whitespace().nth(36)?.parse().ok()
        })
        .collect()
}

/// The error for an op on a cgroup the plan does not have (now).
fn no_cgroup(name: &str) -> AgentError {
    AgentError::Plan(format!("no cgroup `{name}`"))
}

/// Tells every worker to stop at once, then collects each report under
/// the cgroup the worker is in now (tasks may have been moved).
fn stop_workers(mut workers: Vec<(String, Worker)>) -> Vec<WorkerReport> {
    for (_, w) in &mut workers {
        w.request_stop();
    }
    workers
        .into_iter()
        .map(|(name, w)| {
            let mut r = w.collect(STOP_TIMEOUT);
            r.cgroup = name;
            r
        })
        .collect()
}

fn cpus_of(g: &Group, topo: &Topology) -> Vec<u32> {
    let configured = cgroups::cpus(&g.dir);
    cpulist::parse(&configured)
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| (0..topo.cpus()).collect())
}

/// Applies `f` to every thread of process `pid`.
fn for_tasks(pid: u32, f: impl Fn(u32) -> std::io::Result<()>) -> std::io::Result<()> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))?;
    for t in tasks.flatten() {
        if let Ok(tid) = t.file_name().to_string_lossy().parse() {
            f(tid)?;
        }
    }
    Ok(())
}

/// The CPUs worker `index` pins itself to under `affinity`, within
/// `allowed` (None: no pinning).
pub fn affinity_cpus(a: &Affinity, allowed: &[u32], index: u32, t: &Topology) -> Option<Vec<u32>> {
    let i = index as usize;
    match a {
        Affinity::Inherit => None,
        Affinity::Exact { cpus } => Some(cpus.clone()),
        Affinity::SingleCpu => Some(vec![allowed[i % allowed.len()]]),
        Affinity::RandomSubset { cpus } => {
            let n = (*cpus as usize).min(allowed.len()).max(1);
            // A deterministic shuffle seeded by the worker index.
            let mut pool = allowed.to_vec();
            let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(index);
            for k in (1..pool.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                pool.swap(k, (x % (k as u64 + 1)) as usize);
            }
            pool.truncate(n);
            pool.sort_unstable();
            Some(pool)
        }
        Affinity::LlcAligned => {
            let llcs: Vec<Vec<u32>> = (0..t.llcs())
                .map(|l| CpusetSpec::Llc { index: l }.resolve(t).unwrap_or_default())
                .map(|c| {
                    c.into_iter()
                        .filter(|x| allowed.contains(x))
                        .collect::<Vec<_>>()
                })
                .filter(|c| !c.is_empty())
                .collect();
            llcs.get(i % llcs.len().max(1)).cloned()
        }
    }
}
