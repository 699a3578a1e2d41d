//! A/B compare: for each cell and metric, the two samples across
//! repetitions, the change, and a three-way finding. DIFFERENT only when
//! the change clears the metric's absolute and relative gates and the
//! Mann-Whitney test rejects after Benjamini-Hochberg across everything
//! compared; SAME when the test had the power to see a gated change and
//! the change is within the gates; UNKNOWN otherwise, with the
//! repetitions it would take. A DIFFERENT change the worse way is a
//! regression.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::StatsError;
use crate::inference::{bh, mann_whitney, mean_var, median, power, welch};
use crate::metrics::{Direction, Metric};
use crate::noise::NoiseGates;
use crate::observations::{observations, samples, CellKey, Samples};
use crate::select::Filter;
use crate::tables::Tables;

/// What a compare found for one cell and metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Finding {
    /// No change as large as the gates, and the power to have seen one.
    Same,
    /// A change past the gates that the test confirms.
    Different,
    /// The data cannot tell.
    Unknown,
}

impl Finding {
    /// Upper-case label.
    pub fn label(self) -> &'static str {
        match self {
            Finding::Same => "SAME",
            Finding::Different => "DIFFERENT",
            Finding::Unknown => "UNKNOWN",
        }
    }
}

/// What a finding rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The test, the gates and the power.
    Test,
    /// The gates alone: a side has one repetition, so no test is possible.
    GatesOnly,
}

/// The gates a change must clear.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Gate {
    /// Absolute, in the metric's unit.
    pub abs: f64,
    /// Relative to A's median (0.1: 10%).
    pub rel: f64,
}

/// One side's sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    /// The values, one per repetition.
    pub values: Vec<f64>,
    /// Their median.
    pub median: f64,
    /// Their mean.
    pub mean: f64,
    /// Their sample standard deviation (0 for one value).
    pub sd: f64,
}

impl Side {
    /// The summary of `values` (None when empty).
    pub fn of(values: &[f64]) -> Option<Side> {
        let median = median(values)?;
        let (mean, var) = mean_var(values);
        Some(Side {
            values: values.to_vec(),
            median,
            mean,
            sd: var.sqrt(),
        })
    }
}

/// The comparison of one metric in one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// The cell: `--by` column to value.
    pub cell: BTreeMap<String, String>,
    /// The metric.
    pub metric: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Which way is better.
    pub direction: Direction,
    /// A's sample.
    pub a: Side,
    /// B's sample.
    pub b: Side,
    /// median(B) - median(A).
    pub delta: f64,
    /// `delta` relative to A's median (None when that is 0).
    pub relative: Option<f64>,
    /// The gates used.
    pub gate: Gate,
    /// Where the gates came from: `registry`, `--gate` or the noise run.
    pub gate_source: String,
    /// The Mann-Whitney p-value.
    pub p_mann_whitney: Option<f64>,
    /// The same after Benjamini-Hochberg.
    pub q_mann_whitney: Option<f64>,
    /// Welch's p-value (reported, not used for the finding).
    pub p_welch: Option<f64>,
    /// Welch's 95% interval of mean(B) - mean(A).
    pub ci95: Option<(f64, f64)>,
    /// The power to have seen a change as large as the gates.
    pub power: Option<f64>,
    /// The finding.
    pub finding: Finding,
    /// What it rests on.
    pub basis: Basis,
    /// DIFFERENT, the worse way.
    pub regression: bool,
    /// For UNKNOWN: repetitions per side that would likely decide it.
    pub repetitions_needed: Option<usize>,
}

/// The order cell values are read in: what a person names a cell by first.
const LABEL_ORDER: &[&str] = &[
    "scenario",
    "preset",
    "topology",
    "scheduler",
    "scheduler_args",
    "backend",
    "kernel",
    "run_id",
    "job",
];

/// A cell's values, scenario first and kernel late (`steady tiny-2llc
/// eevdf 6.12.117-...`).
pub fn cell_label(cell: &BTreeMap<String, String>) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for k in LABEL_ORDER {
        if let Some(v) = cell.get(*k) {
            parts.push(v);
        }
    }
    parts.join(" ")
}

impl Row {
    /// The cell's values ([`cell_label`]).
    pub fn cell_label(&self) -> String {
        cell_label(&self.cell)
    }
}

/// How to compare.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `--by` columns (the cell key's names).
    pub by: Vec<String>,
    /// The metrics.
    pub metrics: Vec<&'static Metric>,
    /// The test level (0.05).
    pub alpha: f64,
    /// Gates given by name on the command line.
    pub gates: BTreeMap<String, Gate>,
    /// Gates per cell from a noise run.
    pub noise: Option<NoiseGates>,
}

impl Options {
    /// Every metric, cells by `by`, level 0.05, the registry's gates.
    pub fn new(by: Vec<String>, metrics: Vec<&'static Metric>) -> Options {
        Options {
            by,
            metrics,
            alpha: 0.05,
            gates: BTreeMap::new(),
            noise: None,
        }
    }
}

