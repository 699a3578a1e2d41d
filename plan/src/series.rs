//! Time-series metrics over workers' progress samples: the rate of
//! progress in every sample interval, summed over a scope's workers.
//!
//! A worker contributes nothing before its first sample and its last
//! count after its last one (it had stopped), so workers spawned or
//! stopped mid-run count only while they ran.

use crate::results::WorkerReport;

/// Iterations of all `workers` together at every sample instant any of
/// them has: (ms, cumulative iterations), ascending.
pub fn combined(workers: &[&WorkerReport]) -> Vec<(f64, u64)> {
    let mut times: Vec<f64> = workers
        .iter()
        .flat_map(|w| w.progress.iter().map(|p| p.at_ms))
        .filter(|t| t.is_finite())
        .collect();
    times.sort_by(f64::total_cmp);
    times.dedup();
    times
        .into_iter()
        .map(|t| (t, workers.iter().map(|w| count_at(w, t)).sum()))
        .collect()
}

/// The worker's count at `t`: its last sample at or before `t`, else 0.
fn count_at(w: &WorkerReport, t: f64) -> u64 {
    let i = w.progress.partition_point(|p| p.at_ms <= t);
    if i == 0 {
        0
    } else {
        w.progress[i - 1].iterations
    }
}

/// Progress rates (iterations per second) of consecutive intervals, with
/// each interval's length in ms.
fn rates(series: &[(f64, u64)]) -> Vec<(f64, f64)> {
    series
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| {
            let dt = w[1].0 - w[0].0;
            let di = w[1].1.saturating_sub(w[0].1) as f64;
            (di * 1000.0 / dt, dt)
        })
        .collect()
}

/// One of the time-series metrics: `min_rate`, `max_rate` (iterations
/// per second in the slowest or fastest sample interval) or `stall_ms`
/// (the longest stretch of consecutive intervals without progress).
pub fn metric(workers: &[&WorkerReport], name: &str) -> Result<f64, String> {
    let r = rates(&combined(workers));
    if r.is_empty() {
        return Err("fewer than two progress samples (run too short?)".into());
    }
    Ok(match name {
        "min_rate" => r.iter().map(|x| x.0).fold(f64::MAX, f64::min),
        "max_rate" => r.iter().map(|x| x.0).fold(f64::MIN, f64::max),
        "stall_ms" => {
            let (mut run, mut longest) = (0.0f64, 0.0f64);
            for (rate, dt) in r {
                run = if rate == 0.0 { run + dt } else { 0.0 };
                longest = longest.max(run);
            }
            longest
        }
        other => return Err(format!("`{other}` is not a time-series metric")),
    })
}

/// Names of the time-series metrics.
pub const SERIES_METRICS: [&str; 3] = ["min_rate", "max_rate", "stall_ms"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::ProgressPoint;

    fn w(points: &[(f64, u64)]) -> WorkerReport {
        WorkerReport {
            progress: points
                .iter()
                .map(|&(at_ms, iterations)| ProgressPoint { at_ms, iterations })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn workers_sum_and_late_starters_count_from_their_first_sample() {
        let a = w(&[(250.0, 10), (500.0, 20), (750.0, 30)]);
        let b = w(&[(500.0, 5), (750.0, 5)]);
        assert_eq!(
            combined(&[&a, &b]),
            vec![(250.0, 10), (500.0, 25), (750.0, 35)]
        );
    }

    #[test]
    fn rates_and_stalls() {
        let a = w(&[
            (0.0, 0),
            (250.0, 50),
            (500.0, 50),
            (750.0, 50),
            (1000.0, 100),
        ]);
        assert_eq!(metric(&[&a], "max_rate"), Ok(200.0));
        assert_eq!(metric(&[&a], "min_rate"), Ok(0.0));
        assert_eq!(metric(&[&a], "stall_ms"), Ok(500.0));
        assert!(metric(&[&w(&[(0.0, 1)])], "min_rate").is_err());
    }
}
