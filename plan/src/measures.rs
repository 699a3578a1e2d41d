//! The formulas over a group of workers that both the default checks and
//! the scripts' claims read, so a threshold and a claim of the same name
//! can never disagree.

use crate::results::WorkerReport;

/// The least wake-up samples a worker needs for its wake latencies to be
/// judged (fewer are mostly the first wake-ups after the start).
pub const MIN_WAKE_SAMPLES: u64 = 200;

/// The least iterations a cgroup needs for its migration ratio to be
/// judged.
pub const MIN_MIGRATION_ITERATIONS: u64 = 1_000;

/// The least observed running time (the sum of its CPU spans) a worker
/// needs for its NUMA locality to be judged, ms.
pub const MIN_NUMA_OBSERVED_MS: f64 = 250.0;

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Standard deviation / mean of `v` (population), in percent.
fn cv_pct(v: &[f64]) -> Result<f64, String> {
    let m = mean(v).ok_or("no workers to measure")?;
    if m <= 0.0 {
        return Err("the mean is zero".into());
    }
    let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
    Ok(var.sqrt() / m * 100.0)
}

/// Fairness: (largest - smallest) / mean of the workers' CPU time, in
/// percent (0 when all had the same; a worker at half its fair share
/// scores at least 50 whatever the count).
pub fn spread_pct(ws: &[&WorkerReport]) -> Result<f64, String> {
    let cpu: Vec<f64> = ws.iter().map(|w| w.cpu_time_ms).collect();
    let m = mean(&cpu).ok_or("no workers to measure")?;
    if m <= 0.0 {
        return Err("no CPU time to share".into());
    }
    let hi = cpu.iter().copied().fold(f64::MIN, f64::max);
    let lo = cpu.iter().copied().fold(f64::MAX, f64::min);
    Ok((hi - lo) / m * 100.0)
}

/// A worker's iterations per second over its life.
pub fn work_rate(w: &WorkerReport) -> f64 {
    if w.wall_ms <= 0.0 {
        0.0
    } else {
        w.iterations as f64 * 1000.0 / w.wall_ms
    }
}

/// The coefficient of variation of the workers' iterations per second,
/// in percent.
pub fn throughput_cv_pct(ws: &[&WorkerReport]) -> Result<f64, String> {
    let rates: Vec<f64> = ws.iter().map(|w| work_rate(w)).collect();
    cv_pct(&rates).map_err(|e| format!("{e} (iterations per second)"))
}

/// The slowest worker's iterations per second as a percentage of the
/// workers' mean rate.
pub fn min_work_rate_pct(ws: &[&WorkerReport]) -> Result<f64, String> {
    let rates: Vec<f64> = ws.iter().map(|w| work_rate(w)).collect();
    let m = mean(&rates).ok_or("no workers to measure")?;
    if m <= 0.0 {
        return Err("no progress at all".into());
    }
    Ok(rates.iter().copied().fold(f64::MAX, f64::min) / m * 100.0)
}

/// The coefficient of variation of the median wake-up latencies of the
/// workers with at least [`MIN_WAKE_SAMPLES`], in percent.
pub fn wake_cv_pct(ws: &[&WorkerReport]) -> Result<f64, String> {
    let p50: Vec<f64> = ws
        .iter()
        .filter(|w| w.wake_samples >= MIN_WAKE_SAMPLES)
        .map(|w| w.wake_p50_us)
        .collect();
    if p50.len() < 2 {
        return Err(format!(
            "fewer than two workers with {MIN_WAKE_SAMPLES} wake-up samples"
        ));
    }
    cv_pct(&p50)
}

/// CPU changes per iteration of the workers together.
pub fn migration_ratio(ws: &[&WorkerReport]) -> Result<f64, String> {
    let it: u64 = ws.iter().map(|w| w.iterations).sum();
    if it == 0 {
        return Err("no iterations".into());
    }
    Ok(ws.iter().map(|w| w.migrations).sum::<u64>() as f64 / it as f64)
}

/// A worker's observed running time (its spans' lengths) on the node it
/// used most, as a percentage of all of it, and that total in ms; `None`
/// without spans.
pub fn numa_local(w: &WorkerReport) -> Option<(f64, f64)> {
    let mut by_node: Vec<(u32, f64)> = Vec::new();
    for s in &w.cpu_spans {
        // A span of one progress point still counts for a little.
        let len = (s.to_ms - s.from_ms).max(0.0) + 1.0;
        match by_node.iter_mut().find(|(n, _)| *n == s.node) {
            Some((_, t)) => *t += len,
            None => by_node.push((s.node, len)),
        }
    }
    let total: f64 = by_node.iter().map(|(_, t)| t).sum();
    let most = by_node.iter().map(|(_, t)| *t).fold(0.0, f64::max);
    (total > 0.0).then(|| (most / total * 100.0, total))
}

/// The least NUMA locality of the workers (see [`numa_local`]).
pub fn numa_local_pct(ws: &[&WorkerReport]) -> Result<f64, String> {
    ws.iter()
        .filter_map(|w| numa_local(w))
        .map(|(pct, _)| pct)
        .reduce(f64::min)
        .ok_or_else(|| "no worker recorded where it ran".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu(ms: &[f64]) -> Vec<WorkerReport> {
        ms.iter()
            .map(|&c| WorkerReport {
                cpu_time_ms: c,
                wall_ms: 1000.0,
                iterations: c as u64,
                ..Default::default()
            })
            .collect()
    }

    #[test]
    fn a_worker_at_half_its_share_scores_at_least_50_at_any_count() {
        for n in [2usize, 4, 8, 16] {
            // One worker at half the fair share, the rest sharing what it
            // lost.
            let fair = 1000.0;
            let others = (n as f64 * fair - fair / 2.0) / (n - 1) as f64;
            let mut ms = vec![others; n - 1];
            ms.push(fair / 2.0);
            let ws = cpu(&ms);
            let refs: Vec<&WorkerReport> = ws.iter().collect();
            let s = spread_pct(&refs).unwrap();
            assert!(s >= 50.0, "{n} workers: {s}");
            assert!(min_work_rate_pct(&refs).unwrap() <= 50.1);
            let even = cpu(&vec![fair; n]);
            let refs: Vec<&WorkerReport> = even.iter().collect();
            assert_eq!(spread_pct(&refs).unwrap(), 0.0);
            assert_eq!(throughput_cv_pct(&refs).unwrap(), 0.0);
        }
    }

    #[test]
    fn cv_and_ratios() {
        let ws = cpu(&[500.0, 1500.0]);
        let refs: Vec<&WorkerReport> = ws.iter().collect();
        assert!((throughput_cv_pct(&refs).unwrap() - 50.0).abs() < 1e-9);
        let mut w = ws[0].clone();
        w.migrations = 250;
        assert_eq!(migration_ratio(&[&w]).unwrap(), 0.5);
        assert!(wake_cv_pct(&refs).is_err());
    }
}
