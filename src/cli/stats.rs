//! `ktstr stats`: summaries, import and merge of datasets, the metric
//! registry, A/B compare (exit 1 on a regression), noise and the HTML
//! report. The work is in `ktstr-stats`; this file parses and prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Subcommand};

use ktstr_stats::compare::{compare_selections, Gate, Options};
use ktstr_stats::noise::{noise_of, NoiseGates};
use ktstr_stats::select::{self, Filter};
use ktstr_stats::{metrics, runs, summary, Dataset};

use super::run::runs_dir;
use super::stats_view as view;

/// `ktstr stats [COMMAND]`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    #[command(subcommand)]
    command: Option<StatsCommand>,
    /// Print JSON (for the summary of the newest run).
    #[arg(long)]
    json: bool,
}

/// Stats subcommands.
#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// Runs that have a dataset, oldest first.
    List(JsonArg),
    /// One run's jobs, outcomes and metric medians by cell.
    Show(ShowArgs),
    /// The metric registry: unit, direction, gates.
    Metrics(JsonArg),
    /// Make a dataset of the sidecars under DIR.
    Import(ImportArgs),
    /// Union datasets (shards, machines) into one.
    Merge(MergeArgs),
    /// Compare two runs, or two selections of one dataset (exit 1 when a
    /// metric regressed).
    Compare(CompareArgs),
    /// Run-to-run noise of each metric per cell (an A/A run).
    Noise(NoiseArgs),
    /// Write a self-contained HTML report of a run.
    Report(ReportArgs),
}

/// Just `--json`.
#[derive(Debug, Args)]
pub struct JsonArg {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `stats show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// A run id, `newest`, or a dataset directory.
    #[arg(default_value = "newest")]
    run: String,
    /// Columns that make a cell (default scenario,preset,scheduler,kernel).
    #[arg(long, value_delimiter = ',')]
    by: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `stats import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A directory of sidecars (searched at any depth).
    dir: PathBuf,
    /// Where the dataset goes (default: DIR/stats).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `stats merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Datasets (run ids or directories).
    #[arg(required = true, num_args = 2..)]
    datasets: Vec<String>,
    /// Where the union goes.
    #[arg(short, long)]
    out: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `stats compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// A: a run id, `newest`, a dataset directory, or filters over the
    /// `--in` dataset (`scheduler=scx_simple`, `kernel^=6.12`).
    a: String,
    /// B: the same kinds as A.
    b: String,
    /// The dataset that filter sides select from (default: newest).
    #[arg(long = "in", value_name = "RUN")]
    within: Option<String>,
    /// Columns that make a cell (default scenario,preset,scheduler,kernel,
    /// less the columns the filters set).
    #[arg(long, value_delimiter = ',')]
    by: Vec<String>,
    /// Metrics to compare (default: all).
    #[arg(long = "metric")]
    metrics: Vec<String>,
    /// Test level, after Benjamini-Hochberg.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Gates of a metric: NAME=ABS,REL (REL a fraction: 0.1 is 10%).
    #[arg(long = "gate", value_name = "NAME=ABS,REL")]
    gates: Vec<String>,
    /// Gates from a noise run (an A/A run): twice its spread per cell.
    #[arg(long, value_name = "RUN")]
    gates_from: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `stats noise`.
#[derive(Debug, Args)]
pub struct NoiseArgs {
    /// A run id, `newest`, or a dataset directory.
    #[arg(default_value = "newest")]
    run: String,
    /// Columns that make a cell.
    #[arg(long, value_delimiter = ',')]
    by: Vec<String>,
    /// Metrics (default: all).
    #[arg(long = "metric")]
    metrics: Vec<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `stats report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run id, `newest`, or a dataset directory.
    #[arg(default_value = "newest")]
    run: String,
    /// Another run to compare the run against (it is B, the other A).
    #[arg(long, value_name = "RUN")]
    compare: Option<String>,
    /// The HTML file to write.
    #[arg(long, value_name = "FILE")]
    html: PathBuf,
    /// Print JSON (the plots drawn).
    #[arg(long)]
    json: bool,
}

/// Runs `ktstr stats`.
pub fn run(args: StatsArgs) -> anyhow::Result<ExitCode> {
    let runs = runs_dir();
    match args.command {
        None => show(
            &ShowArgs {
                run: "newest".into(),
                by: vec![],
                json: args.json,
            },
            &runs,
        ),
        Some(StatsCommand::List(a)) => view::list(&runs::list(&runs), a.json),
        Some(StatsCommand::Show(a)) => show(&a, &runs),
        Some(StatsCommand::Metrics(a)) => view::metrics(a.json),
        Some(StatsCommand::Import(a)) => import(&a),
        Some(StatsCommand::Merge(a)) => merge(&a, &runs),
        Some(StatsCommand::Compare(a)) => compare(&a, &runs),
        Some(StatsCommand::Noise(a)) => noise(&a, &runs),
        Some(StatsCommand::Report(a)) => report(&a, &runs),
    }
}

/// Writes the dataset of a finished run; a failure is a warning (the run
/// itself stands).
pub fn save_run_dataset(run_dir: &Path) {
    if !run_dir.is_dir() {
        return;
    }
    match runs::write_run_dataset(run_dir) {
        Ok(d) => {
            errln!("dataset: {}", d.dir.display());
        }
        Err(e) => {
            errln!("warning: no dataset for this run: {e}");
        }
    }
}

