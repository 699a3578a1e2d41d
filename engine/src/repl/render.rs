//! Plan values written back as the Rhai that makes them: how `save()`
//! turns what a live session did into a scenario file. Each function is
//! the inverse of a registered constructor (`llc(0)`, `fifo(10)`,
//! `set_cpuset("a", llc(1))`, ...), so the saved file checks and runs.

use ktstr_plan::claims::{Claim, MetricExpr, Predicate, Scope};
use ktstr_plan::cpuset::CpusetSpec;
use ktstr_plan::policy::{Affinity, Policy};
use ktstr_plan::work::Work;
use ktstr_plan::{CgroupDef, Op};

/// A string literal.
pub fn string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// A float literal Rhai reads back as the same float (always with a `.`).
pub fn float(v: f64) -> String {
    let s = format!("{v}");
    if s.contains(['.', 'e', 'E']) || !v.is_finite() {
        s
    } else {
        format!("{s}.0")
    }
}

fn ints(v: &[u32]) -> String {
    let items: Vec<String> = v.iter().map(u32::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// A cpuset constructor call.
pub fn cpuset(c: &CpusetSpec) -> String {
    match c {
        CpusetSpec::Llc { index } => format!("llc({index})"),
        CpusetSpec::Numa { index } => format!("numa({index})"),
        CpusetSpec::Range { from, to } => format!("range({from}, {to})"),
        CpusetSpec::Disjoint { index, of } => format!("disjoint({index}, {of})"),
        CpusetSpec::Overlap { index, of, frac } => {
            format!("overlap({index}, {of}, {})", float(*frac))
        }
        CpusetSpec::Exact { cpus } => format!("exact({})", ints(cpus)),
    }
}

/// A policy constructor call.
pub fn policy(p: &Policy) -> String {
    match p {
        Policy::Normal => "normal()".into(),
        Policy::Batch => "batch()".into(),
        Policy::Idle => "idle()".into(),
        Policy::Fifo { prio } => format!("fifo({prio})"),
        Policy::Rr { prio } => format!("rr({prio})"),
    }
}

/// An affinity constructor call.
pub fn affinity(a: &Affinity) -> String {
    match a {
        Affinity::Inherit => "inherit()".into(),
        Affinity::RandomSubset { cpus } => format!("random_subset({cpus})"),
        Affinity::LlcAligned => "llc_aligned()".into(),
        Affinity::SingleCpu => "single_cpu()".into(),
        Affinity::Exact { cpus } => format!("exact({})", ints(cpus)),
    }
}

/// A work constructor call.
pub fn work(w: &Work) -> String {
    let n = w.name();
    match w {
        Work::Bursty { burst_ms, sleep_ms } => format!("bursty({burst_ms}, {sleep_ms})"),
        Work::FutexFanOut { fanout: v }
        | Work::FanOutCompute { fanout: v }
        | Work::CachePressure { size_kb: v }
        | Work::CacheYield { size_kb: v }
        | Work::CachePipe { size_kb: v }
        | Work::PageFaultChurn { pages: v }
        | Work::MutexContention { threads: v }
        | Work::WakeChain {
            depth: v,
            pipe: false,
        }
        | Work::ThunderingHerd { waiters: v }
        | Work::IpcVariance { size_kb: v }
        | Work::IoSyncWrite { block_kb: v }
        | Work::IoRandRead { size_kb: v }
        | Work::IoConvoy { threads: v }
        | Work::IdleChurn { sleep_us: v }
        | Work::AsymmetricWaker { work_us: v }
        | Work::EpollStorm { fds: v }
        | Work::NumaWorkingSetSweep { size_kb: v }
        | Work::PriorityInversion { spinners: v }
        | Work::ProducerConsumerImbalance { consumers: v } => format!("{n}({v})"),
        Work::WakeChain { depth, pipe: true } => format!("wake_chain_pipe({depth})"),
        Work::Payload { run } => {
            let a: Vec<String> = run.args.iter().map(|x| string(x)).collect();
            format!("payload({}, [{}])", string(&run.program), a.join(", "))
        }
        Work::Custom { steps } => {
            let s: Vec<String> = steps.iter().map(custom_step).collect();
            format!("custom([{}])", s.join(", "))
        }
        Work::Sequence { phases } => {
            let ps: Vec<String> = phases
                .iter()
                .map(|p| format!("phase({}, {})", work(&p.work), float(p.secs)))
                .collect();
            format!("sequence([{}])", ps.join(", "))
        }
        _ => format!("{n}()"),
    }
}

/// A custom step constructor call.
fn custom_step(s: &ktstr_plan::work::CustomStep) -> String {
    use ktstr_plan::work::CustomStep;
    match s {
        CustomStep::Spin { us } => format!("spin_for({us})"),
        CustomStep::Sleep { us } => format!("sleep_for({us})"),
        CustomStep::FutexWait { us } => format!("futex_wait_for({us})"),
        CustomStep::Yield => "yield_step()".into(),
        CustomStep::Io { kb } => format!("io_step({kb})"),
    }
}

/// The setters that give a cgroup made by `ctor(name, workers, work)`
/// the rest of `def` (its cpuset, nice, policy, affinity, comm).
fn setters(def: &CgroupDef) -> String {
    let mut s = String::new();
    if let Some(c) = &def.cpuset {
        s += &format!(".cpuset({})", cpuset(c));
    }
    if def.nice != 0 {
        s += &format!(".nice({})", def.nice);
    }
    if def.policy != Policy::Normal {
        s += &format!(".policy({})", policy(&def.policy));
    }
    if def.affinity != Affinity::Inherit {
        s += &format!(".affinity({})", affinity(&def.affinity));
    }
    if let Some(c) = &def.comm {
        s += &format!(".comm({})", string(c));
    }
    if !def.controllers {
        s += ".no_controllers()";
    }
    s
}

/// `cgroup(..)` (or `cgroup_def(..)`, or `parent.child(..)`) with its
/// setters. `parent_var` names the parent's variable for a child.
pub fn cgroup(def: &CgroupDef, ctor: &str, parent_var: Option<&str>) -> String {
    let args = format!(
        "{}, {}, {}",
        string(&def.name),
        def.workers,
        work(&def.work)
    );
    let call = match parent_var {
        Some(p) => format!("{p}.child({args})"),
        None => format!("{ctor}({args})"),
    };
    format!("{call}{}", setters(def))
}

/// An op constructor call (`add_cgroup` makes its cgroup with
/// `cgroup_def`).
pub fn op(o: &Op) -> String {
    let q = |s: &str| string(s);
    match o {
        Op::AddCgroup { cgroup: def } => {
            let mut inner = cgroup(def, "cgroup_def", None);
            if let Some(p) = &def.parent {
                // A child added later names its parent with a handle.
                inner = format!(
                    "cgroup_def({}, 0, spin_wait()).child({}, {}, {}){}",
                    q(p),
                    q(&def.name),
                    def.workers,
                    work(&def.work),
                    setters(def)
                );
            }
            format!("add_cgroup({inner})")
        }
        Op::RemoveCgroup { name } => format!("remove_cgroup({})", q(name)),
        Op::SetCpuset { name, cpuset: c } => format!("set_cpuset({}, {})", q(name), cpuset(c)),
        Op::ClearCpuset { name } => format!("clear_cpuset({})", q(name)),
        Op::SwapCpusets { a, b } => format!("swap_cpusets({}, {})", q(a), q(b)),
        Op::Spawn { name, count } => format!("spawn_workers({}, {count})", q(name)),
        Op::StopCgroup { name } => format!("stop_cgroup({})", q(name)),
        Op::SetAffinity { name, affinity: a } => {
            format!("set_affinity({}, {})", q(name), affinity(a))
        }
        Op::MoveTasks { from, to } => format!("move_tasks({}, {})", q(from), q(to)),
        Op::SetNice { name, nice } => format!("set_nice({}, {nice})", q(name)),
        Op::SetPolicy { name, policy: p } => format!("set_policy({}, {})", q(name), policy(p)),
    }
}

fn scope(s: &Scope) -> String {
    match s {
        Scope::All => "results().all()".into(),
        Scope::Cgroup { name } => format!("results().cgroup({})", string(name)),
        Scope::Worker { cgroup, index } => {
            format!("results().worker({}, {index})", string(cgroup))
        }
    }
}

/// A metric expression.
pub fn metric(e: &MetricExpr) -> String {
    match e {
        MetricExpr::Metric { scope: s, name } => format!("{}.{name}", scope(s)),
        MetricExpr::Const { value } => float(*value),
        MetricExpr::Binary { op, lhs, rhs } => {
            format!("({} {op} {})", metric(lhs), metric(rhs))
        }
    }
}

/// A predicate constructor call.
pub fn predicate(p: &Predicate) -> String {
    match p {
        Predicate::AtMost { limit } => format!("at_most({})", float(*limit)),
        Predicate::AtLeast { limit } => format!("at_least({})", float(*limit)),
        Predicate::Between { lo, hi } => format!("between({}, {})", float(*lo), float(*hi)),
        Predicate::IsFinite => "is_finite()".into(),
        Predicate::Eq { expected } => format!("eq({})", float(*expected)),
    }
}

/// A `claim(..)` statement.
pub fn claim(c: &Claim) -> String {
    format!("claim({}, {});", metric(&c.expr), predicate(&c.predicate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_render_as_their_constructors() {
        assert_eq!(float(2.0), "2.0");
        assert_eq!(float(0.25), "0.25");
        assert_eq!(
            cpuset(&CpusetSpec::Overlap {
                index: 1,
                of: 3,
                frac: 0.5
            }),
            "overlap(1, 3, 0.5)"
        );
        assert_eq!(policy(&Policy::Fifo { prio: 10 }), "fifo(10)");
        assert_eq!(work(&Work::SpinWait), "spin_wait()");
        assert_eq!(
            work(&Work::CachePressure { size_kb: 64 }),
            "cache_pressure(64)"
        );
        assert_eq!(
            op(&Op::SetCpuset {
                name: "a".into(),
                cpuset: CpusetSpec::Llc { index: 1 }
            }),
            "set_cpuset(\"a\", llc(1))"
        );
    }
}
