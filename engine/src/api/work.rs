//! Work type constructors: what a cgroup's workers do in their loop.

use rhai::{Array, Engine};

use super::def::def;
use super::{count, fail, items, RhaiResult};
use ktstr_plan::work::{CustomStep, Phase, Work, MAX_CUSTOM_STEPS, MAX_CUSTOM_STEP_US};

/// Work types without parameters: (script name, doc, value).
const PLAIN: [(&str, &str, Work); 17] = [
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
        "Switches its own scheduling policy in a loop: normal, batch, idle, FIFO,\nround-robin.",
        Work::PolicyChurn,
    ),
    (
        "preempt_storm",
        "Short sleeps that make the worker preempt others on wake-up, and a\nSCHED_FIFO thread that wakes every millisecond and preempts it.",
        Work::PreemptStorm,
    ),
    (
        "rt_starvation",
        "A SCHED_FIFO hog thread and the worker's own normal thread pinned to one\nCPU: the worker progresses only through RT throttling.",
        Work::RtStarvation,
    ),
    (
        "alu_hot",
        "Integer multiply-add chains in registers: busy, high IPC, no memory traffic.",
        Work::AluHot,
    ),
    (
        "smt_sibling_spin",
        "Two threads spinning on the two SMT siblings of one core, pinned (use\n`requires_smt()`).",
        Work::SmtSiblingSpin,
    ),
    (
        "numa_migration_churn",
        "Moves itself to a CPU of the next NUMA node every iteration (use\n`min_numa_nodes(2)`).",
        Work::NumaMigrationChurn,
    ),
    (
        "cgroup_churn",
        "Moves itself between two child cgroups of its own cgroup in a loop.",
        Work::CgroupChurn,
    ),
    (
        "signal_storm",
        "A helper thread sends the worker SIGUSR1 as fast as it can; the worker\ncounts each signal it handles while it spins.",
        Work::SignalStorm,
    ),
];

/// Makes a work type from its count parameter.
type MakeWork = fn(u32) -> Work;

/// Work types with one count parameter: (signature, doc, make).
const ONE_COUNT: [(&str, &str, MakeWork); 20] = [
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
        "A messenger wakes `fanout` compute threads through a futex; each multiplies\na 32x32 matrix, and the messenger waits for all of them.",
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
        "A ring of `depth` threads, each waking the next through a futex.",
        |n| Work::WakeChain {
            depth: n,
            pipe: false,
        },
    ),
    (
        "wake_chain_pipe(depth: int) -> Work",
        "A ring of `depth` threads passing a token through pipes: each write wakes\nthe next reader synchronously (WF_SYNC).",
        |n| Work::WakeChain {
            depth: n,
            pipe: true,
        },
    ),
    (
        "ipc_variance(size_kb: int) -> Work",
        "Alternates register arithmetic with dependent loads over a `size_kb` KiB\npointer chain (high, then low IPC), every iteration.",
        |n| Work::IpcVariance { size_kb: n },
    ),
    (
        "io_sync_write(block_kb: int) -> Work",
        "Writes `block_kb` KiB blocks to a file opened O_DSYNC (the guest's RAM-backed\n/tmp: system calls and page cache, no device).",
        |n| Work::IoSyncWrite { block_kb: n },
    ),
    (
        "io_rand_read(size_kb: int) -> Work",
        "Random 4 KiB preads over a `size_kb` KiB file (in the guest's RAM-backed /tmp).",
        |n| Work::IoRandRead { size_kb: n },
    ),
    (
        "io_convoy(threads: int) -> Work",
        "`threads` threads appending to one file, each holding its flock while it\nwrites and fsyncs: a convoy on the lock.",
        |n| Work::IoConvoy { threads: n },
    ),
    (
        "idle_churn(sleep_us: int) -> Work",
        "A ~50 µs burst, then a `sleep_us` µs sleep (long enough for the CPU to go\nidle), in a loop.",
        |n| Work::IdleChurn { sleep_us: n },
    ),
    (
        "asymmetric_waker(work_us: int) -> Work",
        "A waker that spins a little and wakes a wakee that computes `work_us` µs\nper wake-up, without waiting for it.",
        |n| Work::AsymmetricWaker { work_us: n },
    ),
    (
        "epoll_storm(fds: int) -> Work",
        "`fds` eventfds in one epoll set, signalled in bursts by a helper thread;\nthe worker drains every ready one.",
        |n| Work::EpollStorm { fds: n },
    ),
    (
        "numa_working_set_sweep(size_kb: int) -> Work",
        "Sweeps a `size_kb` KiB working set while moving to the next NUMA node\nevery second (its memory stays behind; use `min_numa_nodes(2)`).",
        |n| Work::NumaWorkingSetSweep { size_kb: n },
    ),
    (
        "priority_inversion(spinners: int) -> Work",
        "A nice 19 lock holder, `spinners` nice 0 spinners and the worker itself as\na SCHED_FIFO waiter for the lock, all on one CPU; the waits are wake samples.",
        |n| Work::PriorityInversion { spinners: n },
    ),
    (
        "producer_consumer_imbalance(consumers: int) -> Work",
        "One producer and `consumers` consumers of a bounded queue; each item costs\nits consumer ten times what it cost the producer.",
        |n| Work::ProducerConsumerImbalance { consumers: n },
    ),
    (
        "thundering_herd(waiters: int) -> Work",
        "`waiters` sleepers woken all at once, repeatedly.",
        |n| Work::ThunderingHerd { waiters: n },
    ),
];

