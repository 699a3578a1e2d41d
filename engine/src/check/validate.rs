//! Checks on the recorded Plan: names, cpusets against the topology,
//! counts, holds, claims and the scheduler. Every problem is reported
//! (not just the first), at the file and position the script wrote it,
//! in time linear in the Plan's size.

use std::collections::{BTreeMap, BTreeSet};

use ktstr_topology::Topology;

use crate::diag::Diagnostic;
use ktstr_plan::claims::{MetricExpr, Scope, MAX_EXPR_DEPTH};
use ktstr_plan::policy::Affinity;
use ktstr_plan::{check_cgroup_name, CgroupDef, Hold, Op, Plan, SourcePos, TopologyReq};

use super::CheckOptions;

/// The most workers one cgroup may have.
pub const MAX_WORKERS: u32 = 4096;
/// The most workers alive at once in one scenario.
pub const MAX_TOTAL_WORKERS: u64 = 16_384;
/// The most cgroups one scenario may define (from the start and by steps).
pub const MAX_CGROUPS: usize = 1024;
/// The most steps one scenario may have.
pub const MAX_STEPS: usize = 10_000;

/// A live cgroup: its workers and where it was defined.
struct Live {
    workers: u32,
    controllers: bool,
    at: SourcePos,
}

struct V<'a> {
    file: &'a str,
    out: Vec<Diagnostic>,
    /// Cgroups that exist now.
    live: BTreeMap<String, Live>,
    /// Every cgroup that ever existed, with its last worker count.
    ever: BTreeMap<String, u32>,
    /// Workers alive now, over every cgroup.
    total: u64,
}

impl V<'_> {
    fn diag(&self, at: &SourcePos, msg: impl Into<String>) -> Diagnostic {
        let d = Diagnostic::new(at.file_or(self.file), at.line, at.col, msg);
        match &at.via {
            Some(via) => d.with_note(format!("called from {}", self.place(via))),
            None => d,
        }
    }

    fn err(&mut self, at: &SourcePos, msg: impl Into<String>) {
        let d = self.diag(at, msg);
        self.out.push(d);
    }

    fn place(&self, at: &SourcePos) -> String {
        format!("{}:{}:{}", at.file_or(self.file), at.line, at.col)
    }
}

/// Every problem with `plan` (empty when it is sound).
pub fn validate(plan: &Plan, opts: &CheckOptions, file: &str) -> Vec<Diagnostic> {
    let mut v = V {
        file,
        out: Vec::new(),
        live: BTreeMap::new(),
        ever: BTreeMap::new(),
        total: 0,
    };
    let topology = topology_for(plan, opts, &mut v);
    for def in &plan.cgroups {
        define(def, &def.at, topology.as_ref(), &mut v);
    }
    for (i, step) in plan.steps.iter().enumerate() {
        if i == MAX_STEPS {
            v.err(
                &step.at,
                format!(
                    "the scenario has {} steps; at most {MAX_STEPS} are allowed",
                    plan.steps.len()
                ),
            );
            break;
        }
        for op in &step.ops {
            apply_op(op, &step.at, topology.as_ref(), &mut v);
        }
    }
    check_holds(plan, &mut v);
    for c in &plan.claims {
        if c.expr.depth() > MAX_EXPR_DEPTH {
            v.err(
                &c.at,
                format!("the claim's expression nests deeper than {MAX_EXPR_DEPTH} levels"),
            );
            continue;
        }
        if let Some(why) = c.predicate.problem() {
            v.err(&c.at, why);
        }
        check_claim_expr(&c.expr, &c.at, &mut v);
    }
    if let (Some(s), Some(exists)) = (&plan.scheduler, &opts.scheduler_exists) {
        if let Err(why) = exists(&s.name) {
            v.err(&s.at, format!("scheduler `{}` {why}", s.name));
        }
    }
    v.out
}

