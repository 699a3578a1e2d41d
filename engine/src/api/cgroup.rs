//! cgroup definitions, cpusets, policies and affinities.

use rhai::{Engine, NativeCallContext};

use super::def::def;
use super::{count, fail, Ctx, RhaiResult};
use crate::backend::Action;
use ktstr_plan::cpuset::CpusetSpec;
use ktstr_plan::policy::{Affinity, Policy};
use ktstr_plan::work::Work;
use ktstr_plan::CgroupDef;

/// A cgroup in a script. Handles of cgroups that exist from the start send
/// every change to the backend; those made with `cgroup_def` are plain
/// values until an `add_cgroup` op adds them.
#[derive(Debug, Clone)]
pub struct CgroupHandle {
    /// The definition so far.
    pub def: CgroupDef,
    registered: bool,
}

fn new_def(
    c: &Ctx,
    call: &NativeCallContext,
    name: &str,
    workers: i64,
    work: Work,
) -> RhaiResult<CgroupDef> {
    Ok(CgroupDef {
        name: name.to_string(),
        parent: None,
        workers: count("workers", workers)?,
        work,
        cpuset: None,
        nice: 0,
        policy: Policy::Normal,
        affinity: Affinity::Inherit,
        comm: None,
        controllers: true,
        at: c.here(call),
    })
}

/// Applies `change` to the handle and, if it is registered, to the backend.
fn update(
    c: &Ctx,
    h: &mut CgroupHandle,
    change: impl FnOnce(&mut CgroupDef) -> RhaiResult<()>,
) -> RhaiResult<CgroupHandle> {
    change(&mut h.def)?;
    if h.registered {
        c.apply(Action::UpdateCgroup(h.def.clone()))?;
    }
    Ok(h.clone())
}

pub(super) fn register(engine: &mut Engine, ctx: &Ctx) {
    let c = ctx.clone();
    def(
        engine,
        "cgroup(name: string, workers: int, work: Work) -> Cgroup",
        "A cgroup of `workers` worker processes doing `work`, there from the\nstart of the run. Its name is its identity: a second cgroup of the same\nname is an error. The handle's setters (`.cpuset(..)`, `.nice(..)`,\n...) change it.",
        move |call: NativeCallContext, name: &str, workers: i64, work: Work| {
            let def = new_def(&c, &call, name, workers, work)?;
            c.apply(Action::Cgroup(def.clone()))?;
            Ok::<_, Box<rhai::EvalAltResult>>(CgroupHandle {
                def,
                registered: true,
            })
        },
    );
    let c = ctx.clone();
    def(
        engine,
        "cgroup_def(name: string, workers: int, work: Work) -> Cgroup",
        "A cgroup that does not exist yet: a step's `add_cgroup(..)` creates\nit.",
        move |call: NativeCallContext, name: &str, workers: i64, work: Work| {
            Ok::<_, Box<rhai::EvalAltResult>>(CgroupHandle {
                def: new_def(&c, &call, name, workers, work)?,
                registered: false,
            })
        },
    );
    let c = ctx.clone();
    def(
        engine,
        "child(parent: &mut Cgroup, name: string, workers: int, work: Work) -> Cgroup",
        "A cgroup nested in this one (the parent's workers move to a leaf of\ntheir own).",
        move |call: NativeCallContext,
              h: &mut CgroupHandle,
              name: &str,
              workers: i64,
              work: Work| {
            let mut def = new_def(&c, &call, name, workers, work)?;
            def.parent = Some(h.def.name.clone());
            if h.registered {
                c.apply(Action::Cgroup(def.clone()))?;
            }
            Ok::<_, Box<rhai::EvalAltResult>>(CgroupHandle {
                def,
                registered: h.registered,
            })
        },
    );
    def(
        engine,
        "get$name(cgroup: &mut Cgroup) -> string",
        "The cgroup's name.",
        |h: &mut CgroupHandle| h.def.name.clone(),
    );
    register_setters(engine, ctx);
    super::values::register(engine);
}

