//! results(), metrics, arithmetic on them, predicates and claim().

use rhai::{Engine, NativeCallContext};

use super::def::def;
use super::{count, fail, Ctx, RhaiResult};
use crate::backend::Action;
use ktstr_plan::claims::{Claim, MetricExpr, Predicate as P, Scope, MAX_EXPR_DEPTH, METRICS};

/// The results of the run, as a script sees them while it is recorded.
#[derive(Debug, Clone)]
pub struct Results;

/// Whose numbers: every worker, a cgroup, or one worker.
#[derive(Debug, Clone)]
pub struct StatsScope(Scope);

/// A number from the results (symbolic until the run is over).
#[derive(Debug, Clone)]
pub struct Metric(pub MetricExpr);

/// A test a metric must pass.
#[derive(Debug, Clone)]
pub struct Predicate(pub P);

fn binary(op: char, a: MetricExpr, b: MetricExpr) -> RhaiResult<Metric> {
    let e = MetricExpr::Binary {
        op,
        lhs: Box::new(a),
        rhs: Box::new(b),
    };
    if e.depth() > MAX_EXPR_DEPTH {
        return fail(format!(
            "a metric expression may nest at most {MAX_EXPR_DEPTH} levels deep"
        ));
    }
    Ok(Metric(e))
}

/// A constant operand; it must be a finite number.
fn constant(v: f64) -> RhaiResult<MetricExpr> {
    if !v.is_finite() {
        return fail(format!("{v} in a metric expression is not a finite number"));
    }
    Ok(MetricExpr::Const { value: v })
}

pub(super) fn register(engine: &mut Engine, ctx: &Ctx) {
    register_scopes(engine);
    register_arithmetic(engine);
    register_predicates(engine);
    let c = ctx.clone();
    def(
        engine,
        "claim(value: Metric, test: Predicate)",
        "Says `value` must pass `test` once the run is over: the run fails if\nit does not, and is inconclusive if `value` cannot be computed (no\nworkers, a division by zero).",
        move |call: NativeCallContext, m: Metric, p: Predicate| -> RhaiResult<()> {
            let at = c.here(&call);
            let label = c
                .text_at(&at)
                .and_then(|text| call_text(&text, at.line, at.col))
                .unwrap_or_else(|| format!("{:?} {:?}", m.0, p.0));
            c.apply(Action::Claim(Claim {
                label,
                at,
                expr: m.0,
                predicate: p.0,
            }))
        },
    );
}

fn register_scopes(engine: &mut Engine) {
    def(
        engine,
        "results() -> Results",
        "The results of the run, for claims: `results().cgroup(\"a\").spread`.",
        || Results,
    );
    def(
        engine,
        "all(results: &mut Results) -> Stats",
        "Every worker of every cgroup.",
        |_: &mut Results| StatsScope(Scope::All),
    );
    def(
        engine,
        "cgroup(results: &mut Results, name: string) -> Stats",
        "The workers of cgroup `name`.",
        |_: &mut Results, name: &str| StatsScope(Scope::Cgroup { name: name.into() }),
    );
    def(
        engine,
        "worker(results: &mut Results, cgroup: string, index: int) -> Stats",
        "Worker `index` (in spawn order) of cgroup `cgroup`.",
        |_: &mut Results, cgroup: &str, i: i64| -> RhaiResult<StatsScope> {
            Ok(StatsScope(Scope::Worker {
                cgroup: cgroup.into(),
                index: count("worker index", i)?,
            }))
        },
    );
    def(
        engine,
        "payload(stats: &mut Stats, name: string) -> Metric",
        "Metric `name` its payload reported about itself (`bogo_ops_per_s`,\n`iops`, `time_s`, `max_us`, ...), summed over the scope's workers.",
        |s: &mut StatsScope, name: &str| -> RhaiResult<Metric> {
            if name.is_empty() {
                return fail("a payload metric needs a name");
            }
            Ok(Metric(MetricExpr::Metric {
                scope: s.0.clone(),
                name: format!("{}{name}", ktstr_plan::claims::PAYLOAD_METRIC_PREFIX),
            }))
        },
    );
    for (name, doc) in METRICS {
        def(
            engine,
            &format!("get${name}(stats: &mut Stats) -> Metric"),
            doc,
            move |s: &mut StatsScope| -> RhaiResult<Metric> {
                if name == "spread" && matches!(s.0, Scope::Worker { .. }) {
                    return fail("spread compares the workers of a cgroup; one worker has none");
                }
                Ok(Metric(MetricExpr::Metric {
                    scope: s.0.clone(),
                    name: name.into(),
                }))
            },
        );
    }
}

