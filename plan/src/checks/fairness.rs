//! Fairness within a cgroup: CPU-time spread, throughput CV and the
//! slowest worker's rate, judged only on workers that are comparable
//! (same life, enough CPU time, wanting a CPU most of the time).

use super::{Findings, Limits};
use crate::measures;
use crate::results::WorkerReport;

/// The mean CPU time per worker, in ms, below which a cgroup's fairness
/// is not judged: with time slices of 3-20 ms and workers that start a
/// few ms apart, a shorter run's spread is mostly quantisation (a run the
/// host stopped after 0.3 s showed 20%).
pub const MIN_FAIRNESS_CPU_MS: f64 = 250.0;

/// How much longer than the shortest-lived worker of a cgroup the longest
/// may have run for their shares to be compared (workers spawned mid-run
/// had less time, not a smaller share).
pub const MAX_LIFE_DIFFERENCE: f64 = 0.10;

/// The least share of their lives a cgroup's workers must have wanted a
/// CPU (on one, or runnable and waiting: CPU time plus run delay over wall
/// time, averaged) for their shares to be compared. Workers that sleep by
/// design (pipe or futex ping-pong, bursts) do not ask for equal CPU
/// time: a pipe pair under emulation used it 59/41 with every wake-up on
/// time.
pub const MIN_CPU_DEMAND: f64 = 0.9;

/// Why `workers` of cgroup `name` cannot be compared, if they cannot.
fn not_comparable(name: &str, workers: &[WorkerReport]) -> Option<String> {
    let (shortest, longest) = workers.iter().fold((f64::MAX, 0.0_f64), |(lo, hi), w| {
        (lo.min(w.wall_ms), hi.max(w.wall_ms))
    });
    if longest > shortest * (1.0 + MAX_LIFE_DIFFERENCE) {
        return Some(format!(
            "cgroup {name}: fairness not judged, its workers ran {shortest:.0} to \
             {longest:.0} ms (spawned or ended at different times)"
        ));
    }
    let n = workers.len() as f64;
    let mean = workers.iter().map(|w| w.cpu_time_ms).sum::<f64>() / n;
    if mean < MIN_FAIRNESS_CPU_MS {
        return Some(format!(
            "cgroup {name}: fairness not judged, {mean:.0} ms of CPU time per worker \
             (at least {MIN_FAIRNESS_CPU_MS:.0} ms needed)"
        ));
    }
    let demand = workers
        .iter()
        .map(|w| (w.cpu_time_ms + w.run_delay_ms) / w.wall_ms.max(1.0))
        .sum::<f64>()
        / n;
    (demand < MIN_CPU_DEMAND).then(|| {
        format!(
            "cgroup {name}: fairness not judged, its workers sleep by design (they wanted a \
             CPU {:.0} % of the time, at least {:.0} % needed)",
            demand * 100.0,
            MIN_CPU_DEMAND * 100.0
        )
    })
}

/// The fairness checks of cgroup `name` (nothing with fewer than two
/// workers), for work whose iterations are a fixed amount of computation
/// ([`crate::work::Work::steady_rate`]; the caller decides).
pub(super) fn check(name: &str, workers: &[WorkerReport], limits: &Limits, f: &mut Findings) {
    if workers.len() < 2 {
        return;
    }
    if let Some(note) = not_comparable(name, workers) {
        f.notes.push(note);
        return;
    }
    let ws: Vec<&WorkerReport> = workers.iter().collect();
    let judged = [
        (
            measures::spread_pct(&ws),
            limits.get("max_spread_pct"),
            true,
            "unfair, CPU-time spread",
        ),
        (
            measures::throughput_cv_pct(&ws),
            limits.get("max_throughput_cv_pct"),
            true,
            "uneven progress, throughput CV",
        ),
        (
            measures::min_work_rate_pct(&ws),
            limits.get("min_work_rate_pct"),
            false,
            "a worker fell behind, slowest work rate",
        ),
    ];
    for (value, limit, is_max, what) in judged {
        let Ok(v) = value else { continue };
        let bad = if is_max { v > limit } else { v < limit };
        if bad {
            let side = if is_max { "threshold" } else { "at least" };
            f.reasons.push(format!(
                "cgroup {name}: {what} {v:.1}% of the mean ({side} {limit:.0}%)"
            ));
        }
    }
}