/// The largest parameter a work type takes: times a worker cannot notice
/// a stop during stay under 1 s (the agent waits 10 s for a stopping
/// worker); memory and files, which live in the guest's RAM, under
/// 256 MiB.
fn most(name: &str) -> u32 {
    match name {
        "idle_churn" | "asymmetric_waker" => 1_000_000,
        "io_sync_write" | "io_rand_read" | "ipc_variance" | "numa_working_set_sweep" => 262_144,
        _ => u32::MAX,
    }
}

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
            let most = most(name);
            if n > most {
                return fail(format!("{name}: {what} must be at most {most}, not {n}"));
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
    register_custom(engine);
}

/// A custom step's duration in µs: 1 to [`MAX_CUSTOM_STEP_US`].
fn step_us(what: &str, us: i64) -> RhaiResult<u32> {
    match u32::try_from(us) {
        Ok(v) if (1..=MAX_CUSTOM_STEP_US).contains(&v) => Ok(v),
        _ => fail(format!(
            "{what}: {us} µs is not between 1 and {MAX_CUSTOM_STEP_US}"
        )),
    }
}

/// Makes a timed custom step from its µs.
type MakeStep = fn(u32) -> CustomStep;

/// The timed custom steps: (name, doc, make).
const TIMED_STEPS: [(&str, &str, MakeStep); 3] = [
    ("spin_for", "A custom step: busy for `us` µs.", |us| {
        CustomStep::Spin { us }
    }),
    (
        "sleep_for",
        "A custom step: asleep for `us` µs (the overshoot is a wake sample).",
        |us| CustomStep::Sleep { us },
    ),
    (
        "futex_wait_for",
        "A custom step: blocked on a futex no one wakes for `us` µs.",
        |us| CustomStep::FutexWait { us },
    ),
];

fn register_custom(engine: &mut Engine) {
    for (name, doc, make) in TIMED_STEPS {
        def(
            engine,
            &format!("{name}(us: int) -> CustomStep"),
            doc,
            move |us: i64| -> RhaiResult<CustomStep> { Ok(make(step_us(name, us)?)) },
        );
    }
    def(
        engine,
        "yield_step() -> CustomStep",
        "A custom step: one sched_yield.",
        || CustomStep::Yield,
    );
    def(
        engine,
        "io_step(kb: int) -> CustomStep",
        "A custom step: writes and fsyncs `kb` KiB (1 to 1024).",
        |kb: i64| -> RhaiResult<CustomStep> {
            match u32::try_from(kb) {
                Ok(kb) if (1..=1024).contains(&kb) => Ok(CustomStep::Io { kb }),
                _ => fail(format!("io_step: {kb} KiB is not between 1 and 1024")),
            }
        },
    );
    def(
        engine,
        "custom(steps: array) -> Work",
        "Work of the script's own: each iteration runs `steps` in order\n(`spin_for`, `sleep_for`, `futex_wait_for`, `yield_step`, `io_step`).",
        |steps: Array| -> RhaiResult<Work> {
            if steps.is_empty() || steps.len() > MAX_CUSTOM_STEPS {
                return fail(format!(
                    "custom(...) takes 1 to {MAX_CUSTOM_STEPS} steps, not {}",
                    steps.len()
                ));
            }
            let steps = items(steps, "custom takes steps (spin_for(...), ...)")?;
            Ok(Work::Custom { steps })
        },
    );
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
            let phases = items(phases, "sequence takes phase(...) values")?;
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
