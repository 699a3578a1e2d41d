//! Steps: ops, then a hold.

use rhai::{Array, Engine, NativeCallContext};

use super::cgroup::{exact_affinity, nice_value, CgroupHandle};
use super::{count, fail, Ctx, RhaiResult};
use crate::backend::Action;
use crate::cpuset::CpusetSpec;
use crate::plan::{Hold, Op, Step};
use crate::policy::{Affinity, Policy};

fn name_op(make: fn(String) -> Op) -> impl Fn(&str) -> Op {
    move |name: &str| make(name.to_string())
}

pub(super) fn register(engine: &mut Engine, ctx: &Ctx) {
    engine.register_fn("add_cgroup", |h: CgroupHandle| Op::AddCgroup {
        cgroup: h.def,
    });
    engine.register_fn("remove_cgroup", name_op(|name| Op::RemoveCgroup { name }));
    engine.register_fn("clear_cpuset", name_op(|name| Op::ClearCpuset { name }));
    engine.register_fn("stop_cgroup", name_op(|name| Op::StopCgroup { name }));
    engine.register_fn("set_cpuset", |name: &str, cpuset: CpusetSpec| {
        Op::SetCpuset {
            name: name.into(),
            cpuset,
        }
    });
    engine.register_fn("swap_cpusets", |a: &str, b: &str| Op::SwapCpusets {
        a: a.into(),
        b: b.into(),
    });
    engine.register_fn("spawn_workers", |name: &str, n: i64| -> RhaiResult<Op> {
        Ok(Op::Spawn {
            name: name.into(),
            count: count("spawn count", n)?,
        })
    });
    engine.register_fn("set_affinity", |name: &str, affinity: Affinity| {
        Op::SetAffinity {
            name: name.into(),
            affinity,
        }
    });
    engine.register_fn(
        "set_affinity",
        |name: &str, s: CpusetSpec| -> RhaiResult<Op> {
            Ok(Op::SetAffinity {
                name: name.into(),
                affinity: exact_affinity(s)?,
            })
        },
    );
    engine.register_fn("move_tasks", |from: &str, to: &str| Op::MoveTasks {
        from: from.into(),
        to: to.into(),
    });
    engine.register_fn("set_nice", |name: &str, n: i64| -> RhaiResult<Op> {
        Ok(Op::SetNice {
            name: name.into(),
            nice: nice_value(n)?,
        })
    });
    engine.register_fn("set_policy", |name: &str, policy: Policy| Op::SetPolicy {
        name: name.into(),
        policy,
    });
    register_holds(engine);
    let c = ctx.clone();
    engine.register_fn(
        "step",
        move |call: NativeCallContext, ops: Array, hold: Hold| -> RhaiResult<()> {
            let ops = ops
                .into_iter()
                .map(|o| {
                    let t = o.type_name();
                    o.try_cast::<Op>().map_or_else(
                        || fail(format!("step takes ops such as set_cpuset(..), not {t}")),
                        Ok,
                    )
                })
                .collect::<RhaiResult<Vec<Op>>>()?;
            c.apply(Action::Step(Step {
                ops,
                hold,
                at: c.here(&call),
            }))
        },
    );
}

fn register_holds(engine: &mut Engine) {
    engine.register_fn("frac", |f: f64| -> RhaiResult<Hold> {
        if !(f > 0.0 && f <= 1.0) {
            return fail(format!("frac({f}) must be more than 0 and at most 1"));
        }
        Ok(Hold::Frac { f })
    });
    engine.register_fn("fixed", |secs: i64| fixed(secs as f64));
    engine.register_fn("fixed", fixed);
    engine.register_fn("looped", |n: i64| -> RhaiResult<Hold> {
        let times = count("looped count", n)?;
        if times == 0 {
            return fail("looped(0) never runs its ops");
        }
        Ok(Hold::Looped { times })
    });
}

fn fixed(secs: f64) -> RhaiResult<Hold> {
    if secs.is_nan() || secs <= 0.0 {
        return fail(format!("fixed({secs}) must be more than 0 s"));
    }
    Ok(Hold::Fixed { secs })
}
