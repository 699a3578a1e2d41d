//! scenario, duration, topology and its constraints, scheduler, threshold,
//! kernel requirements.

use rhai::{Array, Engine, NativeCallContext};

use super::def::def;
use super::{count, fail, strings, Ctx, RhaiResult};
use crate::backend::Action;
use ktstr_plan::{SchedulerSpec, TopologyConstraints};

/// Sets one constraint.
type Setter = fn(&mut TopologyConstraints, u32);

/// Constraint setters: (signature, doc, setter).
const CONSTRAINTS: [(&str, &str, Setter); 6] = [
    (
        "min_llcs(n: int)",
        "Runs only on topologies with at least `n` LLCs.",
        |c, v| c.min_llcs = Some(v),
    ),
    (
        "max_llcs(n: int)",
        "Runs only on topologies with at most `n` LLCs.",
        |c, v| c.max_llcs = Some(v),
    ),
    (
        "min_cpus(n: int)",
        "Runs only on topologies with at least `n` CPUs.",
        |c, v| c.min_cpus = Some(v),
    ),
    (
        "max_cpus(n: int)",
        "Runs only on topologies with at most `n` CPUs.",
        |c, v| c.max_cpus = Some(v),
    ),
    (
        "min_numa_nodes(n: int)",
        "Runs only on topologies with at least `n` NUMA nodes.",
        |c, v| c.min_numa_nodes = Some(v),
    ),
    (
        "max_numa_nodes(n: int)",
        "Runs only on topologies with at most `n` NUMA nodes.",
        |c, v| c.max_numa_nodes = Some(v),
    ),
];

pub(super) fn register(engine: &mut Engine, ctx: &Ctx) {
    let c = ctx.clone();
    def(
        engine,
        "scenario(name: string, description: string)",
        "Names the scenario and says in one line what it checks; every script\ncalls it once.",
        move |call: NativeCallContext, name: &str, description: &str| -> RhaiResult<()> {
            if name.trim().is_empty() {
                return fail("the scenario name is empty");
            }
            c.apply(Action::Scenario {
                name: name.to_string(),
                description: description.to_string(),
                at: c.here(&call),
            })
        },
    );
    let duration_doc =
        "How long the scenario runs, in seconds (more than 0, at most 3600;\ndefault 10).";
    let c = ctx.clone();
    def(
        engine,
        "duration(secs: int)",
        duration_doc,
        move |secs: i64| -> RhaiResult<()> { duration(&c, secs as f64) },
    );
    let c = ctx.clone();
    def(
        engine,
        "duration(secs: float)",
        duration_doc,
        move |secs: f64| -> RhaiResult<()> { duration(&c, secs) },
    );
    let c = ctx.clone();
    def(
        engine,
        "topology(numa_nodes: int, llcs: int, cores_per_llc: int, threads_per_core: int)",
        "Runs on exactly this topology (`topology(1, 2, 4, 2)` is 1n2l4c2t).\nUse either this or the constraints (`min_llcs`, ...), not both.",
        move |numa: i64, llcs: i64, cores: i64, threads: i64| -> RhaiResult<()> {
            let t = ktstr_topology::Topology::new(
                count("numa nodes", numa)?,
                count("LLCs", llcs)?,
                count("cores per LLC", cores)?,
                count("threads per core", threads)?,
            )
            .map_err(|e| e.to_string())?;
            c.apply(Action::Topology(t))
        },
    );
    register_constraints(engine, ctx);
    register_scheduler(engine, ctx);
    register_requirements(engine, ctx);
    super::files::register(engine, ctx);
}

fn register_constraints(engine: &mut Engine, ctx: &Ctx) {
    for (signature, doc, set) in CONSTRAINTS {
        let name = &signature[..signature.find('(').expect("a signature")];
        let name: &'static str = name;
        let c = ctx.clone();
        def(
            engine,
            signature,
            doc,
            move |call: NativeCallContext, v: i64| -> RhaiResult<()> {
                c.apply(Action::Constrain {
                    name,
                    set,
                    value: count(name, v)?,
                    at: c.here(&call),
                })
            },
        );
    }
    let c = ctx.clone();
    def(
        engine,
        "requires_smt()",
        "Runs only on topologies with two or more threads per core.",
        move |call: NativeCallContext| -> RhaiResult<()> {
            c.apply(Action::Constrain {
                name: "requires_smt",
                set: |c, _| c.requires_smt = true,
                value: 1,
                at: c.here(&call),
            })
        },
    );
}