/// Compares the jobs of `a` that filters `fa` select with those of `b`
/// that `fb` select: observations, samples by cell, then [`compare`].
pub fn compare_selections(
    (a, fa): (&Tables, &[Filter]),
    (b, fb): (&Tables, &[Filter]),
    opts: &Options,
) -> Result<Vec<Row>, StatsError> {
    let sa = samples(&observations(a, fa)?, &opts.by, &opts.metrics)?;
    let sb = samples(&observations(b, fb)?, &opts.by, &opts.metrics)?;
    compare(&sa, &sb, opts)
}

/// Compares every cell the two sides share.
pub fn compare(a: &Samples, b: &Samples, opts: &Options) -> Result<Vec<Row>, StatsError> {
    let mut rows = Vec::new();
    for (key, a_cell) in a {
        let Some(b_cell) = b.get(key) else { continue };
        for m in &opts.metrics {
            let (Some(sa), Some(sb)) = (
                a_cell.get(m.name).and_then(|v| Side::of(v)),
                b_cell.get(m.name).and_then(|v| Side::of(v)),
            ) else {
                continue;
            };
            rows.push(measure(key, m, sa, sb, opts));
        }
    }
    if rows.is_empty() {
        return Err(StatsError::BadArgument {
            what: "compare".into(),
            why: format!(
                "the two sides share no cell by {} with a value of the metrics asked for",
                opts.by.join(",")
            ),
        });
    }
    let q = bh::adjust(
        &rows
            .iter()
            .map(|r| r.p_mann_whitney.unwrap_or(f64::NAN))
            .collect::<Vec<_>>(),
    );
    for (r, q) in rows.iter_mut().zip(q) {
        r.q_mann_whitney = (!q.is_nan()).then_some(q);
        decide(r, opts.alpha);
    }
    Ok(rows)
}

/// The numbers of one row, before the finding.
fn measure(key: &CellKey, m: &'static Metric, a: Side, b: Side, opts: &Options) -> Row {
    let cell: BTreeMap<String, String> = opts.by.iter().cloned().zip(key.iter().cloned()).collect();
    let (gate, gate_source) = gate_for(&cell, m, opts);
    let delta = b.median - a.median;
    let relative = (a.median != 0.0).then(|| delta / a.median.abs());
    let u = mann_whitney::test(&a.values, &b.values)
        .filter(|_| a.values.len() >= 2 && b.values.len() >= 2);
    let w = welch::test(&a.values, &b.values, 0.95);
    let threshold = gate.abs.max(gate.rel * a.median.abs());
    let pooled = pooled_sd(&a, &b);
    let power = (a.values.len() >= 2 && b.values.len() >= 2).then(|| {
        power::power(
            threshold,
            pooled,
            a.values.len(),
            b.values.len(),
            opts.alpha,
        )
    });
    Row {
        cell,
        metric: m.name,
        unit: m.unit,
        direction: m.direction,
        a,
        b,
        delta,
        relative,
        gate,
        gate_source,
        p_mann_whitney: u.map(|u| u.p),
        q_mann_whitney: None,
        p_welch: w.map(|w| w.p),
        ci95: w.map(|w| w.ci),
        power,
        finding: Finding::Unknown,
        basis: Basis::Test,
        regression: false,
        repetitions_needed: None,
    }
}

/// The pooled standard deviation of two samples.
fn pooled_sd(a: &Side, b: &Side) -> f64 {
    let (na, nb) = (a.values.len() as f64, b.values.len() as f64);
    if na + nb <= 2.0 {
        return 0.0;
    }
    (((na - 1.0) * a.sd * a.sd + (nb - 1.0) * b.sd * b.sd) / (na + nb - 2.0)).sqrt()
}

/// The gates of `m` in `cell`: `--gate`, else the noise run's, else the
/// registry's.
fn gate_for(cell: &BTreeMap<String, String>, m: &Metric, opts: &Options) -> (Gate, String) {
    if let Some(g) = opts.gates.get(m.name) {
        return (*g, "--gate".into());
    }
    if let Some(g) = opts.noise.as_ref().and_then(|n| n.gate(cell, m.name)) {
        return (g, "noise run".into());
    }
    (
        Gate {
            abs: m.abs_gate,
            rel: m.rel_gate,
        },
        "registry".into(),
    )
}

