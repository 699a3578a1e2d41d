//! scenario, duration, topology and its constraints, scheduler, threshold,
//! kernel requirements.

use rhai::{Array, Engine, NativeCallContext};

use super::{count, fail, Ctx, RhaiResult};
use crate::backend::Action;
use crate::plan::{SchedulerSpec, TopologyConstraints};

/// Constraint setters by script name.
/// Sets one constraint.
type Setter = fn(&mut TopologyConstraints, u32);

const CONSTRAINTS: [(&str, Setter); 6] = [
    ("min_llcs", |c, v| c.min_llcs = Some(v)),
    ("max_llcs", |c, v| c.max_llcs = Some(v)),
    ("min_cpus", |c, v| c.min_cpus = Some(v)),
    ("max_cpus", |c, v| c.max_cpus = Some(v)),
    ("min_numa_nodes", |c, v| c.min_numa_nodes = Some(v)),
    ("max_numa_nodes", |c, v| c.max_numa_nodes = Some(v)),
];

pub(super) fn register(engine: &mut Engine, ctx: &Ctx) {
    let c = ctx.clone();
    engine.register_fn(
        "scenario",
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
    let c = ctx.clone();
    engine.register_fn("duration", move |secs: i64| -> RhaiResult<()> {
        duration(&c, secs as f64)
    });
    let c = ctx.clone();
    engine.register_fn("duration", move |secs: f64| -> RhaiResult<()> {
        duration(&c, secs)
    });
    let c = ctx.clone();
    engine.register_fn(
        "topology",
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
    for (name, set) in CONSTRAINTS {
        let c = ctx.clone();
        engine.register_fn(
            name,
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
    engine.register_fn(
        "requires_smt",
        move |call: NativeCallContext| -> RhaiResult<()> {
            c.apply(Action::Constrain {
                name: "requires_smt",
                set: |c, _| c.requires_smt = true,
                value: 1,
                at: c.here(&call),
            })
        },
    );
    register_scheduler(engine, ctx);
}

fn duration(c: &Ctx, secs: f64) -> RhaiResult<()> {
    crate::plan::check_duration(secs).or_else(fail)?;
    c.apply(Action::Duration(secs))
}

fn register_scheduler(engine: &mut Engine, ctx: &Ctx) {
    let c = ctx.clone();
    engine.register_fn(
        "scheduler",
        move |call: NativeCallContext, name: &str| -> RhaiResult<()> {
            scheduler(&c, &call, name, Array::new())
        },
    );
    let c = ctx.clone();
    engine.register_fn(
        "scheduler",
        move |call: NativeCallContext, name: &str, args: Array| -> RhaiResult<()> {
            scheduler(&c, &call, name, args)
        },
    );
    let c = ctx.clone();
    engine.register_fn("threshold", move |key: &str, v: i64| -> RhaiResult<()> {
        threshold(&c, key, v as f64)
    });
    let c = ctx.clone();
    engine.register_fn("threshold", move |key: &str, v: f64| -> RhaiResult<()> {
        threshold(&c, key, v)
    });
    let c = ctx.clone();
    engine.register_fn("kernel_min", move |version: &str| -> RhaiResult<()> {
        let ok = version.split('.').all(|p| p.parse::<u32>().is_ok());
        if !ok || version.is_empty() {
            return fail(format!("`{version}` is not a kernel version such as 6.12"));
        }
        c.apply(Action::KernelMin(version.to_string()))
    });
    let c = ctx.clone();
    engine.register_fn("kernel_config", move |option: &str| -> RhaiResult<()> {
        if !option.starts_with("CONFIG_") {
            return fail(format!("`{option}` is not a CONFIG_ option"));
        }
        c.apply(Action::KernelConfig(option.to_string()))
    });
}

/// `threshold(key, value)`: a threshold the verdict knows, with a value
/// it can use (the same rules as `--threshold` and schedulers.toml).
fn threshold(c: &Ctx, key: &str, value: f64) -> RhaiResult<()> {
    crate::verdict::check_threshold(key, value).or_else(fail)?;
    c.apply(Action::Threshold(key.to_string(), value))
}

fn scheduler(c: &Ctx, call: &NativeCallContext, name: &str, args: Array) -> RhaiResult<()> {
    if name.trim().is_empty() {
        return fail("the scheduler name is empty");
    }
    let args = args
        .into_iter()
        .map(|a| {
            a.into_immutable_string()
                .map(|s| s.to_string())
                .or_else(|t| fail(format!("scheduler arguments must be strings, not {t}")))
        })
        .collect::<RhaiResult<Vec<String>>>()?;
    c.apply(Action::Scheduler(SchedulerSpec {
        name: name.to_string(),
        args,
        at: c.here(call),
    }))
}
