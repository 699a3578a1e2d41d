//! What a cgroup's workers do.

use serde::{Deserialize, Serialize};

/// One work type with its parameters. Each names what the worker does in
/// its loop; the guest agent implements them with the real system calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Work {
    /// Busy loop, never blocks.
    SpinWait,
    /// Short spins separated by `sched_yield`.
    YieldHeavy,
    /// Spinning mixed with yields and short sleeps.
    Mixed,
    /// Writes and `fsync`s a small file.
    IoSync,
    /// Runs `burst_ms`, sleeps `sleep_ms`.
    Bursty {
        /// Milliseconds of work per burst.
        burst_ms: u32,
        /// Milliseconds asleep between bursts.
        sleep_ms: u32,
    },
    /// Pairs of workers passing a byte through pipes.
    PipeIo,
    /// Pairs of workers waking each other through a futex.
    FutexPingPong,
    /// One waker, `fanout` waiters on a futex.
    FutexFanOut {
        /// Waiters per waker.
        fanout: u32,
    },
    /// Walks a `size_kb` buffer to evict caches.
    CachePressure {
        /// Buffer size in KiB.
        size_kb: u32,
    },
    /// Cache walk, then yield.
    CacheYield {
        /// Buffer size in KiB.
        size_kb: u32,
    },
    /// Cache walk, then pass a token through a pipe.
    CachePipe {
        /// Buffer size in KiB.
        size_kb: u32,
    },
    /// Forks a child that exits at once, in a loop.
    ForkExit,
    /// Cycles its own nice value through -20..19.
    NiceSweep,
    /// Changes its own CPU affinity in a loop.
    AffinityChurn,
    /// Switches its own scheduling policy in a loop: normal, batch, idle,
    /// FIFO and round-robin.
    PolicyChurn,
    /// A messenger wakes `fanout` compute threads through a futex; each
    /// multiplies a 32x32 matrix, and the messenger waits for all of them.
    FanOutCompute {
        /// Threads per round.
        fanout: u32,
    },
    /// Maps, touches and unmaps `pages` pages in a loop.
    PageFaultChurn {
        /// Pages per round.
        pages: u32,
    },
    /// `threads` threads contending for one mutex.
    MutexContention {
        /// Contending threads.
        threads: u32,
    },
    /// A chain of `depth` threads each waking the next, through a futex
    /// or (with `pipe`) a pipe, whose writes wake the reader synchronously
    /// (`WF_SYNC`).
    WakeChain {
        /// Chain length.
        depth: u32,
        /// Pass the turn through pipes instead of a futex.
        #[serde(default)]
        pipe: bool,
    },
    /// `waiters` sleepers woken all at once, repeatedly.
    ThunderingHerd {
        /// Sleepers per wake-up.
        waiters: u32,
    },
    /// Short sleeps that make the worker preempt others on wake-up, and a
    /// SCHED_FIFO thread that wakes every millisecond and preempts it.
    PreemptStorm,
    /// A SCHED_FIFO hog thread and the worker's own normal thread pinned to
    /// one CPU: the normal thread progresses only through RT throttling.
    RtStarvation,
    /// Integer multiply-add chains in registers: busy, high IPC, no
    /// memory traffic.
    AluHot,
    /// Two threads spinning on the two SMT siblings of one core, pinned.
    SmtSiblingSpin,
    /// Alternates register arithmetic with dependent loads over a
    /// `size_kb` pointer chain (low IPC), every iteration.
    IpcVariance {
        /// The pointer chain's size in KiB.
        size_kb: u32,
    },
    /// Writes `block_kb` blocks to a file opened `O_DSYNC` (each write
    /// waits for its data), cycling through 1 MiB.
    IoSyncWrite {
        /// Block size in KiB.
        block_kb: u32,
    },
    /// Random 4 KiB `pread`s over a `size_kb` file.
    IoRandRead {
        /// File size in KiB.
        size_kb: u32,
    },
    /// `threads` threads appending to one file, each holding its `flock`
    /// while it writes and `fsync`s: a convoy on the lock.
    IoConvoy {
        /// Threads in the convoy.
        threads: u32,
    },
    /// A short burst, then a `sleep_us` sleep (long enough for the CPU to
    /// go idle), in a loop.
    IdleChurn {
        /// The sleep, µs.
        sleep_us: u32,
    },
    /// Moves itself to a CPU of the next NUMA node every iteration.
    NumaMigrationChurn,
    /// Moves itself between two child cgroups of its own cgroup.
    CgroupChurn,
    /// A waker that spins a little and wakes a wakee that computes
    /// `work_us` per wake-up.
    AsymmetricWaker {
        /// The wakee's work per wake-up, µs.
        work_us: u32,
    },
    /// `fds` eventfds in one epoll set, signalled in bursts by a helper
    /// thread; the worker drains every ready one.
    EpollStorm {
        /// Eventfds in the set.
        fds: u32,
    },
    /// Sweeps a `size_kb` working set while moving itself to the next
    /// NUMA node every second (its memory stays behind).
    NumaWorkingSetSweep {
        /// Working set size in KiB.
        size_kb: u32,
    },
    /// A nice 19 thread that holds a lock for 1 ms at a time, a SCHED_FIFO
    /// thread that wants it (the worker's own, measuring its wait), and
    /// `spinners` nice 0 threads between them.
    PriorityInversion {
        /// Medium-priority spinners.
        spinners: u32,
    },
    /// One producer and `consumers` consumers of a bounded queue; each
    /// item costs its consumer ten times what it cost the producer.
    ProducerConsumerImbalance {
        /// Consumer threads.
        consumers: u32,
    },
    /// A helper thread sends the worker `SIGUSR1` as fast as it can; the
    /// worker counts each signal it handles while it spins.
    SignalStorm,
    /// A real program, run once for the run (or until it exits), with
    /// its output captured and its own metrics read from it
    /// ([`crate::payload::metrics`]).
    Payload {
        /// What to run (boxed: cgroup definitions stay small).
        run: Box<crate::payload::PayloadRun>,
    },
    /// The script's own loop of steps (spin, sleep, yield, io, futex wait).
    Custom {
        /// The steps, in order; one iteration runs them all.
        steps: Vec<CustomStep>,
    },
    /// Phases of other work, each for a number of seconds, in order.
    Sequence {
        /// The phases.
        phases: Vec<Phase>,
    },
}

