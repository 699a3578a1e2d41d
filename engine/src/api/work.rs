//! Work type constructors.

use rhai::{Array, Engine};

use super::{count, fail, RhaiResult};
use crate::work::{Phase, Work};

/// Work types without parameters: (script name, value).
const PLAIN: [(&str, Work); 12] = [
    ("spin_wait", Work::SpinWait),
    ("yield_heavy", Work::YieldHeavy),
    ("mixed", Work::Mixed),
    ("io_sync", Work::IoSync),
    ("pipe_io", Work::PipeIo),
    ("futex_ping_pong", Work::FutexPingPong),
    ("fork_exit", Work::ForkExit),
    ("nice_sweep", Work::NiceSweep),
    ("affinity_churn", Work::AffinityChurn),
    ("policy_churn", Work::PolicyChurn),
    ("preempt_storm", Work::PreemptStorm),
    ("rt_starvation", Work::RtStarvation),
];

/// Work types with one count parameter: (script name, parameter, make).
/// Makes a work type from its count parameter.
type MakeWork = fn(u32) -> Work;

const ONE_COUNT: [(&str, &str, MakeWork); 9] = [
    ("futex_fan_out", "fanout", |n| Work::FutexFanOut {
        fanout: n,
    }),
    ("cache_pressure", "size_kb", |n| Work::CachePressure {
        size_kb: n,
    }),
    ("cache_yield", "size_kb", |n| Work::CacheYield {
        size_kb: n,
    }),
    ("cache_pipe", "size_kb", |n| Work::CachePipe { size_kb: n }),
    ("fan_out_compute", "fanout", |n| Work::FanOutCompute {
        fanout: n,
    }),
    ("page_fault_churn", "pages", |n| Work::PageFaultChurn {
        pages: n,
    }),
    ("mutex_contention", "threads", |n| Work::MutexContention {
        threads: n,
    }),
    ("wake_chain", "depth", |n| Work::WakeChain { depth: n }),
    ("thundering_herd", "waiters", |n| Work::ThunderingHerd {
        waiters: n,
    }),
];

pub(super) fn register(engine: &mut Engine) {
    for (name, work) in PLAIN {
        engine.register_fn(name, move || work.clone());
    }
    for (name, what, make) in ONE_COUNT {
        engine.register_fn(name, move |n: i64| -> RhaiResult<Work> {
            let n = count(what, n)?;
            if n == 0 {
                return fail(format!("{name}: {what} must be at least 1"));
            }
            Ok(make(n))
        });
    }
    engine.register_fn(
        "bursty",
        |burst_ms: i64, sleep_ms: i64| -> RhaiResult<Work> {
            Ok(Work::Bursty {
                burst_ms: count("burst_ms", burst_ms)?,
                sleep_ms: count("sleep_ms", sleep_ms)?,
            })
        },
    );
    engine.register_fn("phase", |work: Work, secs: i64| phase(work, secs as f64));
    engine.register_fn("phase", phase);
    engine.register_fn("sequence", |phases: Array| -> RhaiResult<Work> {
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
    });
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