/// Opens the dataset `spec` names.
fn open(spec: &str, runs: &Path) -> anyhow::Result<Dataset> {
    let dir = runs::resolve(spec, runs)?;
    Ok(Dataset::open(&dir)?)
}

fn show(a: &ShowArgs, runs: &Path) -> anyhow::Result<ExitCode> {
    let d = open(&a.run, runs)?;
    let by = select::parse_by(&a.by)?;
    let rows = summary::summarize(&d.tables, &by)?;
    view::summary(&d, &rows, a.json)
}

fn import(a: &ImportArgs) -> anyhow::Result<ExitCode> {
    let tables = Dataset::tables_of_sidecars(&a.dir)?;
    let out = a.out.clone().unwrap_or_else(|| a.dir.join(runs::STATS_DIR));
    let d = Dataset::write(&out, tables)?;
    view::written(&d, a.json)
}

fn merge(a: &MergeArgs, runs: &Path) -> anyhow::Result<ExitCode> {
    let sets: Vec<Dataset> = a
        .datasets
        .iter()
        .map(|s| open(s, runs))
        .collect::<anyhow::Result<_>>()?;
    let tables = Dataset::merge(&sets)?;
    let d = Dataset::write(&a.out, tables)?;
    view::written(&d, a.json)
}

/// One side of a compare: its dataset, its filters and its label.
fn side(
    spec: &str,
    within: Option<&str>,
    runs: &Path,
) -> anyhow::Result<(Dataset, Vec<Filter>, String)> {
    if select::is_filter(spec) {
        let filters = select::parse_filters(spec)?;
        let d = open(within.unwrap_or("newest"), runs)?;
        Ok((d, filters, spec.to_string()))
    } else {
        Ok((open(spec, runs)?, vec![], spec.to_string()))
    }
}

/// `NAME=ABS,REL` gates.
fn parse_gates(items: &[String]) -> anyhow::Result<BTreeMap<String, Gate>> {
    let mut out = BTreeMap::new();
    for g in items {
        let parsed = g.split_once('=').and_then(|(name, v)| {
            let (abs, rel) = v.split_once(',')?;
            Some((
                name.trim(),
                abs.trim().parse::<f64>().ok()?,
                rel.trim().parse::<f64>().ok()?,
            ))
        });
        let Some((name, abs, rel)) =
            parsed.filter(|(_, a, r)| a.is_finite() && *a >= 0.0 && r.is_finite() && *r >= 0.0)
        else {
            anyhow::bail!("--gate {g}: expected NAME=ABS,REL with two numbers >= 0 (REL a fraction: 0.1 is 10%)");
        };
        metrics::metric(name)?;
        out.insert(name.to_string(), Gate { abs, rel });
    }
    Ok(out)
}

fn compare(a: &CompareArgs, runs: &Path) -> anyhow::Result<ExitCode> {
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        anyhow::bail!("--alpha {}: must be between 0 and 1", a.alpha);
    }
    let within = a.within.as_deref();
    let (da, fa, la) = side(&a.a, within, runs)?;
    let (db, fb, lb) = side(&a.b, within, runs)?;
    // The columns the filters set are what differs, not part of a cell.
    let set: Vec<&str> = fa.iter().chain(&fb).map(|f| f.column.as_str()).collect();
    let by: Vec<String> = select::parse_by(&a.by)?
        .into_iter()
        .filter(|c| !set.contains(&c.as_str()))
        .collect();
    let chosen = metrics::chosen(&a.metrics)?;
    let noise = match &a.gates_from {
        Some(run) => {
            let d = open(run, runs)?;
            Some(NoiseGates::new(noise_of(&d.tables, &by, &chosen)?))
        }
        None => None,
    };
    let opts = Options {
        gates: parse_gates(&a.gates)?,
        noise,
        alpha: a.alpha,
        ..Options::new(by, chosen)
    };
    let rows = compare_selections((&da.tables, &fa), (&db.tables, &fb), &opts)
        .with_context(|| format!("comparing {la} with {lb}"))?;
    view::comparison(&la, &lb, &opts, &rows, a.json)?;
    Ok(if rows.iter().any(|r| r.regression) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn noise(a: &NoiseArgs, runs: &Path) -> anyhow::Result<ExitCode> {
    let d = open(&a.run, runs)?;
    let by = select::parse_by(&a.by)?;
    let chosen = metrics::chosen(&a.metrics)?;
    let rows = noise_of(&d.tables, &by, &chosen)?;
    if rows.is_empty() {
        anyhow::bail!(
            "{}: no cell has two repetitions to measure noise from (run with --repeat or repetitions in the manifest)",
            d.dir.display()
        );
    }
    view::noise(&rows, a.json)
}

fn report(a: &ReportArgs, runs: &Path) -> anyhow::Result<ExitCode> {
    let d = open(&a.run, runs)?;
    let compared = match &a.compare {
        Some(other) => {
            let base = open(other, runs)?;
            let opts = Options::new(select::parse_by(&[])?, metrics::chosen(&[])?);
            let rows = compare_selections((&base.tables, &[]), (&d.tables, &[]), &opts)?;
            Some((other.clone(), rows))
        }
        None => None,
    };
    let title = format!("ktstr report: {}", d.manifest.runs.join(", "));
    let r = ktstr_stats::report::render(
        &title,
        &d.tables,
        compared
            .as_ref()
            .map(|(n, rows)| (n.as_str(), rows.as_slice())),
    )?;
    std::fs::write(&a.html, &r.html).with_context(|| format!("writing {}", a.html.display()))?;
    view::report(&a.html, &r, a.json)
}