fn duration(c: &Ctx, secs: f64) -> RhaiResult<()> {
    ktstr_plan::check_duration(secs).or_else(fail)?;
    c.apply(Action::Duration(secs))
}

fn register_scheduler(engine: &mut Engine, ctx: &Ctx) {
    let doc = "The sched_ext scheduler to run under: a sample scheduler of the\nkernel (`scx_simple`), one installed with `ktstr sched install`, a\nprogram on PATH or a path. Without it the kernel's own (EEVDF) runs.";
    let c = ctx.clone();
    def(
        engine,
        "scheduler(name: string)",
        doc,
        move |call: NativeCallContext, name: &str| -> RhaiResult<()> {
            scheduler(&c, &call, name, Array::new())
        },
    );
    let c = ctx.clone();
    def(
        engine,
        "scheduler(name: string, args: array)",
        &format!("{doc}\n`args` are its command-line arguments (strings)."),
        move |call: NativeCallContext, name: &str, args: Array| -> RhaiResult<()> {
            scheduler(&c, &call, name, args)
        },
    );
    let doc = "Overrides a threshold of the default checks for this scenario\n(`max_gap_ms`, `max_spread_pct`, ...; `ktstr thresholds` lists them all):\nover ktstr's and the scheduler's, under `--threshold`.";
    let c = ctx.clone();
    def(
        engine,
        "threshold(name: string, value: int)",
        doc,
        move |key: &str, v: i64| -> RhaiResult<()> { threshold(&c, key, v as f64) },
    );
    let c = ctx.clone();
    def(
        engine,
        "threshold(name: string, value: float)",
        doc,
        move |key: &str, v: f64| -> RhaiResult<()> { threshold(&c, key, v) },
    );
}

fn register_requirements(engine: &mut Engine, ctx: &Ctx) {
    let c = ctx.clone();
    def(
        engine,
        "expect_fail(reason: string)",
        "Makes the scenario a negative test: it passes only when the run\nfails (a fault injected on purpose), and the report says so.",
        move |call: NativeCallContext, reason: &str| -> RhaiResult<()> {
            if reason.trim().is_empty() {
                return fail("expect_fail needs a reason: what the failure shows");
            }
            c.apply(Action::ExpectFail(ktstr_plan::ExpectFail {
                reason: reason.to_string(),
                at: c.here(&call),
            }))
        },
    );
    let c = ctx.clone();
    def(
        engine,
        "kernel_min(version: string)",
        "The oldest kernel the scenario runs on (`\"6.12\"`).",
        move |version: &str| -> RhaiResult<()> {
            let ok = version.split('.').all(|p| p.parse::<u32>().is_ok());
            if !ok || version.is_empty() {
                return fail(format!("`{version}` is not a kernel version such as 6.12"));
            }
            c.apply(Action::KernelMin(version.to_string()))
        },
    );
    let c = ctx.clone();
    def(
        engine,
        "kernel_config(option: string)",
        "A kernel option the scenario needs set (`\"CONFIG_SCHED_CLASS_EXT\"`).",
        move |option: &str| -> RhaiResult<()> {
            if !option.starts_with("CONFIG_") {
                return fail(format!("`{option}` is not a CONFIG_ option"));
            }
            c.apply(Action::KernelConfig(option.to_string()))
        },
    );
}

/// `threshold(key, value)`: a threshold the verdict knows, with a value
/// it can use (the same rules as `--threshold` and schedulers.toml).
fn threshold(c: &Ctx, key: &str, value: f64) -> RhaiResult<()> {
    ktstr_plan::thresholds::check_threshold(key, value).or_else(fail)?;
    c.apply(Action::Threshold(key.to_string(), value))
}

fn scheduler(c: &Ctx, call: &NativeCallContext, name: &str, args: Array) -> RhaiResult<()> {
    if name.trim().is_empty() {
        return fail("the scheduler name is empty");
    }
    let args = strings("scheduler arguments", args)?;
    c.apply(Action::Scheduler(SchedulerSpec {
        name: name.to_string(),
        args,
        at: c.here(call),
    }))
}
