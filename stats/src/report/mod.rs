//! The HTML report: one self-contained file (inline SVG, inline CSS, no
//! script, nothing fetched) with the outcome matrix, each job's progress
//! per cgroup, the distributions of gap and wake latency per cell, and
//! for a compare the changes with their intervals and a table of
//! findings.

pub mod data;
pub mod plots;

use serde::Serialize;

use crate::compare::Row;
use crate::error::StatsError;
use crate::tables::Tables;

/// The most jobs whose progress is drawn.
pub const MAX_PROGRESS_PLOTS: usize = 12;

/// The border colour of every figure: a colour nothing else uses, so that
/// a screenshot can find the figures.
pub const FIGURE_BORDER: (u8, u8, u8) = (10, 20, 30);

/// One plot of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlotInfo {
    /// Its element id.
    pub id: String,
    /// Its title.
    pub title: String,
}

/// A rendered report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The page.
    #[serde(skip)]
    pub html: String,
    /// Its plots, in page order.
    pub plots: Vec<PlotInfo>,
}

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Builds the report of `tables` (titled `title`), with `compare` rows when
/// given (`against` names the other side).
pub fn render(
    title: &str,
    tables: &Tables,
    compare: Option<(&str, &[Row])>,
) -> Result<Report, StatsError> {
    let mut figures: Vec<(PlotInfo, String)> = Vec::new();
    let mut add = |id: String, title: String, svg: String| {
        figures.push((PlotInfo { id, title }, svg));
    };
    if let Some((against, rows)) = compare {
        add(
            "compare".into(),
            format!("Changes against {against}"),
            plots::deltas(rows)?,
        );
    }
    let m = data::matrix(tables)?;
    if !m.cells.is_empty() {
        add("matrix".into(), "Outcome matrix".into(), plots::matrix(&m)?);
    }
    for (column, name, unit) in [
        ("max_gap_ms", "Longest gap per worker", "ms"),
        (
            "wake_p99_us",
            "99th-percentile wake latency per worker",
            "us",
        ),
    ] {
        let cells = data::distribution(tables, column)?;
        if !cells.is_empty() {
            add(
                format!("dist-{column}"),
                name.into(),
                plots::boxes(name, unit, &cells)?,
            );
        }
    }
    for (i, p) in data::progress(tables, MAX_PROGRESS_PLOTS)?
        .iter()
        .enumerate()
    {
        add(
            format!("progress-{i}"),
            format!("Progress: {}", p.title),
            plots::progress(p)?,
        );
    }
    let table = compare
        .map(|(_, rows)| findings_table(rows))
        .unwrap_or_default();
    Ok(page(title, figures, &table))
}

/// The page around the figures.
fn page(title: &str, figures: Vec<(PlotInfo, String)>, table: &str) -> Report {
    let (r, g, b) = FIGURE_BORDER;
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t}</title><style>\
         body{{font-family:sans-serif;margin:16px;background:#fff;color:#222}}\
         .grid{{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}}\
         figure{{margin:0;border:3px solid rgb({r},{g},{b});padding:4px;width:{w}px}}\
         figcaption{{font-size:13px;margin-bottom:4px}}\
         table{{border-collapse:collapse;font-size:13px;margin-top:16px}}\
         td,th{{border:1px solid #ccc;padding:2px 6px}}\
         </style></head><body><h1>{t}</h1><div class=\"grid\">\n",
        t = escape(title),
        w = plots::WIDTH,
    );
    let mut infos = Vec::new();
    for (info, svg) in figures {
        html.push_str(&format!(
            "<figure id=\"{}\"><figcaption>{}</figcaption>{svg}</figure>\n",
            escape(&info.id),
            escape(&info.title)
        ));
        infos.push(info);
    }
    html.push_str("</div>\n");
    html.push_str(table);
    html.push_str("</body></html>\n");
    Report { html, plots: infos }
}

/// The findings of a compare as an HTML table.
fn findings_table(rows: &[Row]) -> String {
    let mut s = String::from(
        "<table><tr><th>cell</th><th>metric</th><th>A median</th><th>B median</th>\
         <th>change</th><th>q (Mann-Whitney, BH)</th><th>p (Welch)</th><th>finding</th></tr>\n",
    );
    for r in rows {
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        s.push_str(&format!(
            "<tr><td>{}</td><td>{} ({})</td><td>{:.1}</td><td>{:.1}</td><td>{:+.1}</td>\
             <td>{}</td><td>{}</td><td>{}{}</td></tr>\n",
            escape(&r.cell_label()),
            r.metric,
            r.unit,
            r.a.median,
            r.b.median,
            r.delta,
            opt(r.q_mann_whitney),
            opt(r.p_welch),
            r.finding.label(),
            if r.regression { " (regression)" } else { "" }
        ));
    }
    s.push_str("</table>\n");
    s
}
