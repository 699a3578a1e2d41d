//! What the workers measured: one [`WorkerReport`] per worker, the type
//! the worker process writes, the guest agent sends and the host judges
//! (no copy field by field anywhere), and [`RunResults`], the same reports
//! grouped by cgroup for claims and checks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One worker's telemetry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerReport {
    /// Its cgroup.
    pub cgroup: String,
    /// Its index in the cgroup (spawn order).
    pub index: u32,
    /// Its pid in the guest.
    pub pid: u32,
    /// Loop iterations completed (progress points).
    pub iterations: u64,
    /// CPU time of the worker (all its threads), ms.
    pub cpu_time_ms: f64,
    /// Wall time from start to stop, ms.
    pub wall_ms: f64,
    /// Wall time not on a CPU (wall minus the CPU time of the main thread
    /// over the same span), ms.
    pub off_cpu_ms: f64,
    /// CPU changes seen between progress points.
    pub migrations: u64,
    /// Every CPU the worker was seen on, ascending.
    pub cpus_used: Vec<u32>,
    /// Longest interval between progress points, ms.
    pub max_gap_ms: f64,
    /// When that gap ended, ms after start.
    pub max_gap_at_ms: f64,
    /// The CPU the worker was on when the gap ended.
    pub max_gap_cpu: u32,
    /// Wake-latency samples taken (at most 100,000 kept).
    pub wake_samples: u64,
    /// Median wake latency, µs.
    pub wake_p50_us: f64,
    /// 99th percentile wake latency, µs.
    pub wake_p99_us: f64,
    /// Largest wake latency, µs.
    pub wake_max_us: f64,
    /// Time runnable but waiting for a CPU (`/proc/self/schedstat`), ms.
    pub run_delay_ms: f64,
    /// Cumulative iterations at every multiple of [`SAMPLE_INTERVAL_MS`]
    /// of the guest's `CLOCK_MONOTONIC` while the worker ran: the worker
    /// writes guest-monotonic times, the agent rebases them to ms since
    /// the run started (and drops points before it).
    #[serde(default)]
    pub progress: Vec<ProgressPoint>,
    /// Where the worker ran over time: runs of consecutive progress
    /// points on one CPU, each at most [`MAX_CPU_SPAN_MS`] long, oldest
    /// first (times like `progress`'s; at most [`MAX_CPU_SPANS`]).
    #[serde(default)]
    pub cpu_spans: Vec<CpuSpan>,
    /// Set when spans were left out because there were too many: checks
    /// that read them judge only up to the last one.
    #[serde(default)]
    pub cpu_spans_truncated: bool,
    /// What the work type did, counted by name (signals handled, cgroup
    /// moves, ...): evidence that it does what its name says.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, u64>,
    /// What the worker's payload program did, when its work is a payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<crate::payload::PayloadReport>,
    /// Set when the worker could not do its work (the error).
    pub error: Option<String>,
}

/// The spacing of progress samples, ms.
pub const SAMPLE_INTERVAL_MS: f64 = 250.0;

/// The most progress samples one worker keeps (about 40 minutes).
pub const MAX_PROGRESS_POINTS: usize = 10_000;

/// The longest a [`CpuSpan`] lasts: a worker on one CPU for longer
/// starts a new span, so a check at a span's ends sees the worker at
/// least this often.
pub const MAX_CPU_SPAN_MS: f64 = 250.0;

/// The most CPU spans one worker keeps.
pub const MAX_CPU_SPANS: usize = 4_096;

/// A worker seen on one CPU at every progress point from `from_ms` to
/// `to_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSpan {
    /// The CPU.
    pub cpu: u32,
    /// Its NUMA node.
    pub node: u32,
    /// The first progress point seen there, ms.
    pub from_ms: f64,
    /// The last, ms.
    pub to_ms: f64,
}

/// When the agent applied one round of a step's ops, ms since the run
/// started (progress times).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct OpsApplied {
    /// The step, from 0.
    pub step: u32,
    /// When the first op began.
    pub started_ms: f64,
    /// When the last op was done.
    pub done_ms: f64,
}

/// Iterations completed by a point in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressPoint {
    /// When, ms.
    pub at_ms: f64,
    /// Iterations completed before then.
    pub iterations: u64,
}

/// Workers of one cgroup.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CgroupResults {
    /// One report per worker, in spawn order.
    pub workers: Vec<WorkerReport>,
}

