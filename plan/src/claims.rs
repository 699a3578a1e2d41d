//! Claims: what a script says must hold of the results, as data.
//!
//! A metric expression is recorded symbolically while the script runs
//! (`results().cgroup("a").spread / 2.0`) and evaluated on the host after
//! the VM returns.

use serde::{Deserialize, Serialize};

use crate::measures;
use crate::plan::SourcePos;
use crate::results::{RunResults, WorkerReport};

/// How deeply a metric expression may nest (`a / (b + (c * ...))`). The
/// guest reads the Plan with serde_json, whose nesting limit is 128; an
/// expression is a few JSON levels per node.
pub const MAX_EXPR_DEPTH: usize = 24;

/// Whose numbers a metric reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", rename_all = "snake_case", deny_unknown_fields)]
pub enum Scope {
    /// Every worker of every cgroup.
    All,
    /// The workers of one cgroup.
    Cgroup {
        /// Cgroup name.
        name: String,
    },
    /// One worker.
    Worker {
        /// Cgroup name.
        cgroup: String,
        /// Worker index in spawn order.
        index: u32,
    },
}

/// The metrics scripts can name: (name, what it is, with its unit).
pub const METRICS: [(&str, &str); 21] = [
    ("iterations", "Loop iterations of the scope's workers, summed."),
    ("min_iterations", "The fewest iterations any one worker of the scope made."),
    ("max_gap_ms", "The longest gap between two progress points of any worker, ms."),
    (
        "spread",
        "How unevenly the workers shared CPU time: (largest - smallest) / mean of\ntheir CPU time, in percent.",
    ),
    (
        "throughput_cv_pct",
        "The coefficient of variation of the workers' iterations per second, %.",
    ),
    (
        "min_work_rate_pct",
        "The slowest worker's iterations per second as a percentage of the mean.",
    ),
    (
        "wake_cv_pct",
        "The coefficient of variation of the workers' median wake-up latencies, %.",
    ),
    ("migration_ratio", "CPU changes per iteration of the scope's workers."),
    (
        "numa_local_pct",
        "The least share of any worker's running time on the node it used most, %.",
    ),
    ("migrations", "CPU migrations of the scope's workers, summed."),
    ("wake_p50_us", "Median wake-up latency, averaged over the workers, µs."),
    ("wake_p99_us", "The worst worker's 99th-percentile wake-up latency, µs."),
    (
        "run_delay_ms",
        "Time runnable but waiting for a CPU (schedstat), averaged, ms.",
    ),
    ("cpu_time_ms", "CPU time of the scope's workers, summed, ms."),
    ("workers", "How many workers the scope had."),
    (
        "min_rate",
        "Iterations per second in the slowest 250 ms interval of the scope.",
    ),
    (
        "max_rate",
        "Iterations per second in the fastest 250 ms interval of the scope.",
    ),
    (
        "stall_ms",
        "The longest stretch without any progress of the scope, ms.",
    ),
    (
        "cpu_stall_ms",
        "Host-side monitor, whole VM: the longest any CPU held runnable tasks without\nrunning them, ms.",
    ),
    (
        "rq_imbalance",
        "Host-side monitor, whole VM: the largest run-queue imbalance within an LLC\n(busiest CPU's mean length over the idlest's, per 1 s window).",
    ),
    (
        "local_dsq_max",
        "Host-side monitor, whole VM: the deepest sched_ext local dispatch queue seen.",
    ),
];

/// The prefix of a payload's own metrics (`payload:bogo_ops_per_s`).
pub const PAYLOAD_METRIC_PREFIX: &str = "payload:";

/// Payload metric `key` summed over the workers whose payload reported
/// it; an error naming what they did report when none did.
fn payload_metric(ws: &[&WorkerReport], key: &str) -> Result<f64, String> {
    let runs: Vec<&crate::payload::PayloadReport> =
        ws.iter().filter_map(|w| w.payload.as_ref()).collect();
    if runs.is_empty() {
        return Err(format!("no payload ran to report `{key}`"));
    }
    let values: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.metrics.get(key))
        .copied()
        .collect();
    if values.is_empty() {
        let mut known: Vec<&str> = runs
            .iter()
            .flat_map(|r| r.metrics.keys().map(String::as_str))
            .collect();
        known.sort_unstable();
        known.dedup();
        return Err(if known.is_empty() {
            format!("the payload reported no metrics (wanted `{key}`)")
        } else {
            format!(
                "the payload did not report `{key}` (it reported: {})",
                known.join(", ")
            )
        });
    }
    Ok(values.iter().sum())
}

/// A number computed from results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "expr", rename_all = "snake_case", deny_unknown_fields)]
pub enum MetricExpr {
    /// A metric of a scope (one of [`METRICS`]).
    Metric {
        /// Whose.
        scope: Scope,
        /// Which.
        name: String,
    },
    /// A constant.
    Const {
        /// The value.
        value: f64,
    },
    /// An arithmetic combination.
    Binary {
        /// `+`, `-`, `*` or `/`.
        op: char,
        /// Left operand.
        lhs: Box<MetricExpr>,
        /// Right operand.
        rhs: Box<MetricExpr>,
    },
}

