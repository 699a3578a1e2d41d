//! Work type constructors: what a cgroup's workers do in their loop.

use rhai::{Array, Engine};

use super::def::def;
use super::{count, fail, RhaiResult};
use ktstr_plan::work::{Phase, Work};

/// Work types without parameters: (script name, doc, value).
const PLAIN: [(&str, &str, Work); 12] = [
    (
        "spin_wait",
        "A busy loop that never blocks.",
        Work::SpinWait,
    ),
    (
        "yield_heavy",
        "Short spins separated by `sched_yield`.",
        Work::YieldHeavy,
    ),
    (
        "mixed",
        "Spinning mixed with yields and short sleeps.",
        Work::Mixed,
    ),
    ("io_sync", "Writes and `fsync`s a small file.", Work::IoSync),
    (
        "pipe_io",
        "Pairs of workers passing a byte through pipes.",
        Work::PipeIo,
    ),
    (
        "futex_ping_pong",
        "Pairs of workers waking each other through a futex.",
        Work::FutexPingPong,
    ),
    (
        "fork_exit",
        "Forks a child that exits at once, in a loop.",
        Work::ForkExit,
    ),
    (
        "nice_sweep",
        "Cycles its own nice value through -20..19.",
        Work::NiceSweep,
    ),
    (
        "affinity_churn",
        "Changes its own CPU affinity in a loop.",
        Work::AffinityChurn,
    ),
    (
        "policy_churn",
        "Switches its own scheduling policy in a loop.",
        Work::PolicyChurn,
    ),
    (
        "preempt_storm",
        "Short sleeps that make the worker preempt others on wake-up.",
        Work::PreemptStorm,
    ),
    (
        "rt_starvation",
        "A SCHED_FIFO hog beside normal tasks (checks RT throttling).",
        Work::RtStarvation,
    ),
];

/// Makes a work type from its count parameter.
type MakeWork = fn(u32) -> Work;

/// Work types with one count parameter: (signature, doc, make).
const ONE_COUNT: [(&str, &str, MakeWork); 9] = [
    (
        "futex_fan_out(fanout: int) -> Work",
        "One waker and `fanout` waiters on a futex.",
        |n| Work::FutexFanOut { fanout: n },
    ),
    (
        "cache_pressure(size_kb: int) -> Work",
        "Walks a `size_kb` KiB buffer to evict caches.",
        |n| Work::CachePressure { size_kb: n },
    ),
    (
        "cache_yield(size_kb: int) -> Work",
        "A cache walk of `size_kb` KiB, then a yield.",
        |n| Work::CacheYield { size_kb: n },
    ),
    (
        "cache_pipe(size_kb: int) -> Work",
        "A cache walk of `size_kb` KiB, then a token passed through a pipe.",
        |n| Work::CachePipe { size_kb: n },
    ),
    (
        "fan_out_compute(fanout: int) -> Work",
        "Fans work out to `fanout` threads and joins them.",
        |n| Work::FanOutCompute { fanout: n },
    ),
    (
        "page_fault_churn(pages: int) -> Work",
        "Maps, touches and unmaps `pages` pages in a loop.",
        |n| Work::PageFaultChurn { pages: n },
    ),
    (
        "mutex_contention(threads: int) -> Work",
        "`threads` threads contending for one mutex.",
        |n| Work::MutexContention { threads: n },
    ),
    (
        "wake_chain(depth: int) -> Work",
        "A chain of `depth` workers, each waking the next.",
        |n| Work::WakeChain { depth: n },
    ),
    (
        "thundering_herd(waiters: int) -> Work",
        "`waiters` sleepers woken all at once, repeatedly.",
        |n| Work::ThunderingHerd { waiters: n },
    ),
];

pub(super) fn register(engine: &mut Engine) {
    for (name, doc, work) in PLAIN {
        def(engine, &format!("{name}() -> Work"), doc, move || {
            work.clone()
        });
    }
    for (signature, doc, make) in ONE_COUNT {
        let name = &signature[..signature.find('(').expect("a signature")];
        let what = signature[name.len() + 1..]
            .split(':')
            .next()
            .expect("a parameter");
        def(engine, signature, doc, move |n: i64| -> RhaiResult<Work> {
            let n = count(what, n)?;
            if n == 0 {
                return fail(format!("{name}: {what} must be at least 1"));
            }
            Ok(make(n))
        });
    }
    def(
        engine,
        "bursty(burst_ms: int, sleep_ms: int) -> Work",
        "Runs `burst_ms` ms, then sleeps `sleep_ms` ms, in a loop.",
        |burst_ms: i64, sleep_ms: i64| -> RhaiResult<Work> {
            Ok(Work::Bursty {
                burst_ms: count("burst_ms", burst_ms)?,
                sleep_ms: count("sleep_ms", sleep_ms)?,
            })
        },
    );
    register_phases(engine);
}

fn register_phases(engine: &mut Engine) {
    let doc = "`work` for `secs` seconds, one phase of a `sequence([..])`.";
    def(
        engine,
        "phase(work: Work, secs: int) -> Phase",
        doc,
        |work: Work, secs: i64| phase(work, secs as f64),
    );
    def(
        engine,
        "phase(work: Work, secs: float) -> Phase",
        doc,
        phase,
    );
    def(
        engine,
        "sequence(phases: array) -> Work",
        "Phases of other work, each for its seconds, in order.",
        |phases: Array| -> RhaiResult<Work> {
            if phases.is_empty() {
                return fail("sequence([]) has no phases");
            }
            let phases = phases
                .into_iter()
                .map(|p| {
                    let t = p.type_name();
                    p.try_cast::<Phase>().map_or_else(
                        || fail(format!("sequence takes phase(...) values, not {t}")),
                        Ok,
                    )
                })
                .collect::<RhaiResult<Vec<Phase>>>()?;
            Ok(Work::Sequence { phases })
        },
    );
}

fn phase(work: Work, secs: f64) -> RhaiResult<Phase> {
    if secs.is_nan() || secs <= 0.0 {
        return fail(format!("a phase lasts more than 0 s, not {secs}"));
    }
    if matches!(work, Work::Sequence { .. }) {
        return fail("a phase cannot be a sequence");
    }
    Ok(Phase { work, secs })
}