/// Everything a run measured, by cgroup name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunResults {
    /// Cgroup name to its results.
    pub cgroups: BTreeMap<String, CgroupResults>,
    /// Every round of step ops the agent applied, in order (a run that
    /// ended early has fewer than its plan).
    #[serde(default)]
    pub ops_applied: Vec<OpsApplied>,
    /// What the host-side monitor saw of the guest's run queues, sample
    /// times counted from the workers' start (None: no monitor ran).
    #[serde(default)]
    pub monitor: Option<crate::monitor::MonitorReport>,
}

impl RunResults {
    /// The reports grouped by cgroup, each cgroup's workers in spawn
    /// order (by index).
    pub fn from_reports(reports: &[WorkerReport]) -> Self {
        let mut r = RunResults::default();
        for w in reports {
            r.cgroups
                .entry(w.cgroup.clone())
                .or_default()
                .workers
                .push(w.clone());
        }
        for c in r.cgroups.values_mut() {
            c.workers.sort_by_key(|w| w.index);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_group_by_cgroup_in_spawn_order() {
        let w = |cgroup: &str, index| WorkerReport {
            cgroup: cgroup.into(),
            index,
            ..Default::default()
        };
        let r = RunResults::from_reports(&[w("b", 1), w("a", 0), w("b", 0)]);
        let b: Vec<u32> = r.cgroups["b"].workers.iter().map(|w| w.index).collect();
        assert_eq!(b, [0, 1]);
        assert_eq!(r.cgroups["a"].workers.len(), 1);
    }
}

/// A BPF program loaded in the guest (the scheduler's), as the kernel
/// describes it (`bpf_prog_info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfProgram {
    /// The kernel's id for it.
    pub id: u32,
    /// Its name (at most 15 bytes, as the kernel keeps it).
    pub name: String,
    /// `enum bpf_prog_type` (27: struct_ops, what sched_ext runs).
    pub prog_type: u32,
    /// Its size after verification, bytes of BPF instructions.
    pub xlated_bytes: u32,
    /// Instructions the verifier processed to accept it (the kernel's
    /// limit is 1,000,000).
    pub verified_insns: u32,
}

/// One of the scheduler's global data maps (`.bss`, `.data`, `.rodata`)
/// as the guest read it: raw bytes and where its BTF describes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfMapDump {
    /// The map's name (`scx_qmap.bss`).
    pub name: String,
    /// Its value (key 0), hex, at most [`MAX_BPF_MAP_DUMP`] bytes.
    pub value_hex: String,
    /// The BTF object describing it (an index into [`BpfDump::btfs`]).
    pub btf_id: u32,
    /// The value's type in that BTF (a `DATASEC`).
    pub value_type_id: u32,
}

/// The most bytes of one map's value the guest sends.
pub const MAX_BPF_MAP_DUMP: usize = 256 << 10;
/// The most bytes of one BTF object the guest sends.
pub const MAX_BPF_BTF_DUMP: usize = 4 << 20;

/// The scheduler's global data at one moment (its death, or the end of
/// the run), with the BTF objects that name its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfDump {
    /// When: `scheduler died` or `end of run`.
    pub when: String,
    /// The global data maps.
    pub maps: Vec<BpfMapDump>,
    /// Raw BTF objects, hex.
    pub btfs: Vec<BpfBtf>,
}

/// One raw BTF object the guest sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BpfBtf {
    /// Its kernel id ([`BpfMapDump::btf_id`]).
    pub id: u32,
    /// Its bytes, hex.
    pub hex: String,
}

/// One global variable of the scheduler's BPF program, named and rendered
/// from its BTF.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BpfGlobal {
    /// The map it lives in (`scx_qmap.bss`).
    pub map: String,
    /// The variable's name (`nr_enqueued`).
    pub name: String,
    /// Its value as text (integers, strings, arrays and structs, bounded).
    pub value: String,
    /// Its value as a number, for integers.
    pub number: Option<f64>,
}

/// The scheduler's global variables at one moment, decoded on the host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BpfGlobals {
    /// When they were read (`scheduler died`, `end of run`).
    pub when: String,
    /// Every variable of every global data map.
    pub globals: Vec<BpfGlobal>,
    /// Maps that could not be decoded, and why.
    pub errors: Vec<String>,
}
