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
    /// Switches its own scheduling policy in a loop.
    PolicyChurn,
    /// Fans work out to `fanout` threads and joins them.
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
    /// A chain of `depth` workers each waking the next.
    WakeChain {
        /// Chain length.
        depth: u32,
    },
    /// `waiters` sleepers woken all at once, repeatedly.
    ThunderingHerd {
        /// Sleepers per wake-up.
        waiters: u32,
    },
    /// Short sleeps that make the worker preempt others on wake-up.
    PreemptStorm,
    /// A SCHED_FIFO hog beside normal tasks (checks RT throttling).
    RtStarvation,
    /// Phases of other work, each for a number of seconds, in order.
    Sequence {
        /// The phases.
        phases: Vec<Phase>,
    },
}

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
    /// The snake_case name scripts and results use.
    pub fn name(&self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string))
            .unwrap_or_default()
    }
}