/// The topology the Plan is validated against: the override (which must
/// satisfy the script's constraints), the fixed one, or the smallest
/// preset within the constraints.
fn topology_for(plan: &Plan, opts: &CheckOptions, v: &mut V) -> Option<Topology> {
    let constraints = match &plan.topology {
        TopologyReq::Fixed { topology } => return Some(opts.topology.unwrap_or(*topology)),
        TopologyReq::Constraints(c) => c,
    };
    let first_bound = constraints
        .at
        .values()
        .min_by_key(|p| (p.file.clone(), p.line, p.col))
        .cloned()
        .unwrap_or_default();
    if let Some(t) = opts.topology {
        for (name, why) in constraints.violations(&t) {
            let at = constraints.position(name).cloned().unwrap_or_default();
            v.err(&at, format!("topology {t} breaks the scenario's {why}"));
        }
        return Some(t);
    }
    let t = constraints.smallest_preset().map(|(_, t)| t);
    if t.is_none() {
        let bounds: Vec<String> = constraints
            .at
            .iter()
            .map(|(name, at)| format!("{name} at {}", v.place(at)))
            .collect();
        let d = v
            .diag(
                &first_bound,
                "no gauntlet topology satisfies the constraints",
            )
            .with_help(format!("the bounds: {}", bounds.join(", ")));
        v.out.push(d);
    }
    t
}

fn define(def: &CgroupDef, at: &SourcePos, t: Option<&Topology>, v: &mut V) {
    if let Err(why) = check_cgroup_name(&def.name) {
        v.err(at, why);
    }
    if let Some(first) = v.live.get(&def.name) {
        let d = v
            .diag(at, format!("duplicate cgroup `{}`", def.name))
            .with_help(format!(
                "`{}` is first defined at {}",
                def.name,
                v.place(&first.at)
            ));
        v.out.push(d);
    }
    if !v.ever.contains_key(&def.name) && v.ever.len() == MAX_CGROUPS {
        v.err(
            at,
            format!(
                "more than {MAX_CGROUPS} cgroups: `{}` is one too many",
                def.name
            ),
        );
    }
    if let Some(p) = &def.parent {
        match v.live.get(p) {
            None => v.err(
                at,
                format!("parent cgroup `{p}` of `{}` does not exist", def.name),
            ),
            Some(parent) if !parent.controllers && def.cpuset.is_some() => v.err(
                at,
                format!(
                    "cgroup `{}` sets a cpuset, but its parent `{p}` gives its children no \
                     controllers (no_controllers())",
                    def.name
                ),
            ),
            Some(_) => {}
        }
    }
    if def.workers < 1 || def.workers > MAX_WORKERS {
        v.err(
            at,
            format!(
                "cgroup `{}` has {} workers; it needs 1 to {MAX_WORKERS}",
                def.name, def.workers
            ),
        );
    }
    if let (Some(spec), Some(t)) = (&def.cpuset, t) {
        if let Err(e) = spec.resolve(t) {
            v.err(at, format!("cpuset of cgroup `{}`: {e}", def.name));
        }
    }
    if let Some(t) = t {
        check_affinity(&def.affinity, t, at, &def.name, v);
    }
    let previous = v.live.insert(
        def.name.clone(),
        Live {
            workers: def.workers,
            controllers: def.controllers,
            at: at.clone(),
        },
    );
    let replaced = previous.map_or(0, |p| u64::from(p.workers));
    add_workers(u64::from(def.workers), replaced, at, v);
    v.ever.insert(def.name.clone(), def.workers);
}

/// Counts `added` workers in (and `removed` out), failing once the
/// scenario would have too many alive.
fn add_workers(added: u64, removed: u64, at: &SourcePos, v: &mut V) {
    let before = v.total;
    v.total = (v.total + added).saturating_sub(removed);
    if before <= MAX_TOTAL_WORKERS && v.total > MAX_TOTAL_WORKERS {
        v.err(
            at,
            format!(
                "{} workers would be alive at once; at most {MAX_TOTAL_WORKERS} are allowed",
                v.total
            ),
        );
    }
}

fn check_affinity(a: &Affinity, t: &Topology, at: &SourcePos, name: &str, v: &mut V) {
    match a {
        Affinity::RandomSubset { cpus } if *cpus > t.cpus() => v.err(
            at,
            format!(
                "random_subset({cpus}) for `{name}`: topology {t} has {} CPUs",
                t.cpus()
            ),
        ),
        Affinity::Exact { cpus } => {
            if let Some(bad) = cpus.iter().find(|&&c| c >= t.cpus()) {
                v.err(
                    at,
                    format!(
                        "affinity of `{name}` names CPU {bad}, but topology {t} has {}",
                        t.cpus()
                    ),
                );
            }
        }
        _ => {}
    }
}

fn need(name: &str, at: &SourcePos, v: &mut V) -> bool {
    if v.live.contains_key(name) {
        return true;
    }
    v.err(at, format!("no cgroup `{name}` exists at this step"));
    false
}

