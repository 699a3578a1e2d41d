//! The values cgroups are configured with: cpusets, scheduling policies
//! and worker affinities.

use rhai::{Array, Engine};

use super::def::def;
use super::{count, fail, RhaiResult};
use ktstr_plan::cpuset::CpusetSpec;
use ktstr_plan::policy::{Affinity, Policy};

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

/// Registers the cpuset, policy and affinity constructors.
pub(super) fn register(engine: &mut Engine) {
    register_cpusets(engine);
    register_policies(engine);
    register_affinities(engine);
}

fn register_cpusets(engine: &mut Engine) {
    def(
        engine,
        "llc(index: int) -> Cpuset",
        "The CPUs of LLC `index` of the topology.",
        |i: i64| -> RhaiResult<CpusetSpec> {
            Ok(CpusetSpec::Llc {
                index: count("llc index", i)?,
            })
        },
    );
    def(
        engine,
        "numa(index: int) -> Cpuset",
        "The CPUs of NUMA node `index`.",
        |i: i64| -> RhaiResult<CpusetSpec> {
            Ok(CpusetSpec::Numa {
                index: count("numa index", i)?,
            })
        },
    );
    def(
        engine,
        "range(first: int, last: int) -> Cpuset",
        "CPUs `first` to `last`, both included.",
        |a: i64, b: i64| -> RhaiResult<CpusetSpec> {
            Ok(CpusetSpec::Range {
                from: count("range start", a)?,
                to: count("range end", b)?,
            })
        },
    );
    def(
        engine,
        "disjoint(index: int, of: int) -> Cpuset",
        "Slice `index` of `of` equal, disjoint slices of all CPUs.",
        |i: i64, of: i64| -> RhaiResult<CpusetSpec> {
            Ok(CpusetSpec::Disjoint {
                index: count("slice index", i)?,
                of: count("slice count", of)?,
            })
        },
    );
    def(
        engine,
        "overlap(index: int, of: int, frac: float) -> Cpuset",
        "Slice `index` of `of`, widened so neighbouring slices share `frac`\n(0 to 1) of it.",
        |i: i64, of: i64, frac: f64| -> RhaiResult<CpusetSpec> {
            Ok(CpusetSpec::Overlap {
                index: count("slice index", i)?,
                of: count("slice count", of)?,
                frac,
            })
        },
    );
    def(
        engine,
        "exact(cpus: array) -> Cpuset",
        "Exactly these CPU ids.",
        |list: Array| -> RhaiResult<CpusetSpec> { Ok(CpusetSpec::Exact { cpus: cpus(list)? }) },
    );
}

fn register_policies(engine: &mut Engine) {
    def(
        engine,
        "normal() -> Policy",
        "SCHED_NORMAL (the default).",
        || Policy::Normal,
    );
    def(engine, "batch() -> Policy", "SCHED_BATCH.", || {
        Policy::Batch
    });
    def(engine, "idle() -> Policy", "SCHED_IDLE.", || Policy::Idle);
    def(
        engine,
        "fifo(prio: int) -> Policy",
        "SCHED_FIFO at real-time priority `prio` (1 to 99).",
        |p: i64| -> RhaiResult<Policy> { Ok(Policy::Fifo { prio: rt_prio(p)? }) },
    );
    def(
        engine,
        "rr(prio: int) -> Policy",
        "SCHED_RR at real-time priority `prio` (1 to 99).",
        |p: i64| -> RhaiResult<Policy> { Ok(Policy::Rr { prio: rt_prio(p)? }) },
    );
}

fn register_affinities(engine: &mut Engine) {
    def(
        engine,
        "inherit() -> Affinity",
        "Each worker may run on any CPU the cgroup allows (the default).",
        || Affinity::Inherit,
    );
    def(
        engine,
        "random_subset(cpus: int) -> Affinity",
        "Each worker pinned to its own random `cpus` CPUs of the cgroup's.",
        |n: i64| -> RhaiResult<Affinity> {
            let cpus = count("CPUs per worker", n)?;
            if cpus == 0 {
                return fail("random_subset(0) leaves a worker no CPU");
            }
            Ok(Affinity::RandomSubset { cpus })
        },
    );
    def(
        engine,
        "llc_aligned() -> Affinity",
        "Each worker pinned to the CPUs of one LLC, round robin.",
        || Affinity::LlcAligned,
    );
    def(
        engine,
        "single_cpu() -> Affinity",
        "Each worker pinned to one CPU, round robin.",
        || Affinity::SingleCpu,
    );
}
