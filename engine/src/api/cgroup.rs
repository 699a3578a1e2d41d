//! cgroup definitions, cpusets, policies and affinities.

use rhai::{Array, Engine, NativeCallContext};

use super::{count, fail, Ctx, RhaiResult};
use crate::backend::Action;
use crate::cpuset::CpusetSpec;
use crate::plan::CgroupDef;
use crate::policy::{Affinity, Policy};
use crate::work::Work;

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
    engine.register_fn(
        "cgroup",
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
    engine.register_fn(
        "cgroup_def",
        move |call: NativeCallContext, name: &str, workers: i64, work: Work| {
            Ok::<_, Box<rhai::EvalAltResult>>(CgroupHandle {
                def: new_def(&c, &call, name, workers, work)?,
                registered: false,
            })
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "child",
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
    engine.register_get("name", |h: &mut CgroupHandle| h.def.name.clone());
    register_setters(engine, ctx);
    register_values(engine);
}

fn register_setters(engine: &mut Engine, ctx: &Ctx) {
    let c = ctx.clone();
    engine.register_fn("cpuset", move |h: &mut CgroupHandle, s: CpusetSpec| {
        update(&c, h, |d| {
            d.cpuset = Some(s);
            Ok(())
        })
    });
    let c = ctx.clone();
    engine.register_fn("nice", move |h: &mut CgroupHandle, n: i64| {
        update(&c, h, |d| {
            d.nice = nice_value(n)?;
            Ok(())
        })
    });
    let c = ctx.clone();
    engine.register_fn("policy", move |h: &mut CgroupHandle, p: Policy| {
        update(&c, h, |d| {
            d.policy = p;
            Ok(())
        })
    });
    let c = ctx.clone();
    engine.register_fn("affinity", move |h: &mut CgroupHandle, a: Affinity| {
        update(&c, h, |d| {
            d.affinity = a;
            Ok(())
        })
    });
    let c = ctx.clone();
    engine.register_fn("affinity", move |h: &mut CgroupHandle, s: CpusetSpec| {
        let a = exact_affinity(s)?;
        update(&c, h, |d| {
            d.affinity = a;
            Ok(())
        })
    });
    let c = ctx.clone();
    engine.register_fn("comm", move |h: &mut CgroupHandle, name: &str| {
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
    });
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

fn cpus(list: Array) -> RhaiResult<Vec<u32>> {
    list.into_iter()
        .map(|v| match v.as_int() {
            Ok(i) => count("a CPU id", i),
            Err(t) => fail(format!("CPU ids must be integers, not {t}")),
        })
        .collect()
}

fn rt_prio(p: i64) -> RhaiResult<u8> {
    if !(1..=99).contains(&p) {
        return fail(format!("real-time priority must be 1 to 99, not {p}"));
    }
    Ok(p as u8)
}

fn register_values(engine: &mut Engine) {
    engine.register_fn("llc", |i: i64| {
        Ok::<_, Box<rhai::EvalAltResult>>(CpusetSpec::Llc {
            index: count("llc index", i)?,
        })
    });
    engine.register_fn("numa", |i: i64| {
        Ok::<_, Box<rhai::EvalAltResult>>(CpusetSpec::Numa {
            index: count("numa index", i)?,
        })
    });
    engine.register_fn("range", |a: i64, b: i64| {
        Ok::<_, Box<rhai::EvalAltResult>>(CpusetSpec::Range {
            from: count("range start", a)?,
            to: count("range end", b)?,
        })
    });
    engine.register_fn("disjoint", |i: i64, of: i64| {
        Ok::<_, Box<rhai::EvalAltResult>>(CpusetSpec::Disjoint {
            index: count("slice index", i)?,
            of: count("slice count", of)?,
        })
    });
    engine.register_fn("overlap", |i: i64, of: i64, frac: f64| {
        Ok::<_, Box<rhai::EvalAltResult>>(CpusetSpec::Overlap {
            index: count("slice index", i)?,
            of: count("slice count", of)?,
            frac,
        })
    });
    engine.register_fn("exact", |list: Array| {
        Ok::<_, Box<rhai::EvalAltResult>>(CpusetSpec::Exact { cpus: cpus(list)? })
    });
    engine.register_fn("normal", || Policy::Normal);
    engine.register_fn("batch", || Policy::Batch);
    engine.register_fn("idle", || Policy::Idle);
    engine.register_fn("fifo", |p: i64| {
        Ok::<_, Box<rhai::EvalAltResult>>(Policy::Fifo { prio: rt_prio(p)? })
    });
    engine.register_fn("rr", |p: i64| {
        Ok::<_, Box<rhai::EvalAltResult>>(Policy::Rr { prio: rt_prio(p)? })
    });
    engine.register_fn("inherit", || Affinity::Inherit);
    engine.register_fn("random_subset", |n: i64| {
        let cpus = count("CPUs per worker", n)?;
        if cpus == 0 {
            return fail("random_subset(0) leaves a worker no CPU");
        }
        Ok(Affinity::RandomSubset { cpus })
    });
    engine.register_fn("llc_aligned", || Affinity::LlcAligned);
    engine.register_fn("single_cpu", || Affinity::SingleCpu);
}