/// What the value must satisfy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "test", rename_all = "snake_case", deny_unknown_fields)]
pub enum Predicate {
    /// value <= limit.
    AtMost {
        /// The limit.
        limit: f64,
    },
    /// value >= limit.
    AtLeast {
        /// The limit.
        limit: f64,
    },
    /// lo <= value <= hi.
    Between {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// value is a finite number.
    IsFinite,
    /// value == expected (within 1e-9 relative).
    Eq {
        /// The expected value.
        expected: f64,
    },
}

/// One claim of a script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The claim as written in the script.
    pub label: String,
    /// Where the `claim` call is.
    pub at: SourcePos,
    /// The number judged.
    pub expr: MetricExpr,
    /// The test it must pass.
    pub predicate: Predicate,
}

/// How one claim fared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimVerdict {
    /// It holds.
    Pass,
    /// It does not.
    Fail,
    /// It cannot be evaluated (a zero denominator, no workers, ...).
    Inconclusive,
}

/// A claim's evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimOutcome {
    /// The claim's label.
    pub label: String,
    /// The value, when it could be computed.
    pub value: Option<f64>,
    /// The verdict.
    pub verdict: ClaimVerdict,
    /// Why, in words.
    pub detail: String,
}

impl MetricExpr {
    /// How many levels the expression nests (a metric or constant is 1).
    pub fn depth(&self) -> usize {
        match self {
            MetricExpr::Metric { .. } | MetricExpr::Const { .. } => 1,
            MetricExpr::Binary { lhs, rhs, .. } => 1 + lhs.depth().max(rhs.depth()),
        }
    }

    /// Every cgroup name this expression reads.
    pub fn cgroups(&self) -> Vec<&str> {
        match self {
            MetricExpr::Metric { scope, .. } => match scope {
                Scope::All => vec![],
                Scope::Cgroup { name } => vec![name.as_str()],
                Scope::Worker { cgroup, .. } => vec![cgroup.as_str()],
            },
            MetricExpr::Const { .. } => vec![],
            MetricExpr::Binary { lhs, rhs, .. } => {
                let mut v = lhs.cgroups();
                v.extend(rhs.cgroups());
                v
            }
        }
    }

    /// The value on `r`, or why it has none.
    pub fn eval(&self, r: &RunResults) -> Result<f64, String> {
        match self {
            MetricExpr::Const { value } => Ok(*value),
            MetricExpr::Metric { scope, name } => metric(r, scope, name),
            MetricExpr::Binary { op, lhs, rhs } => {
                let (a, b) = (lhs.eval(r)?, rhs.eval(r)?);
                match op {
                    '+' => Ok(a + b),
                    '-' => Ok(a - b),
                    '*' => Ok(a * b),
                    '/' if b == 0.0 => Err("division by zero".into()),
                    '/' => Ok(a / b),
                    _ => Err(format!("unknown operator {op}")),
                }
            }
        }
    }
}

fn workers<'a>(r: &'a RunResults, scope: &Scope) -> Result<Vec<&'a WorkerReport>, String> {
    let of = |name: &str| {
        r.cgroups
            .get(name)
            .ok_or_else(|| format!("no results for cgroup `{name}`"))
    };
    Ok(match scope {
        Scope::All => r.cgroups.values().flat_map(|c| &c.workers).collect(),
        Scope::Cgroup { name } => of(name)?.workers.iter().collect(),
        Scope::Worker { cgroup, index } => vec![of(cgroup)?
            .workers
            .get(*index as usize)
            .ok_or_else(|| format!("cgroup `{cgroup}` has no worker {index}"))?],
    })
}

fn metric(r: &RunResults, scope: &Scope, name: &str) -> Result<f64, String> {
    if crate::monitor::MONITOR_METRICS.contains(&name) {
        return match &r.monitor {
            Some(m) => m.metric(name),
            None => Err("the host-side monitor did not run (--no-monitor?)".into()),
        };
    }
    let ws = workers(r, scope)?;
    if name == "workers" {
        return Ok(ws.len() as f64);
    }
    if ws.is_empty() {
        return Err("no workers to measure".into());
    }
    let sum = |f: fn(&WorkerReport) -> f64| ws.iter().map(|w| f(w)).sum::<f64>();
    let max = |f: fn(&WorkerReport) -> f64| ws.iter().map(|w| f(w)).fold(f64::MIN, f64::max);
    let n = ws.len() as f64;
    if crate::series::SERIES_METRICS.contains(&name) {
        return crate::series::metric(&ws, name);
    }
    if let Some(key) = name.strip_prefix(PAYLOAD_METRIC_PREFIX) {
        return payload_metric(&ws, key);
    }
    Ok(match name {
        "iterations" => sum(|w| w.iterations as f64),
        "min_iterations" => ws
            .iter()
            .map(|w| w.iterations as f64)
            .fold(f64::MAX, f64::min),
        "max_gap_ms" => max(|w| w.max_gap_ms),
        "migrations" => sum(|w| w.migrations as f64),
        "wake_p50_us" => sum(|w| w.wake_p50_us) / n,
        "wake_p99_us" => max(|w| w.wake_p99_us),
        "run_delay_ms" => sum(|w| w.run_delay_ms) / n,
        "cpu_time_ms" => sum(|w| w.cpu_time_ms),
        "spread" => measures::spread_pct(&ws)?,
        "throughput_cv_pct" => measures::throughput_cv_pct(&ws)?,
        "min_work_rate_pct" => measures::min_work_rate_pct(&ws)?,
        "wake_cv_pct" => measures::wake_cv_pct(&ws)?,
        "migration_ratio" => measures::migration_ratio(&ws)?,
        "numa_local_pct" => measures::numa_local_pct(&ws)?,
        other => return Err(format!("unknown metric `{other}`")),
    })
}

