//! The metric registry: every metric a job has, with its unit, which way
//! is better, how the workers' values make the job's, and the gates a
//! change must clear to count. The CLI (`ktstr stats metrics`), the
//! summaries, the compare and the report all read this one table.

use serde::Serialize;

use crate::error::StatsError;

/// Which way a metric improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More is better (throughput).
    HigherIsBetter,
    /// Less is better (latency, stalls).
    LowerIsBetter,
}

impl Direction {
    /// Whether a change of `delta` (B minus A) makes things worse.
    pub fn is_worse(self, delta: f64) -> bool {
        match self {
            Direction::HigherIsBetter => delta < 0.0,
            Direction::LowerIsBetter => delta > 0.0,
        }
    }

    /// A short arrow for tables: the way that is better.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "higher",
            Direction::LowerIsBetter => "lower",
        }
    }
}

/// How a job's value comes from its workers (or from the job itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The sum over the job's workers of a worker column.
    WorkerSum(&'static str),
    /// The mean over the job's workers that have the column (nulls skipped).
    WorkerMean(&'static str),
    /// The largest value among the job's workers.
    WorkerMax(&'static str),
    /// The largest CPU-time spread of the job's cgroups, in percent of
    /// the mean (the cgroups table's `spread_pct`).
    CgroupSpreadMax,
    /// A column of the jobs table.
    Job(&'static str),
}

/// One metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Metric {
    /// Its name: a column of the jobs table, and what `--metric` takes.
    pub name: &'static str,
    /// Its unit.
    pub unit: &'static str,
    /// Which way is better.
    pub direction: Direction,
    /// Where its value comes from.
    pub source: Source,
    /// The smallest absolute change that counts, in `unit`.
    pub abs_gate: f64,
    /// The smallest change relative to A's median that counts (0.1: 10%).
    pub rel_gate: f64,
    /// What it measures.
    pub doc: &'static str,
}

/// Every metric, in the order tables show them.
pub const METRICS: &[Metric] = &[
    Metric {
        name: "throughput",
        unit: "iter/s",
        direction: Direction::HigherIsBetter,
        source: Source::WorkerSum("rate_per_s"),
        abs_gate: 1.0,
        rel_gate: 0.10,
        doc: "Loop iterations per second, summed over the job's workers",
    },
    Metric {
        name: "wake_p50_us",
        unit: "us",
        direction: Direction::LowerIsBetter,
        source: Source::WorkerMean("wake_p50_us"),
        abs_gate: 20.0,
        rel_gate: 0.20,
        doc: "Median wake-up latency, mean over the workers that sleep and wake",
    },
    Metric {
        name: "wake_p99_us",
        unit: "us",
        direction: Direction::LowerIsBetter,
        source: Source::WorkerMax("wake_p99_us"),
        abs_gate: 100.0,
        rel_gate: 0.25,
        doc: "99th-percentile wake-up latency, the worst worker's",
    },
    Metric {
        name: "wake_max_us",
        unit: "us",
        direction: Direction::LowerIsBetter,
        source: Source::WorkerMax("wake_max_us"),
        abs_gate: 500.0,
        rel_gate: 0.50,
        doc: "Largest wake-up latency of any worker",
    },
    Metric {
        name: "max_gap_ms",
        unit: "ms",
        direction: Direction::LowerIsBetter,
        source: Source::WorkerMax("max_gap_ms"),
        abs_gate: 10.0,
        rel_gate: 0.25,
        doc: "Longest stretch any worker went without progress",
    },
    Metric {
        name: "run_delay_ms",
        unit: "ms",
        direction: Direction::LowerIsBetter,
        source: Source::WorkerMean("run_delay_ms"),
        abs_gate: 10.0,
        rel_gate: 0.20,
        doc: "Time runnable but waiting for a CPU, mean per worker",
    },
    Metric {
        name: "migrations",
        unit: "count",
        direction: Direction::LowerIsBetter,
        source: Source::WorkerSum("migrations"),
        abs_gate: 10.0,
        rel_gate: 0.25,
        doc: "CPU changes seen between progress points, summed over workers",
    },
    Metric {
        name: "spread_pct",
        unit: "pp",
        direction: Direction::LowerIsBetter,
        source: Source::CgroupSpreadMax,
        abs_gate: 3.0,
        rel_gate: 0.25,
        doc: "CPU-time spread of the most unequal cgroup ((largest - smallest) / mean, %)",
    },
    Metric {
        name: "ready_ms",
        unit: "ms",
        direction: Direction::LowerIsBetter,
        source: Source::Job("ready_ms"),
        abs_gate: 100.0,
        rel_gate: 0.10,
        doc: "VM launch to the guest agent's ready message",
    },
];

/// The metric called `name`.
pub fn metric(name: &str) -> Result<&'static Metric, StatsError> {
    METRICS
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| StatsError::UnknownMetric {
            name: name.to_string(),
            known: names(),
        })
}

/// Every metric's name, comma-separated (for messages).
pub fn names() -> String {
    METRICS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The metrics called `names`, or every metric when `names` is empty.
pub fn chosen(names: &[String]) -> Result<Vec<&'static Metric>, StatsError> {
    if names.is_empty() {
        return Ok(METRICS.iter().collect());
    }
    names.iter().map(|n| metric(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_gates_sane() {
        let mut seen = std::collections::BTreeSet::new();
        for m in METRICS {
            assert!(seen.insert(m.name), "{} twice", m.name);
            assert!(m.abs_gate >= 0.0 && m.rel_gate >= 0.0 && m.rel_gate < 1.0);
            assert!(!m.doc.is_empty() && !m.unit.is_empty());
        }
        assert!(Direction::LowerIsBetter.is_worse(1.0));
        assert!(Direction::HigherIsBetter.is_worse(-1.0));
        let e = metric("wake_p98").unwrap_err().to_string();
        assert!(
            e.contains("unknown metric `wake_p98`") && e.contains("wake_p99_us"),
            "{e}"
        );
    }
}