fn apply_op(op: &Op, at: &SourcePos, t: Option<&Topology>, v: &mut V) {
    match op {
        Op::AddCgroup { cgroup } => define(cgroup, at, t, v),
        Op::RemoveCgroup { name } => {
            if need(name, at, v) {
                let gone = v.live.remove(name).map_or(0, |l| u64::from(l.workers));
                v.total = v.total.saturating_sub(gone);
            }
        }
        Op::SetCpuset { name, cpuset } => {
            need(name, at, v);
            if let Some(t) = t {
                if let Err(e) = cpuset.resolve(t) {
                    v.err(at, format!("cpuset for `{name}`: {e}"));
                }
            }
        }
        Op::ClearCpuset { name }
        | Op::StopCgroup { name }
        | Op::SetNice { name, .. }
        | Op::SetPolicy { name, .. } => {
            need(name, at, v);
        }
        Op::SwapCpusets { a, b } | Op::MoveTasks { from: a, to: b } => {
            need(a, at, v);
            need(b, at, v);
        }
        Op::Spawn { name, count } => spawn(name, *count, at, v),
        Op::SetAffinity { name, affinity } => {
            need(name, at, v);
            if let Some(t) = t {
                check_affinity(affinity, t, at, name, v);
            }
        }
    }
}

/// `spawn_workers(name, count)`: 1 to [`MAX_WORKERS`] more, and the
/// cgroup stays within [`MAX_WORKERS`].
fn spawn(name: &str, count: u32, at: &SourcePos, v: &mut V) {
    if count == 0 {
        v.err(at, "spawn of 0 workers");
        return;
    }
    if !need(name, at, v) {
        return;
    }
    let Some(live) = v.live.get_mut(name) else {
        return;
    };
    let now = u64::from(live.workers) + u64::from(count);
    live.workers = u32::try_from(now).unwrap_or(u32::MAX);
    let workers = live.workers;
    v.ever.insert(name.to_string(), workers);
    if now > u64::from(MAX_WORKERS) {
        v.err(
            at,
            format!("spawning {count} takes cgroup `{name}` to {now} workers; at most {MAX_WORKERS} are allowed"),
        );
    }
    add_workers(u64::from(count), 0, at, v);
}

fn check_holds(plan: &Plan, v: &mut V) {
    let d = plan.duration_s;
    let mut frac = 0.0;
    let mut fixed = 0.0;
    let mut looped = None;
    for s in &plan.steps {
        match s.hold {
            Hold::Frac { f } => frac += f,
            Hold::Fixed { secs } => fixed += secs,
            Hold::Looped { .. } => looped = looped.or(Some(&s.at)),
        }
        let used = frac * d + fixed;
        if used > d + 1e-9 {
            v.err(
                &s.at,
                format!("the holds so far add up to {used:.2} s, more than the duration of {d} s"),
            );
            return;
        }
    }
    if let Some(at) = looped {
        if frac * d + fixed >= d - 1e-9 {
            v.err(
                at,
                "looped(...) gets no time: the other holds use the whole duration",
            );
        }
    }
}

fn check_claim_expr(e: &MetricExpr, at: &SourcePos, v: &mut V) {
    match e {
        MetricExpr::Metric { scope, .. } => match scope {
            Scope::All => {}
            Scope::Cgroup { name } => {
                if !v.ever.contains_key(name) {
                    missing(name, at, v);
                }
            }
            Scope::Worker { cgroup, index } => match v.ever.get(cgroup) {
                None => missing(cgroup, at, v),
                Some(&n) if *index >= n => v.err(
                    at,
                    format!("claim on worker {index} of `{cgroup}`, which has {n} worker(s)"),
                ),
                Some(_) => {}
            },
        },
        MetricExpr::Const { .. } => {}
        MetricExpr::Binary { lhs, rhs, .. } => {
            check_claim_expr(lhs, at, v);
            check_claim_expr(rhs, at, v);
        }
    }
}

fn missing(name: &str, at: &SourcePos, v: &mut V) {
    let known: BTreeSet<&str> = v.ever.keys().map(String::as_str).collect();
    let known: Vec<&str> = known.into_iter().take(20).collect();
    let d = v
        .diag(at, format!("claim on cgroup `{name}`, which never exists"))
        .with_help(format!("the scenario's cgroups: {}", known.join(", ")));
    v.out.push(d);
}
