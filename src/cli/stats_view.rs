//! How `ktstr stats` prints: plain tables, or JSON with `--json`.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use ktstr_stats::compare::{cell_label, Basis, Finding, Options, Row};
use ktstr_stats::metrics::METRICS;
use ktstr_stats::noise::NoiseRow;
use ktstr_stats::report::Report;
use ktstr_stats::runs::RunEntry;
use ktstr_stats::summary::SummaryRow;
use ktstr_stats::Dataset;

/// `stats list`.
pub fn list(runs: &[RunEntry], as_json: bool) -> anyhow::Result<ExitCode> {
    if as_json {
        outln!("{}", serde_json::to_string_pretty(runs)?)?;
    } else if runs.is_empty() {
        outln!("no runs with a dataset yet (ktstr run and ktstr gauntlet write one)")?;
    } else {
        for r in runs {
            outln!("{:<24} {:>5} jobs  {}", r.id, r.jobs, r.dataset.display())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `stats metrics`.
pub fn metrics(as_json: bool) -> anyhow::Result<ExitCode> {
    if as_json {
        outln!("{}", serde_json::to_string_pretty(METRICS)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{:<14} {:<7} {:<7} {:>9} {:>6}  what",
        "metric",
        "unit",
        "better",
        "abs gate",
        "rel"
    )?;
    for m in METRICS {
        outln!(
            "{:<14} {:<7} {:<7} {:>9} {:>5.0}%  {}",
            m.name,
            m.unit,
            m.direction.arrow(),
            m.abs_gate,
            m.rel_gate * 100.0,
            m.doc
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A dataset written by import or merge.
pub fn written(d: &Dataset, as_json: bool) -> anyhow::Result<ExitCode> {
    if as_json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"dataset": d.dir, "manifest": d.manifest}))?
        )?;
    } else {
        let rows: Vec<String> = d
            .manifest
            .rows
            .iter()
            .map(|(t, n)| format!("{n} {t}"))
            .collect();
        outln!(
            "{}: {} (runs {})",
            d.dir.display(),
            rows.join(", "),
            d.manifest.runs.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A value with its unit, or `-`.
fn value(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// `stats` and `stats show`.
pub fn summary(d: &Dataset, rows: &[SummaryRow], as_json: bool) -> anyhow::Result<ExitCode> {
    if as_json {
        outln!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"dataset": d.dir, "runs": d.manifest.runs, "cells": rows})
            )?
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("{} (runs {})", d.dir.display(), d.manifest.runs.join(", "))?;
    let shown = ["throughput", "wake_p99_us", "max_gap_ms", "run_delay_ms"];
    outln!(
        "{:<52} {:>4} {:>4} {:>4}  {}",
        "cell",
        "jobs",
        "pass",
        "fail",
        shown.map(|m| format!("{m:>12}")).join(" ")
    )?;
    for r in rows {
        let medians = shown.map(|m| format!("{:>12}", value(r.medians.get(m).copied().flatten())));
        outln!(
            "{:<52} {:>4} {:>4} {:>4}  {}",
            cell_label(&r.cell),
            r.jobs,
            r.passed,
            r.failed,
            medians.join(" ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `stats compare`.
pub fn comparison(
    a: &str,
    b: &str,
    opts: &Options,
    rows: &[Row],
    as_json: bool,
) -> anyhow::Result<()> {
    let count = |f: Finding| rows.iter().filter(|r| r.finding == f).count();
    let regressions = rows.iter().filter(|r| r.regression).count();
    if as_json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "a": a, "b": b, "by": opts.by, "alpha": opts.alpha,
                "same": count(Finding::Same), "different": count(Finding::Different),
                "unknown": count(Finding::Unknown), "regressions": regressions,
                "rows": rows,
            }))?
        )?;
        return Ok(());
    }
    outln!("A = {a}, B = {b}; cells by {}", opts.by.join(","))?;
    for r in rows {
        let rel = r
            .relative
            .map_or(String::new(), |x| format!(" ({:+.1}%)", x * 100.0));
        let basis = match (r.basis, r.finding) {
            (Basis::GatesOnly, _) => {
                " [gates only: one repetition a side, no test possible]".to_string()
            }
            (_, Finding::Unknown) => r.repetitions_needed.map_or(String::new(), |n| {
                format!(" [run more repetitions: about {n} a side]")
            }),
            _ => String::new(),
        };
        outln!(
            "{:<9} {:<40} {:<13} A {:>10} B {:>10} {}{rel} {}  q={} power={}{}{basis}",
            r.finding.label(),
            cell_label(&r.cell),
            r.metric,
            format!("{:.1}", r.a.median),
            format!("{:.1}", r.b.median),
            r.unit,
            format!("{:+.1}", r.delta),
            r.q_mann_whitney.map_or("-".into(), |q| format!("{q:.3}")),
            r.power.map_or("-".into(), |p| format!("{p:.2}")),
            if r.regression { " REGRESSION" } else { "" },
        )?;
    }
    outln!(
        "{} compared: {} SAME, {} DIFFERENT ({regressions} regression(s)), {} UNKNOWN",
        rows.len(),
        count(Finding::Same),
        count(Finding::Different),
        count(Finding::Unknown)
    )?;
    Ok(())
}

/// `stats noise`.
pub fn noise(rows: &[NoiseRow], as_json: bool) -> anyhow::Result<ExitCode> {
    if as_json {
        outln!("{}", serde_json::to_string_pretty(rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for r in rows {
        outln!(
            "{:<40} {:<13} n={:<3} median {:>10.1} {:<6} sd {:>9.1}  cv {}",
            cell_label(&r.cell),
            r.metric,
            r.n,
            r.median,
            r.unit,
            r.sd,
            r.cv.map_or("-".into(), |c| format!("{:.1}%", c * 100.0))
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `stats report`.
pub fn report(path: &Path, r: &Report, as_json: bool) -> anyhow::Result<ExitCode> {
    if as_json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({"html": path, "plots": r.plots}))?
        )?;
    } else {
        outln!(
            "{}: {} plots; open it in a browser (file://{})",
            path.display(),
            r.plots.len(),
            std::fs::canonicalize(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
