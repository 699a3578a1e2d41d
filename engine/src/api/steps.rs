//! Steps: ops that change the running scenario, then a hold.

use rhai::{Array, Engine, NativeCallContext};

use super::cgroup::{exact_affinity, nice_value, CgroupHandle};
use super::def::def;
use super::{count, fail, items, Ctx, RhaiResult};
use crate::backend::Action;
use ktstr_plan::cpuset::CpusetSpec;
use ktstr_plan::policy::{Affinity, Policy};
use ktstr_plan::{Hold, Op, Step};

/// Makes an op from a cgroup name.
type NameOp = fn(String) -> Op;

/// Ops that take only a cgroup name: (signature, doc, op).
const NAME_OPS: [(&str, &str, NameOp); 3] = [
    (
        "remove_cgroup(name: string) -> Op",
        "Stops the cgroup's workers (keeping their reports) and removes it.",
        |name| Op::RemoveCgroup { name },
    ),
    (
        "clear_cpuset(name: string) -> Op",
        "Lets the cgroup use every CPU again.",
        |name| Op::ClearCpuset { name },
    ),
    (
        "stop_cgroup(name: string) -> Op",
        "Stops the cgroup's workers; the cgroup stays.",
        |name| Op::StopCgroup { name },
    ),
];

pub(super) fn register(engine: &mut Engine, ctx: &Ctx) {
    def(
        engine,
        "add_cgroup(cgroup: Cgroup) -> Op",
        "Creates a cgroup made with `cgroup_def(..)` and starts its workers.",
        |h: CgroupHandle| Op::AddCgroup { cgroup: h.def },
    );
    for (signature, doc, make) in NAME_OPS {
        def(engine, signature, doc, move |name: &str| {
            make(name.to_string())
        });
    }
    register_changes(engine);
    register_holds(engine);
    let c = ctx.clone();
    def(
        engine,
        "step(ops: array, hold: Hold)",
        "A step of the run: `ops` happen at once, then the run holds for\n`hold` (`frac(f)`, `fixed(secs)` or `looped(n)`). Steps follow each\nother on one clock; what time is left after the last runs unchanged.",
        move |call: NativeCallContext, ops: Array, hold: Hold| -> RhaiResult<()> {
            let ops = items(ops, "step takes ops such as set_cpuset(..)")?;
            c.apply(Action::Step(Step {
                ops,
                hold,
                at: c.here(&call),
            }))
        },
    );
}

fn register_changes(engine: &mut Engine) {
    def(
        engine,
        "set_cpuset(name: string, cpus: Cpuset) -> Op",
        "Confines the cgroup to `cpus` from this step on.",
        |name: &str, cpuset: CpusetSpec| Op::SetCpuset {
            name: name.into(),
            cpuset,
        },
    );
    def(
        engine,
        "swap_cpusets(a: string, b: string) -> Op",
        "Exchanges the two cgroups' cpusets.",
        |a: &str, b: &str| Op::SwapCpusets {
            a: a.into(),
            b: b.into(),
        },
    );
    def(
        engine,
        "spawn_workers(name: string, count: int) -> Op",
        "Starts `count` more workers in the cgroup (at most 4096 in all).",
        |name: &str, n: i64| -> RhaiResult<Op> {
            Ok(Op::Spawn {
                name: name.into(),
                count: count("spawn count", n)?,
            })
        },
    );
    let affinity_doc = "Changes the workers' CPU affinity.";
    def(
        engine,
        "set_affinity(name: string, affinity: Affinity) -> Op",
        affinity_doc,
        |name: &str, affinity: Affinity| Op::SetAffinity {
            name: name.into(),
            affinity,
        },
    );
    def(
        engine,
        "set_affinity(name: string, cpus: Cpuset) -> Op",
        affinity_doc,
        |name: &str, s: CpusetSpec| -> RhaiResult<Op> {
            Ok(Op::SetAffinity {
                name: name.into(),
                affinity: exact_affinity(s)?,
            })
        },
    );
    def(
        engine,
        "move_tasks(from: string, to: string) -> Op",
        "Moves every worker of `from` into `to`.",
        |from: &str, to: &str| Op::MoveTasks {
            from: from.into(),
            to: to.into(),
        },
    );
    def(
        engine,
        "set_nice(name: string, nice: int) -> Op",
        "Changes the workers' nice value (-20 to 19).",
        |name: &str, n: i64| -> RhaiResult<Op> {
            Ok(Op::SetNice {
                name: name.into(),
                nice: nice_value(n)?,
            })
        },
    );
    def(
        engine,
        "set_policy(name: string, policy: Policy) -> Op",
        "Changes the workers' scheduling policy.",
        |name: &str, policy: Policy| Op::SetPolicy {
            name: name.into(),
            policy,
        },
    );
}

fn register_holds(engine: &mut Engine) {
    def(
        engine,
        "frac(f: float) -> Hold",
        "Holds for fraction `f` (more than 0, at most 1) of the duration.",
        |f: f64| -> RhaiResult<Hold> {
            if !(f > 0.0 && f <= 1.0) {
                return fail(format!("frac({f}) must be more than 0 and at most 1"));
            }
            Ok(Hold::Frac { f })
        },
    );
    let fixed_doc = "Holds for `secs` seconds.";
    def(
        engine,
        "fixed(secs: int) -> Hold",
        fixed_doc,
        |secs: i64| fixed(secs as f64),
    );
    def(engine, "fixed(secs: float) -> Hold", fixed_doc, fixed);
    def(
        engine,
        "looped(times: int) -> Hold",
        "Runs the step's ops `times` times, sharing the time the other holds\nleave evenly.",
        |n: i64| -> RhaiResult<Hold> {
            let times = count("looped count", n)?;
            if times == 0 {
                return fail("looped(0) never runs its ops");
            }
            Ok(Hold::Looped { times })
        },
    );
}

fn fixed(secs: f64) -> RhaiResult<Hold> {
    if secs.is_nan() || secs <= 0.0 {
        return fail(format!("fixed({secs}) must be more than 0 s"));
    }
    Ok(Hold::Fixed { secs })
}
