//! Wake-up latency: each worker's 99th percentile, and how evenly a
//! cgroup's workers were woken.

use super::{Findings, Limits};
use crate::measures::{self, MIN_WAKE_SAMPLES};
use crate::results::WorkerReport;

/// The wake-up checks of cgroup `name`'s workers; their median latencies
/// are compared only when `compare` (work that wakes from its own sleeps,
/// [`crate::work::Work::wakes_itself`]).
pub(super) fn check(
    name: &str,
    workers: &[WorkerReport],
    compare: bool,
    limits: &Limits,
    f: &mut Findings,
) {
    let max_p99 = limits.get("max_wake_p99_us");
    for (i, w) in workers.iter().enumerate() {
        if w.wake_samples >= MIN_WAKE_SAMPLES && w.wake_p99_us > max_p99 {
            f.reasons.push(format!(
                "worker {name}[{i}] woke late: 99th-percentile wake-up latency {:.0} µs \
                 over {} wake-ups (threshold {max_p99:.0} µs)",
                w.wake_p99_us, w.wake_samples
            ));
        }
    }
    if !compare {
        return;
    }
    let ws: Vec<&WorkerReport> = workers.iter().collect();
    let max_cv = limits.get("max_wake_cv_pct");
    if let Ok(cv) = measures::wake_cv_pct(&ws) {
        if cv > max_cv {
            f.reasons.push(format!(
                "cgroup {name}: uneven wake-ups, the CV of its workers' median wake-up \
                 latencies is {cv:.0}% (threshold {max_cv:.0}%)"
            ));
        }
    }
}
