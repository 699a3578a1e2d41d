//! Checks on the recorded Plan: names, cpusets against the topology,
//! counts, holds, claims and the scheduler.

use std::collections::{BTreeMap, BTreeSet};

use ktstr_topology::Topology;

use crate::claims::{MetricExpr, Scope};
use crate::diag::Diagnostic;
use crate::plan::{CgroupDef, Hold, Op, Plan, SourcePos, TopologyReq};
use crate::policy::Affinity;

use super::CheckOptions;

/// The most workers one cgroup may have.
pub const MAX_WORKERS: u32 = 4096;

struct V<'a> {
    file: &'a str,
    out: Vec<Diagnostic>,
}

impl V<'_> {
    fn err(&mut self, at: SourcePos, msg: impl Into<String>) {
        self.out
            .push(Diagnostic::new(self.file, at.line, at.col, msg));
    }
}

/// Every problem with `plan` (empty when it is sound).
pub fn validate(plan: &Plan, opts: &CheckOptions, file: &str) -> Vec<Diagnostic> {
    let mut v = V {
        file,
        out: Vec::new(),
    };
    let topology = topology_for(plan, opts, &mut v);
    let mut live: BTreeMap<String, u32> = BTreeMap::new();
    let mut ever: BTreeMap<String, u32> = BTreeMap::new();
    for def in &plan.cgroups {
        define(def, topology.as_ref(), &mut live, &mut v);
    }
    ever.extend(live.clone());
    for step in &plan.steps {
        for op in &step.ops {
            apply_op(op, step.at, topology.as_ref(), &mut live, &mut v);
        }
        ever.extend(live.clone());
    }
    check_holds(plan, &mut v);
    for c in &plan.claims {
        let at = SourcePos {
            line: c.line,
            col: c.col,
        };
        check_claim_expr(&c.expr, at, &ever, &mut v);
    }
    if let (Some(s), Some(exists)) = (&plan.scheduler, &opts.scheduler_exists) {
        if !exists(&s.name) {
            v.err(
                s.at,
                format!(
                    "scheduler `{}` not found (not a sample scheduler of the kernel cache, not on PATH)",
                    s.name
                ),
            );
        }
    }
    v.out
}

fn topology_for(plan: &Plan, opts: &CheckOptions, v: &mut V) -> Option<Topology> {
    if let Some(t) = opts.topology {
        return Some(t);
    }
    match &plan.topology {
        TopologyReq::Fixed { topology } => Some(*topology),
        TopologyReq::Constraints(c) => {
            let t = c.smallest_preset().map(|(_, t)| t);
            if t.is_none() {
                v.err(
                    SourcePos::default(),
                    "no gauntlet topology satisfies the constraints",
                );
            }
            t
        }
    }
}

fn define(def: &CgroupDef, t: Option<&Topology>, live: &mut BTreeMap<String, u32>, v: &mut V) {
    if live.contains_key(&def.name) {
        v.err(def.at, format!("duplicate cgroup `{}`", def.name));
    }
    if let Some(p) = &def.parent {
        if !live.contains_key(p) {
            v.err(
                def.at,
                format!("parent cgroup `{p}` of `{}` does not exist", def.name),
            );
        }
    }
    if def.workers < 1 || def.workers > MAX_WORKERS {
        v.err(
            def.at,
            format!(
                "cgroup `{}` has {} workers; it needs 1 to {MAX_WORKERS}",
                def.name, def.workers
            ),
        );
    }
    if let (Some(spec), Some(t)) = (&def.cpuset, t) {
        if let Err(e) = spec.resolve(t) {
            v.err(def.at, format!("cpuset of cgroup `{}`: {e}", def.name));
        }
    }
    if let Some(t) = t {
        check_affinity(&def.affinity, t, def.at, &def.name, v);
    }
    live.insert(def.name.clone(), def.workers);
}

fn check_affinity(a: &Affinity, t: &Topology, at: SourcePos, name: &str, v: &mut V) {
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

fn apply_op(
    op: &Op,
    at: SourcePos,
    t: Option<&Topology>,
    live: &mut BTreeMap<String, u32>,
    v: &mut V,
) {
    let need = |name: &str, v: &mut V| {
        if !live.contains_key(name) {
            v.err(at, format!("no cgroup `{name}` exists at this step"));
        }
    };
    match op {
        Op::AddCgroup { cgroup } => {
            let mut def = cgroup.clone();
            def.at = at;
            define(&def, t, live, v);
        }
        Op::RemoveCgroup { name } => {
            need(name, v);
            live.remove(name);
        }
        Op::SetCpuset { name, cpuset } => {
            need(name, v);
            if let Some(t) = t {
                if let Err(e) = cpuset.resolve(t) {
                    v.err(at, format!("cpuset for `{name}`: {e}"));
                }
            }
        }
        Op::ClearCpuset { name }
        | Op::StopCgroup { name }
        | Op::SetNice { name, .. }
        | Op::SetPolicy { name, .. } => need(name, v),
        Op::SwapCpusets { a, b } | Op::MoveTasks { from: a, to: b } => {
            need(a, v);
            need(b, v);
        }
        Op::Spawn { name, count } => {
            need(name, v);
            if *count == 0 {
                v.err(at, "spawn of 0 workers");
            }
            if let Some(w) = live.get_mut(name) {
                *w += count;
            }
        }
        Op::SetAffinity { name, affinity } => {
            need(name, v);
            if let Some(t) = t {
                check_affinity(affinity, t, at, name, v);
            }
        }
    }
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
            Hold::Looped { .. } => looped = looped.or(Some(s.at)),
        }
        let used = frac * d + fixed;
        if used > d + 1e-9 {
            v.err(
                s.at,
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

fn check_claim_expr(e: &MetricExpr, at: SourcePos, ever: &BTreeMap<String, u32>, v: &mut V) {
    match e {
        MetricExpr::Metric { scope, .. } => match scope {
            Scope::All => {}
            Scope::Cgroup { name } => {
                if !ever.contains_key(name) {
                    missing(name, at, ever, v);
                }
            }
            Scope::Worker { cgroup, index } => match ever.get(cgroup) {
                None => missing(cgroup, at, ever, v),
                Some(&n) if *index >= n => v.err(
                    at,
                    format!("claim on worker {index} of `{cgroup}`, which has {n} worker(s)"),
                ),
                Some(_) => {}
            },
        },
        MetricExpr::Const { .. } => {}
        MetricExpr::Binary { lhs, rhs, .. } => {
            check_claim_expr(lhs, at, ever, v);
            check_claim_expr(rhs, at, ever, v);
        }
    }
}

fn missing(name: &str, at: SourcePos, ever: &BTreeMap<String, u32>, v: &mut V) {
    let known: BTreeSet<&str> = ever.keys().map(String::as_str).collect();
    let known: Vec<&str> = known.into_iter().collect();
    v.out.push(
        Diagnostic::new(
            v.file,
            at.line,
            at.col,
            format!("claim on cgroup `{name}`, which never exists"),
        )
        .with_help(format!("the scenario's cgroups: {}", known.join(", "))),
    );
}