/// Sets the finding of `r` from its numbers.
fn decide(r: &mut Row, alpha: f64) {
    let cleared = r.delta.abs() >= r.gate.abs
        && r.delta.abs() >= r.gate.rel * r.a.median.abs()
        && r.delta != 0.0;
    if r.a.values.len() < 2 || r.b.values.len() < 2 {
        r.basis = Basis::GatesOnly;
        r.finding = if cleared {
            Finding::Different
        } else {
            Finding::Same
        };
    } else {
        let significant = r.q_mann_whitney.is_some_and(|q| q < alpha);
        let powered = r.power.is_some_and(|p| p >= power::TARGET_POWER);
        r.finding = if cleared && significant {
            Finding::Different
        } else if !cleared && powered {
            Finding::Same
        } else {
            Finding::Unknown
        };
        if r.finding == Finding::Unknown {
            let threshold = r.gate.abs.max(r.gate.rel * r.a.median.abs());
            let sd = pooled_sd(&r.a, &r.b);
            r.repetitions_needed =
                Some(power::repetitions_needed(threshold, sd, alpha)).filter(|n| *n < usize::MAX);
        }
    }
    r.regression = r.finding == Finding::Different && r.direction.is_worse(r.delta);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::metric;

    fn samples(values: &[(&str, &[f64])]) -> Samples {
        let mut cell = BTreeMap::new();
        for (m, v) in values {
            let name = metric(m).unwrap().name;
            cell.insert(name, v.to_vec());
        }
        BTreeMap::from([(vec!["s".to_string()], cell)])
    }

    fn opts(metrics: &[&str]) -> Options {
        Options {
            by: vec!["scenario".into()],
            metrics: metrics.iter().map(|m| metric(m).unwrap()).collect(),
            alpha: 0.05,
            gates: BTreeMap::new(),
            noise: None,
        }
    }

    #[test]
    fn a_clear_worsening_is_a_regression_and_noise_is_not() {
        let a = samples(&[("wake_p99_us", &[900.0, 950.0, 1000.0, 920.0, 980.0])]);
        let b = samples(&[("wake_p99_us", &[3000.0, 3100.0, 2900.0, 3050.0, 2950.0])]);
        let r = &compare(&a, &b, &opts(&["wake_p99_us"])).unwrap()[0];
        assert_eq!(
            (r.finding, r.regression, r.basis),
            (Finding::Different, true, Basis::Test)
        );
        // The same change the better way is DIFFERENT but no regression.
        let r = &compare(&b, &a, &opts(&["wake_p99_us"])).unwrap()[0];
        assert_eq!((r.finding, r.regression), (Finding::Different, false));
        // Tight samples within the gates: SAME.
        let c = samples(&[("wake_p99_us", &[905.0, 955.0, 990.0, 925.0, 975.0])]);
        let r = &compare(&a, &c, &opts(&["wake_p99_us"])).unwrap()[0];
        assert_eq!(r.finding, Finding::Same, "{r:#?}");
        // Wild samples: UNKNOWN, with how many repetitions would do.
        let d = samples(&[("wake_p99_us", &[100.0, 5000.0, 900.0, 3000.0, 40.0])]);
        let r = &compare(&a, &d, &opts(&["wake_p99_us"])).unwrap()[0];
        assert_eq!(r.finding, Finding::Unknown, "{r:#?}");
        assert!(r.repetitions_needed.unwrap() > 5, "{r:#?}");
    }

    #[test]
    fn significant_but_within_the_gates_is_not_different() {
        let a = samples(&[("throughput", &[1000.0, 1001.0, 1002.0, 1003.0, 1004.0])]);
        let b = samples(&[("throughput", &[1010.0, 1011.0, 1012.0, 1013.0, 1014.0])]);
        let r = &compare(&a, &b, &opts(&["throughput"])).unwrap()[0];
        assert!(r.p_mann_whitney.unwrap() < 0.01);
        assert_eq!(r.finding, Finding::Same);
    }

    #[test]
    fn one_repetition_a_side_judges_by_the_gates_alone() {
        let a = samples(&[("max_gap_ms", &[10.0])]);
        let b = samples(&[("max_gap_ms", &[100.0])]);
        let r = &compare(&a, &b, &opts(&["max_gap_ms"])).unwrap()[0];
        assert_eq!(
            (r.basis, r.finding, r.regression),
            (Basis::GatesOnly, Finding::Different, true)
        );
        assert!(r.p_mann_whitney.is_none() && r.power.is_none());
    }

    #[test]
    fn many_comparisons_are_corrected() {
        // Twenty metrics-worth of p = 0.03 do not survive BH at 0.05 when
        // the rest are null; compare one cell of several metrics.
        let a = samples(&[
            ("wake_p99_us", &[900.0, 950.0, 1000.0, 920.0, 980.0]),
            ("max_gap_ms", &[10.0, 12.0, 11.0, 13.0, 9.0]),
        ]);
        let b = samples(&[
            ("wake_p99_us", &[990.0, 1400.0, 1500.0, 700.0, 1450.0]),
            ("max_gap_ms", &[10.0, 12.0, 11.0, 13.0, 9.0]),
        ]);
        let rows = compare(&a, &b, &opts(&["wake_p99_us", "max_gap_ms"])).unwrap();
        for r in &rows {
            assert!(r.q_mann_whitney.unwrap() >= r.p_mann_whitney.unwrap());
            assert_ne!(r.finding, Finding::Different, "{r:#?}");
        }
    }
}