impl Predicate {
    /// Why the predicate cannot judge anything, if it cannot: a bound that
    /// is not a finite number, or bounds in the wrong order.
    pub fn problem(&self) -> Option<String> {
        let (name, bounds): (&str, Vec<f64>) = match self {
            Predicate::AtMost { limit } => ("at_most", vec![*limit]),
            Predicate::AtLeast { limit } => ("at_least", vec![*limit]),
            Predicate::Eq { expected } => ("eq", vec![*expected]),
            Predicate::Between { lo, hi } => ("between", vec![*lo, *hi]),
            Predicate::IsFinite => return None,
        };
        let shown: Vec<String> = bounds.iter().map(f64::to_string).collect();
        let call = format!("{name}({})", shown.join(", "));
        if bounds.iter().any(|b| !b.is_finite()) {
            return Some(format!("{call}: bounds must be finite numbers"));
        }
        match self {
            Predicate::Between { lo, hi } if lo > hi => {
                Some(format!("{call}: the bounds are reversed"))
            }
            _ => None,
        }
    }

    /// Whether `v` passes.
    pub fn holds(&self, v: f64) -> bool {
        match self {
            Predicate::AtMost { limit } => v <= *limit,
            Predicate::AtLeast { limit } => v >= *limit,
            Predicate::Between { lo, hi } => *lo <= v && v <= *hi,
            Predicate::IsFinite => v.is_finite(),
            Predicate::Eq { expected } => (v - expected).abs() <= 1e-9 * expected.abs().max(1.0),
        }
    }
}

impl Claim {
    /// Judges the claim on `r`.
    pub fn evaluate(&self, r: &RunResults) -> ClaimOutcome {
        match self.expr.eval(r) {
            Ok(v) => {
                let pass = self.predicate.holds(v);
                ClaimOutcome {
                    label: self.label.clone(),
                    value: Some(v),
                    verdict: if pass {
                        ClaimVerdict::Pass
                    } else {
                        ClaimVerdict::Fail
                    },
                    detail: format!("value {v}"),
                }
            }
            Err(why) => ClaimOutcome {
                label: self.label.clone(),
                value: None,
                verdict: ClaimVerdict::Inconclusive,
                detail: why,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::CgroupResults;

    fn results() -> RunResults {
        let w = |it, cpu| WorkerReport {
            iterations: it,
            cpu_time_ms: cpu,
            ..Default::default()
        };
        let mut r = RunResults::default();
        r.cgroups.insert(
            "a".into(),
            CgroupResults {
                workers: vec![w(10, 60.0), w(30, 40.0)],
            },
        );
        r.cgroups.insert("empty".into(), CgroupResults::default());
        r
    }

    fn m(scope: Scope, name: &str) -> MetricExpr {
        MetricExpr::Metric {
            scope,
            name: name.into(),
        }
    }

    #[test]
    fn metrics_aggregate_and_claims_judge() {
        let r = results();
        let a = || Scope::Cgroup { name: "a".into() };
        assert_eq!(m(a(), "iterations").eval(&r), Ok(40.0));
        assert_eq!(m(a(), "min_iterations").eval(&r), Ok(10.0));
        // CPU 60 and 40 ms: (60 - 40) / 50.
        assert!((m(a(), "spread").eval(&r).unwrap() - 40.0).abs() < 1e-9);
        let claim = Claim {
            label: "spread".into(),
            at: SourcePos::default(),
            expr: m(a(), "spread"),
            predicate: Predicate::AtMost { limit: 30.0 },
        };
        assert_eq!(claim.evaluate(&r).verdict, ClaimVerdict::Fail);
    }

    #[test]
    fn zero_denominators_and_empty_cgroups_are_inconclusive() {
        let r = results();
        let ratio = MetricExpr::Binary {
            op: '/',
            lhs: Box::new(m(Scope::All, "iterations")),
            rhs: Box::new(MetricExpr::Const { value: 0.0 }),
        };
        let claim = Claim {
            label: "ratio".into(),
            at: SourcePos::default(),
            expr: ratio,
            predicate: Predicate::IsFinite,
        };
        let o = claim.evaluate(&r);
        assert_eq!(o.verdict, ClaimVerdict::Inconclusive);
        assert_eq!(o.detail, "division by zero");
        let empty = m(
            Scope::Cgroup {
                name: "empty".into(),
            },
            "max_gap_ms",
        );
        assert!(empty.eval(&r).is_err());
    }
}