/// One step of a [`Work::Custom`] loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
pub enum CustomStep {
    /// Busy for `us` µs.
    Spin {
        /// µs.
        us: u32,
    },
    /// Asleep for `us` µs.
    Sleep {
        /// µs.
        us: u32,
    },
    /// One `sched_yield`.
    Yield,
    /// Writes and `fsync`s `kb` KiB.
    Io {
        /// KiB.
        kb: u32,
    },
    /// Waits `us` µs on a futex no one wakes (a timed block).
    FutexWait {
        /// µs.
        us: u32,
    },
}

/// The longest one custom step may last, µs (1 s): a worker notices the
/// stop only between steps, and the agent waits 10 s for it.
pub const MAX_CUSTOM_STEP_US: u32 = 1_000_000;

/// The most steps a custom loop may have.
pub const MAX_CUSTOM_STEPS: usize = 64;

/// One phase of a [`Work::Sequence`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// What to do.
    pub work: Work,
    /// For how long, in seconds.
    pub secs: f64,
}

impl Work {
    /// Whether each iteration is a fixed amount of computation on the
    /// worker's own thread (no yields, sleeps, wake-ups or helper
    /// threads): only then is a worker's iteration rate its CPU's work,
    /// and rates comparable across workers.
    pub fn steady_rate(&self) -> bool {
        match self {
            Work::SpinWait
            | Work::AluHot
            | Work::IpcVariance { .. }
            | Work::CachePressure { .. }
            | Work::PageFaultChurn { .. } => true,
            Work::Sequence { phases } => phases.iter().all(|p| p.work.steady_rate()),
            _ => false,
        }
    }

    /// Whether the work's wake-up samples all come from its own timed
    /// sleeps (not from threads handing work to each other, whose
    /// latency depends on where the pair sits): only then are median
    /// wake latencies comparable across workers.
    pub fn wakes_itself(&self) -> bool {
        match self {
            Work::Mixed
            | Work::Bursty { .. }
            | Work::IdleChurn { .. }
            | Work::PreemptStorm
            | Work::Custom { .. } => true,
            Work::Sequence { phases } => phases.iter().all(|p| p.work.wakes_itself()),
            _ => false,
        }
    }

    /// Whether the work changes its own CPU, node or cgroup on purpose
    /// (then how often it migrates says nothing about the scheduler).
    pub fn moves_by_design(&self) -> bool {
        match self {
            Work::AffinityChurn
            | Work::NumaMigrationChurn
            | Work::CgroupChurn
            | Work::NumaWorkingSetSweep { .. } => true,
            Work::Sequence { phases } => phases.iter().any(|p| p.work.moves_by_design()),
            _ => false,
        }
    }

    /// Whether the work pins threads to chosen CPUs itself (then the
    /// run queues it loads are its choice, not the scheduler's).
    pub fn pins_itself(&self) -> bool {
        match self {
            Work::SmtSiblingSpin
            | Work::AffinityChurn
            | Work::NumaMigrationChurn
            | Work::NumaWorkingSetSweep { .. }
            | Work::PreemptStorm
            | Work::RtStarvation
            | Work::PriorityInversion { .. } => true,
            Work::Sequence { phases } => phases.iter().any(|p| p.work.pins_itself()),
            _ => false,
        }
    }

    /// The snake_case name scripts and results use.
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default()
    }
}
