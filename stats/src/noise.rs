//! Run-to-run noise: in an A/A run (one configuration repeated), how much
//! each metric varies between repetitions in each cell; `compare
//! --gates-from` turns it into gates of twice that spread.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compare::{Gate, Side};
use crate::metrics::Metric;
use crate::observations::Samples;

/// How many standard deviations (and coefficients of variation) of the
/// noise a change must exceed when gates come from a noise run.
pub const NOISE_GATE_FACTOR: f64 = 2.0;

/// One metric's noise in one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoiseRow {
    /// The cell: `--by` column to value.
    pub cell: BTreeMap<String, String>,
    /// The metric.
    pub metric: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Repetitions.
    pub n: usize,
    /// Their median.
    pub median: f64,
    /// Their standard deviation.
    pub sd: f64,
    /// `sd` over the mean (None when the mean is 0).
    pub cv: Option<f64>,
    /// Largest minus smallest.
    pub range: f64,
}

/// The noise of every cell of `samples` (cells with fewer than two
/// repetitions have none to measure and are left out).
pub fn noise(samples: &Samples, by: &[String], metrics: &[&'static Metric]) -> Vec<NoiseRow> {
    let mut out = Vec::new();
    for (key, cell) in samples {
        for m in metrics {
            let Some(v) = cell.get(m.name).filter(|v| v.len() >= 2) else {
                continue;
            };
            let Some(s) = Side::of(v) else { continue };
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
            out.push(NoiseRow {
                cell: by.iter().cloned().zip(key.iter().cloned()).collect(),
                metric: m.name,
                unit: m.unit,
                n: v.len(),
                median: s.median,
                sd: s.sd,
                cv: (s.mean != 0.0).then(|| s.sd / s.mean.abs()),
                range: hi - lo,
            });
        }
    }
    out
}

/// The noise of every cell of `tables` (all its jobs, cells by `by`).
pub fn noise_of(
    tables: &crate::tables::Tables,
    by: &[String],
    metrics: &[&'static Metric],
) -> Result<Vec<NoiseRow>, crate::error::StatsError> {
    let obs = crate::observations::observations(tables, &[])?;
    let s = crate::observations::samples(&obs, by, metrics)?;
    Ok(noise(&s, by, metrics))
}

/// Gates per cell and metric from a noise run.
#[derive(Debug, Clone, Default)]
pub struct NoiseGates {
    rows: Vec<NoiseRow>,
}

impl NoiseGates {
    /// Gates from `rows`.
    pub fn new(rows: Vec<NoiseRow>) -> Self {
        NoiseGates { rows }
    }

    /// The gate of `metric` in `cell`: from the noise rows whose cell
    /// agrees with it on every column both have (the widest if several).
    pub fn gate(&self, cell: &BTreeMap<String, String>, metric: &str) -> Option<Gate> {
        self.rows
            .iter()
            .filter(|r| r.metric == metric)
            .filter(|r| {
                r.cell
                    .iter()
                    .all(|(k, v)| cell.get(k).is_none_or(|c| c == v))
            })
            .map(|r| Gate {
                abs: NOISE_GATE_FACTOR * r.sd,
                rel: NOISE_GATE_FACTOR * r.cv.unwrap_or(0.0),
            })
            .reduce(|a, b| Gate {
                abs: a.abs.max(b.abs),
                rel: a.rel.max(b.rel),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::metric;

    #[test]
    fn noise_becomes_gates_for_matching_cells() {
        let m = metric("max_gap_ms").unwrap();
        let samples: Samples = BTreeMap::from([(
            vec!["steady".to_string(), "eevdf".to_string()],
            BTreeMap::from([(m.name, vec![10.0, 12.0, 14.0])]),
        )]);
        let by = vec!["scenario".to_string(), "scheduler".to_string()];
        let rows = noise(&samples, &by, &[m]);
        assert_eq!(rows.len(), 1);
        assert!((rows[0].sd - 2.0).abs() < 1e-12 && rows[0].range == 4.0);
        let gates = NoiseGates::new(rows);
        // A compare by scenario only still finds the steady noise.
        let cell = BTreeMap::from([("scenario".to_string(), "steady".to_string())]);
        let g = gates.gate(&cell, "max_gap_ms").unwrap();
        assert!((g.abs - 4.0).abs() < 1e-12 && (g.rel - 2.0 * 2.0 / 12.0).abs() < 1e-12);
        let other = BTreeMap::from([("scenario".to_string(), "wakeups".to_string())]);
        assert!(gates.gate(&other, "max_gap_ms").is_none());
    }
}