fn register_arithmetic(engine: &mut Engine) {
    let doc = "Arithmetic on metrics, computed once the run is over.";
    for op in ['+', '-', '*', '/'] {
        let sig = |a: &str, b: &str| format!("{op}(a: {a}, b: {b}) -> Metric");
        def(
            engine,
            &sig("Metric", "Metric"),
            doc,
            move |a: Metric, b: Metric| binary(op, a.0, b.0),
        );
        def(
            engine,
            &sig("Metric", "float"),
            doc,
            move |a: Metric, b: f64| binary(op, a.0, constant(b)?),
        );
        def(
            engine,
            &sig("float", "Metric"),
            doc,
            move |a: f64, b: Metric| binary(op, constant(a)?, b.0),
        );
        def(
            engine,
            &sig("Metric", "int"),
            doc,
            move |a: Metric, b: i64| binary(op, a.0, constant(b as f64)?),
        );
        def(
            engine,
            &sig("int", "Metric"),
            doc,
            move |a: i64, b: Metric| binary(op, constant(a as f64)?, b.0),
        );
    }
}

fn register_predicates(engine: &mut Engine) {
    let doc = "Passes when the value is at most `limit`.";
    def(
        engine,
        "at_most(limit: float) -> Predicate",
        doc,
        |v: f64| predicate(P::AtMost { limit: v }),
    );
    def(engine, "at_most(limit: int) -> Predicate", doc, |v: i64| {
        predicate(P::AtMost { limit: v as f64 })
    });
    let doc = "Passes when the value is at least `limit`.";
    def(
        engine,
        "at_least(limit: float) -> Predicate",
        doc,
        |v: f64| predicate(P::AtLeast { limit: v }),
    );
    def(
        engine,
        "at_least(limit: int) -> Predicate",
        doc,
        |v: i64| predicate(P::AtLeast { limit: v as f64 }),
    );
    let doc = "Passes when the value equals `expected` (within 1e-9 relative).";
    def(engine, "eq(expected: float) -> Predicate", doc, |v: f64| {
        predicate(P::Eq { expected: v })
    });
    def(engine, "eq(expected: int) -> Predicate", doc, |v: i64| {
        predicate(P::Eq { expected: v as f64 })
    });
    def(
        engine,
        "is_finite() -> Predicate",
        "Passes when the value is a finite number.",
        || Predicate(P::IsFinite),
    );
    let doc = "Passes when `lo` <= value <= `hi`.";
    def(
        engine,
        "between(lo: float, hi: float) -> Predicate",
        doc,
        |lo: f64, hi: f64| between(lo, hi),
    );
    def(
        engine,
        "between(lo: int, hi: int) -> Predicate",
        doc,
        |lo: i64, hi: i64| between(lo as f64, hi as f64),
    );
    def(
        engine,
        "between(lo: int, hi: float) -> Predicate",
        doc,
        |lo: i64, hi: f64| between(lo as f64, hi),
    );
    def(
        engine,
        "between(lo: float, hi: int) -> Predicate",
        doc,
        |lo: f64, hi: i64| between(lo, hi as f64),
    );
}

fn between(lo: f64, hi: f64) -> RhaiResult<Predicate> {
    predicate(P::Between { lo, hi })
}

/// `p`, unless its bounds are NaN, infinite or reversed.
fn predicate(p: P) -> RhaiResult<Predicate> {
    match p.problem() {
        Some(why) => fail(why),
        None => Ok(Predicate(p)),
    }
}

/// The text between the parentheses of the call at (line, col) in
/// `source`, whitespace collapsed: the claim's label.
pub(crate) fn call_text(source: &str, line: usize, col: usize) -> Option<String> {
    let line_start: usize = source
        .split_inclusive('\n')
        .take(line.checked_sub(1)?)
        .map(str::len)
        .sum();
    let start = line_start
        + source[line_start..]
            .char_indices()
            .nth(col.checked_sub(1)?)?
            .0;
    let rest = &source[start..];
    let open = rest.find('(')?;
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    for (i, ch) in rest[open..].char_indices() {
        if in_str {
            match (escaped, ch) {
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => escaped = false,
            }
            continue;
        }
        match ch {
            '"' => in_str = true,
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    let inner = &rest[open + 1..open + i];
                    return Some(inner.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::call_text;

    #[test]
    fn labels_are_cut_from_the_source() {
        let src = "let r = results();\n  claim(r.cgroup(\"a)\").spread,\n   at_most(15.0));\n";
        assert_eq!(
            call_text(src, 2, 3).as_deref(),
            Some("r.cgroup(\"a)\").spread, at_most(15.0)")
        );
        assert_eq!(call_text(src, 9, 1), None);
    }
}
