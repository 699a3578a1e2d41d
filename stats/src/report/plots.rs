//! The report's plots, drawn with plotters as inline SVG: the outcome
//! matrix, progress over time, distributions as box plots, and a
//! compare's changes with their 95% intervals.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::data::{Matrix, Progress};
use crate::compare::{Finding, Row};
use crate::error::StatsError;

/// Width of every plot, px.
pub const WIDTH: u32 = 620;

/// Colours of the series and verdicts.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];
const PASS: RGBColor = RGBColor(46, 160, 67);
const FAIL: RGBColor = RGBColor(207, 34, 46);
const SKIP: RGBColor = RGBColor(150, 150, 150);
const AMBER: RGBColor = RGBColor(212, 160, 23);
const SAME: RGBColor = RGBColor(70, 130, 180);

/// Runs `draw` on an SVG canvas of `height` px and returns the SVG.
fn svg<F>(name: &str, height: u32, draw: F) -> Result<String, StatsError>
where
    F: FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<(), String>,
{
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| plot_error(name, e.to_string()))?;
        draw(&root).map_err(|e| plot_error(name, e))?;
        root.present()
            .map_err(|e| plot_error(name, e.to_string()))?;
    }
    Ok(out)
}

/// A plot error.
fn plot_error(plot: &str, reason: String) -> StatsError {
    StatsError::Plot {
        plot: plot.to_string(),
        reason,
    }
}

/// `label` shortened to `n` characters.
fn short(label: &str, n: usize) -> String {
    if label.chars().count() <= n {
        label.to_string()
    } else {
        let s: String = label.chars().take(n.saturating_sub(1)).collect();
        format!("{s}…")
    }
}

/// The label of category `v` of `names`.
fn category(names: &[String], v: &SegmentValue<i32>, n: usize) -> String {
    match v {
        SegmentValue::CenterOf(i) => names
            .get(*i as usize)
            .map(|s| short(s, n))
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The outcome matrix: green all passed, red some failed, grey skipped.
pub fn matrix(m: &Matrix) -> Result<String, StatsError> {
    let height = 120 + 28 * m.rows.len() as u32;
    svg("the matrix", height, |root| {
        let (nc, nr) = (m.columns.len().max(1) as i32, m.rows.len().max(1) as i32);
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Outcome by scenario, preset and scheduler",
                ("sans-serif", 16),
            )
            .margin(8)
            .x_label_area_size(60)
            .y_label_area_size(110)
            .build_cartesian_2d((0..nc).into_segmented(), (0..nr).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(nc as usize)
            .y_labels(nr as usize)
            .x_label_formatter(&|v| category(&m.columns, v, 18))
            .y_label_formatter(&|v| category(&m.rows, v, 16))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(m.cells.iter().map(|(&(r, c), cell)| {
                let colour = if cell.skipped == cell.jobs {
                    SKIP
                } else if cell.passed + cell.skipped == cell.jobs {
                    PASS
                } else {
                    FAIL
                };
                let (c, r) = (c as i32, r as i32);
                Rectangle::new(
                    [
                        (SegmentValue::Exact(c), SegmentValue::Exact(r)),
                        (SegmentValue::Exact(c + 1), SegmentValue::Exact(r + 1)),
                    ],
                    colour.filled(),
                )
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(m.cells.iter().map(|(&(r, c), cell)| {
                Text::new(
                    format!("{}/{}", cell.passed, cell.jobs),
                    (
                        SegmentValue::CenterOf(c as i32),
                        SegmentValue::CenterOf(r as i32),
                    ),
                    ("sans-serif", 13).into_font().color(&WHITE),
                )
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// One job's progress rate per cgroup over time.
pub fn progress(p: &Progress) -> Result<String, StatsError> {
    svg("progress", 300, |root| {
        let points = p.series.values().flatten();
        let (tmax, ymax) = points.fold((0.0_f64, 0.0_f64), |(t, y), (a, b)| (t.max(*a), y.max(*b)));
        let mut chart = ChartBuilder::on(root)
            .caption(short(&p.title, 70), ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..tmax.max(0.001) * 1.02, 0.0..ymax.max(1.0) * 1.1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc("iterations/s")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, (cgroup, series)) in p.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    series.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(cgroup.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Box plots of `cells`' values (one box per cell).
pub fn boxes(title: &str, unit: &str, cells: &[(String, Vec<f64>)]) -> Result<String, StatsError> {
    let height = 140 + 22 * cells.len() as u32;
    svg(title, height, |root| {
        let names: Vec<String> = cells.iter().map(|(n, _)| n.clone()).collect();
        let xmax = cells
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .fold(0.0_f64, f64::max) as f32;
        let n = cells.len().max(1) as i32;
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(200)
            .build_cartesian_2d(0.0f32..xmax.max(1.0) * 1.05, (0..n).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(unit)
            .y_labels(n as usize)
            .y_label_formatter(&|v| category(&names, v, 30))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(cells.iter().enumerate().map(|(i, (_, v))| {
                let colour = PALETTE[i % PALETTE.len()];
                Boxplot::new_horizontal(SegmentValue::CenterOf(i as i32), &Quartiles::new(v))
                    .width(12)
                    .style(colour.stroke_width(2))
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A compare's rows: the change relative to A's median, with Welch's 95%
/// interval, coloured by finding (red regression, green improvement,
/// blue SAME, amber UNKNOWN).
pub fn deltas(rows: &[Row]) -> Result<String, StatsError> {
    let height = 120 + 22 * rows.len() as u32;
    svg("the compare", height, |root| {
        let pct = |v: f64, r: &Row| v / r.a.median.abs().max(f64::MIN_POSITIVE) * 100.0;
        let spans: Vec<(f64, f64, f64)> = rows
            .iter()
            .map(|r| {
                let mid = pct(r.delta, r);
                let (lo, hi) = r
                    .ci95
                    .map_or((mid, mid), |(lo, hi)| (pct(lo, r), pct(hi, r)));
                (lo.min(mid), mid, hi.max(mid))
            })
            .collect();
        let reach = spans
            .iter()
            .map(|(lo, _, hi)| lo.abs().max(hi.abs()))
            .filter(|v| v.is_finite())
            .fold(5.0_f64, f64::max)
            .min(1000.0);
        let names: Vec<String> = rows
            .iter()
            .map(|r| format!("{} {}", r.metric, r.cell_label()))
            .collect();
        let n = rows.len().max(1) as i32;
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Change of B against A (% of A's median, 95% interval)",
                ("sans-serif", 15),
            )
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(220)
            .build_cartesian_2d(-reach * 1.1..reach * 1.1, (0..n).into_segmented())
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("%")
            .y_labels(n as usize)
            .y_label_formatter(&|v| category(&names, v, 34))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                rows.iter()
                    .zip(&spans)
                    .enumerate()
                    .map(|(i, (r, (lo, mid, hi)))| {
                        let colour = match (r.finding, r.regression) {
                            (Finding::Different, true) => FAIL,
                            (Finding::Different, false) => PASS,
                            (Finding::Same, _) => SAME,
                            (Finding::Unknown, _) => AMBER,
                        };
                        let clamp = |v: f64| v.clamp(-reach * 1.1, reach * 1.1);
                        ErrorBar::new_horizontal(
                            SegmentValue::CenterOf(i as i32),
                            clamp(*lo),
                            clamp(*mid),
                            clamp(*hi),
                            colour.filled().stroke_width(3),
                            10,
                        )
                    }),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}