fn register_setters(engine: &mut Engine, ctx: &Ctx) {
    let c = ctx.clone();
    def(
        engine,
        "no_controllers(cgroup: &mut Cgroup) -> Cgroup",
        "Leaves the cgroup's `cgroup.subtree_control` empty: its children only group\ntasks, with neither cpu weights nor cpusets of their own (they are\nscheduled as part of this cgroup).",
        move |h: &mut CgroupHandle| {
            update(&c, h, |d| {
                d.controllers = false;
                Ok(())
            })
        },
    );
    let c = ctx.clone();
    def(
        engine,
        "cpuset(cgroup: &mut Cgroup, cpus: Cpuset) -> Cgroup",
        "Confines the cgroup to `cpus` (`llc(0)`, `numa(1)`, `range(0, 3)`,\n`disjoint(i, n)`, `overlap(i, n, f)`, `exact([..])`).",
        move |h: &mut CgroupHandle, s: CpusetSpec| {
            update(&c, h, |d| {
                d.cpuset = Some(s);
                Ok(())
            })
        },
    );
    let c = ctx.clone();
    def(
        engine,
        "nice(cgroup: &mut Cgroup, nice: int) -> Cgroup",
        "The workers' nice value, -20 to 19.",
        move |h: &mut CgroupHandle, n: i64| {
            update(&c, h, |d| {
                d.nice = nice_value(n)?;
                Ok(())
            })
        },
    );
    let c = ctx.clone();
    def(
        engine,
        "policy(cgroup: &mut Cgroup, policy: Policy) -> Cgroup",
        "The workers' scheduling policy: `normal()`, `batch()`, `idle()`,\n`fifo(prio)` or `rr(prio)`.",
        move |h: &mut CgroupHandle, p: Policy| {
            update(&c, h, |d| {
                d.policy = p;
                Ok(())
            })
        },
    );
    register_affinity(engine, ctx);
    let c = ctx.clone();
    def(
        engine,
        "comm(cgroup: &mut Cgroup, name: string) -> Cgroup",
        "The workers' process name (1 to 15 bytes), as schedulers see it.",
        move |h: &mut CgroupHandle, name: &str| {
            let name = name.to_string();
            update(&c, h, |d| {
                if name.is_empty() || name.len() > 15 {
                    return fail(format!(
                        "comm `{name}` must be 1 to 15 bytes (TASK_COMM_LEN)"
                    ));
                }
                d.comm = Some(name);
                Ok(())
            })
        },
    );
}

fn register_affinity(engine: &mut Engine, ctx: &Ctx) {
    let doc = "Each worker's CPU affinity within the cgroup: `inherit()`,\n`random_subset(n)`, `llc_aligned()`, `single_cpu()` or `exact([..])`.";
    let c = ctx.clone();
    def(
        engine,
        "affinity(cgroup: &mut Cgroup, affinity: Affinity) -> Cgroup",
        doc,
        move |h: &mut CgroupHandle, a: Affinity| {
            update(&c, h, |d| {
                d.affinity = a;
                Ok(())
            })
        },
    );
    let c = ctx.clone();
    def(
        engine,
        "affinity(cgroup: &mut Cgroup, cpus: Cpuset) -> Cgroup",
        doc,
        move |h: &mut CgroupHandle, s: CpusetSpec| {
            let a = exact_affinity(s)?;
            update(&c, h, |d| {
                d.affinity = a;
                Ok(())
            })
        },
    );
}

/// Validates a nice value.
pub(super) fn nice_value(n: i64) -> RhaiResult<i32> {
    if !(-20..=19).contains(&n) {
        return fail(format!("nice must be between -20 and 19, not {n}"));
    }
    Ok(n as i32)
}

/// `exact([..])` used as an affinity.
pub(super) fn exact_affinity(s: CpusetSpec) -> RhaiResult<Affinity> {
    match s {
        CpusetSpec::Exact { cpus } => Ok(Affinity::Exact { cpus }),
        other => fail(format!(
            "an affinity takes exact([..]) or inherit(), random_subset(n), llc_aligned(), single_cpu(); not {other:?}"
        )),
    }
}
