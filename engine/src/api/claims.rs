//! results(), metrics, arithmetic on them, predicates and claim().

use rhai::{Engine, NativeCallContext};

use super::{count, fail, Ctx, RhaiResult};
use crate::backend::Action;
use crate::claims::{Claim, MetricExpr, Predicate as P, Scope, MAX_EXPR_DEPTH, METRICS};

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
    engine.register_fn("results", || Results);
    engine.register_fn("all", |_: &mut Results| StatsScope(Scope::All));
    engine.register_fn("cgroup", |_: &mut Results, name: &str| {
        StatsScope(Scope::Cgroup { name: name.into() })
    });
    engine.register_fn("worker", |_: &mut Results, cgroup: &str, i: i64| {
        Ok::<_, Box<rhai::EvalAltResult>>(StatsScope(Scope::Worker {
            cgroup: cgroup.into(),
            index: count("worker index", i)?,
        }))
    });
    for name in METRICS {
        engine.register_get(name, move |s: &mut StatsScope| -> RhaiResult<Metric> {
            if name == "spread" && matches!(s.0, Scope::Worker { .. }) {
                return fail("spread compares the workers of a cgroup; one worker has none");
            }
            Ok(Metric(MetricExpr::Metric {
                scope: s.0.clone(),
                name: name.into(),
            }))
        });
    }
    register_arithmetic(engine);
    register_predicates(engine);
    let c = ctx.clone();
    engine.register_fn(
        "claim",
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

fn register_arithmetic(engine: &mut Engine) {
    for op in ['+', '-', '*', '/'] {
        let name = op.to_string();
        engine.register_fn(&name, move |a: Metric, b: Metric| binary(op, a.0, b.0));
        engine.register_fn(&name, move |a: Metric, b: f64| {
            binary(op, a.0, constant(b)?)
        });
        engine.register_fn(&name, move |a: f64, b: Metric| {
            binary(op, constant(a)?, b.0)
        });
        engine.register_fn(&name, move |a: Metric, b: i64| {
            binary(op, a.0, constant(b as f64)?)
        });
        engine.register_fn(&name, move |a: i64, b: Metric| {
            binary(op, constant(a as f64)?, b.0)
        });
    }
}

fn register_predicates(engine: &mut Engine) {
    engine.register_fn("at_most", |v: f64| predicate(P::AtMost { limit: v }));
    engine.register_fn("at_most", |v: i64| predicate(P::AtMost { limit: v as f64 }));
    engine.register_fn("at_least", |v: f64| predicate(P::AtLeast { limit: v }));
    engine.register_fn("at_least", |v: i64| {
        predicate(P::AtLeast { limit: v as f64 })
    });
    engine.register_fn("eq", |v: f64| predicate(P::Eq { expected: v }));
    engine.register_fn("eq", |v: i64| predicate(P::Eq { expected: v as f64 }));
    engine.register_fn("is_finite", || Predicate(P::IsFinite));
    engine.register_fn("between", |lo: f64, hi: f64| between(lo, hi));
    engine.register_fn("between", |lo: i64, hi: i64| between(lo as f64, hi as f64));
    engine.register_fn("between", |lo: i64, hi: f64| between(lo as f64, hi));
    engine.register_fn("between", |lo: f64, hi: i64| between(lo, hi as f64));
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
