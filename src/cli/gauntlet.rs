//! `ktstr gauntlet`: a sweep of scenarios × topologies × schedulers ×
//! kernels from a manifest, in parallel, with a matrix, JUnit and a report
//! to rerun what failed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use ktstr_engine::{check_file, Checked};
use ktstr_kernel::BootKernel;
use ktstr_plan::Plan;
use ktstr_run::gauntlet::{
    self, manifest, Capacity, GauntletJob, GauntletReport, Manifest, PresetSelection, Selection,
    Shard, Shared,
};
use ktstr_run::Runner;
use ktstr_topology::Topology;
use ktstr_vmm::probe::BackendChoice;
use serde_json::json;

use super::gauntlet_view::View;
use super::progress::Progress;
use super::Manifests;

/// The manifest `--init` writes: the repository's own, commented.
const TEMPLATE: &str = include_str!("../../gauntlet.toml");

/// Arguments of `gauntlet`.
#[derive(Debug, clap::Args)]
pub struct GauntletArgs {
    /// The manifest (default: ./gauntlet.toml).
    #[arg(value_name = "MANIFEST", default_value = "gauntlet.toml")]
    pub manifest: PathBuf,
    /// Write a commented manifest to MANIFEST (it must not exist) and exit.
    #[arg(long)]
    pub init: bool,
    /// Run only shard K of N (a partition stable under reordering).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
    /// Seconds of estimated VM time to fit in (over the manifest's).
    #[arg(long, value_name = "SECS")]
    pub budget: Option<f64>,
    /// VMs at once (over the manifest's).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub jobs: Option<u32>,
    /// Only cells whose `scenario::preset::scheduler::kernel` contains S.
    #[arg(long, value_name = "S")]
    pub filter: Option<String>,
    /// Rerun the cells that failed in the newest gauntlet run.
    #[arg(long)]
    pub rerun_failed: bool,
    /// `all`: every preset instead of the default sweep (when the manifest
    /// names none).
    #[arg(long, value_name = "all")]
    pub presets: Option<String>,
    /// Kernels to sweep (repeatable), over the manifest's.
    #[arg(long, value_name = "ID")]
    pub kernel: Vec<String>,
    /// VM backend (auto, kvm, qemu-kvm, qemu-tcg).
    #[arg(long, default_value = "auto", env = "KTSTR_BACKEND", value_name = "B")]
    pub backend: BackendChoice,
    /// Boot every job cold instead of restoring a snapshot of the booted
    /// guest (taken once per kernel, topology, memory and initramfs).
    #[arg(long)]
    pub no_snapshot: bool,
    /// List the jobs the sweep would run, then exit (no VM boots).
    #[arg(long)]
    pub list: bool,
    /// List the topology presets with their tags, then exit.
    #[arg(long)]
    pub list_presets: bool,
    /// Write JUnit XML (a test case per job) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Machine-readable output (the report as JSON).
    #[arg(long)]
    pub json: bool,
}

/// Runs `ktstr gauntlet`: exit 0 when every job met its expectation, 1
/// when one failed, 130 when interrupted.
pub fn run(args: GauntletArgs, manifests: Manifests) -> anyhow::Result<ExitCode> {
    if args.init {
        return init(&args.manifest);
    }
    if args.list_presets {
        return list_presets(args.json);
    }
    let resolver = super::kernel::resolver(manifests.kernels)?;
    let kernel_known = |id: &str| {
        let id = (id != "default").then_some(id);
        resolver.target(id).map(|_| ()).map_err(|e| e.to_string())
    };
    let lookups = manifest::Lookups {
        scheduler: &super::scripts::scheduler_exists,
        kernel: &kernel_known,
    };
    let mut m = manifest::load(&args.manifest, &lookups).map_err(|errors| {
        for e in &errors {
            errln!("error: {e}");
        }
        anyhow::anyhow!("{} error(s) in {}", errors.len(), args.manifest.display())
    })?;
    widen(&mut m, &args)?;
    for k in &args.kernel {
        kernel_known(k).map_err(|why| anyhow::anyhow!("--kernel {k}: {why}"))?;
    }
    if !args.kernel.is_empty() {
        m.kernels = args.kernel.clone();
    }
    let plans = checked_plans(&m)?;
    let (jobs, unfit) = gauntlet::expand(&m, &plans);
    check_on_topologies(&jobs)?;
    let runs = super::run::runs_dir();
    let rerun = args
        .rerun_failed
        .then(|| failed_last_time(&runs))
        .transpose()?;
    let selection = Selection {
        shard: args.shard,
        filter: args.filter.as_deref(),
        cells: rerun.as_ref(),
        budget: args.budget.or(m.budget),
    };
    let history = gauntlet::budget::history(&runs);
    let (jobs, left_out) = gauntlet::select(jobs, &selection, &history);
    if args.list {
        return list(&jobs, &left_out, args.json);
    }
    let run_id = super::run::run_id();
    let runner = Runner {
        registry: super::sched::registry(manifests.schedulers)?,
        layout: ktstr_kernel::CacheLayout::from_env()?,
        agent: super::guest::guest_agent()?,
        run_dir: runs.join(&run_id),
        run_id: run_id.clone(),
    };
    let kernels = obtain_kernels(&resolver, &jobs)?;
    let mut report = GauntletReport::new(&run_id, &left_out, &unfit);
    for c in &left_out {
        errln!("left out by the budget: {}", c.key());
    }
    let cancel = super::guest::cancel_on_signals()?;
    let kernel = |id: Option<&str>| kernels[&id.map(str::to_string)].clone();
    let shared = Shared {
        runner: &runner,
        kernel: &kernel,
        backend: args.backend,
        snapshot: !args.no_snapshot,
        cancel: Arc::clone(&cancel),
        observer: &Progress::new(),
    };
    let cap = Capacity::of_host(args.jobs.or(m.jobs).map(|n| n as usize));
    let view = View::new(jobs.len());
    gauntlet::run(jobs, cap, &shared, &view, &mut report);
    view.finish();
    finish(&report, &runner.run_dir, &args)
}

/// Writes the template to `path`, refusing to overwrite.
fn init(path: &Path) -> anyhow::Result<ExitCode> {
    if path.exists() {
        bail!(
            "{} exists; --init writes a new manifest only",
            path.display()
        );
    }
    std::fs::write(path, TEMPLATE).with_context(|| format!("writing {}", path.display()))?;
    outln!("wrote {}", path.display())?;
    Ok(ExitCode::SUCCESS)
}

/// `--list-presets`: every preset, its topology, CPUs, tags, and whether
/// the default sweep has it.
fn list_presets(as_json: bool) -> anyhow::Result<ExitCode> {
    use ktstr_topology::presets;
    let rows: Vec<_> = presets::presets()
        .into_iter()
        .map(|(name, t)| {
            json!({"name": name, "topology": t.to_string(), "cpus": t.cpus(),
                   "tags": presets::tags(&t), "default_sweep": presets::in_default_sweep(&t)})
        })
        .collect();
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for r in &rows {
        outln!(
            "{:<20} {:<11} {:>4} CPUs  {:<26} {}",
            r["name"].as_str().unwrap_or(""),
            r["topology"].as_str().unwrap_or(""),
            r["cpus"],
            r["tags"]
                .as_array()
                .map(|t| t
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(","))
                .unwrap_or_default(),
            if r["default_sweep"] == true {
                "default sweep"
            } else {
                ""
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `--presets all` widens a manifest that names no presets.
fn widen(m: &mut Manifest, args: &GauntletArgs) -> anyhow::Result<()> {
    match args.presets.as_deref() {
        None => Ok(()),
        Some("all") if m.presets == PresetSelection::Default => {
            m.presets = PresetSelection::All;
            Ok(())
        }
        Some("all") => Ok(()),
        Some(other) => bail!("--presets takes `all`, not `{other}`"),
    }
}

/// Every scenario of `m`, checked (errors printed; any stops the sweep
/// before a VM boots).
fn checked_plans(m: &Manifest) -> anyhow::Result<Vec<(PathBuf, Plan)>> {
    let opts = super::scripts::options(None);
    let checked: Vec<Checked> = m.scenarios.iter().map(|p| check_file(p, &opts)).collect();
    let bad: Vec<&Checked> = checked.iter().filter(|c| !c.is_clean()).collect();
    for c in &bad {
        err!("{}", c.render());
    }
    if !bad.is_empty() {
        bail!(
            "{} scenario(s) of {} have errors",
            bad.len(),
            m.path.display()
        );
    }
    Ok(m.scenarios
        .iter()
        .cloned()
        .zip(checked.into_iter().filter_map(|c| c.plan))
        .collect())
}

/// Each script checked again on every topology the sweep gives it (its
/// cpusets and affinities must fit each one); selftest jobs have none.
fn check_on_topologies(jobs: &[GauntletJob]) -> anyhow::Result<()> {
    let pairs: BTreeSet<(PathBuf, String)> = jobs
        .iter()
        .filter(|j| j.selftests.is_none())
        .map(|j| (j.script.clone(), j.topology.to_string()))
        .collect();
    let mut errors = 0;
    for (script, t) in pairs {
        let topology: Topology = t.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let c = check_file(&script, &super::scripts::options(Some(topology)));
        if !c.is_clean() {
            errln!("on topology {t}:");
            err!("{}", c.render());
            errors += 1;
        }
    }
    if errors > 0 {
        bail!("{errors} scenario × topology pair(s) have errors");
    }
    Ok(())
}

/// The cells that failed in the newest gauntlet run under `runs`.
fn failed_last_time(runs: &Path) -> anyhow::Result<BTreeSet<gauntlet::CellRecord>> {
    let (path, report) = GauntletReport::newest(runs)
        .with_context(|| format!("--rerun-failed: no gauntlet run under {}", runs.display()))?;
    let failed = report.failed_cells();
    errln!(
        "rerunning {} failed cell(s) of {}",
        failed.len(),
        path.display()
    );
    Ok(failed)
}

/// `--list`: the jobs, one per line (or JSON), and what the budget left out.
fn list(
    jobs: &[GauntletJob],
    left_out: &[gauntlet::Cell],
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    if as_json {
        let v = json!({
            "jobs": jobs.iter().map(|j| json!({
                "key": j.key(), "scenario": j.cell.scenario, "preset": j.cell.preset,
                "topology": j.topology.to_string(), "scheduler": j.cell.scheduler,
                "kernel": j.cell.kernel, "repetition": j.repetition.index,
                "expect_fail": j.expect_fail,
            })).collect::<Vec<_>>(),
            "left_out": left_out.iter().map(gauntlet::Cell::key).collect::<Vec<_>>(),
        });
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for j in jobs {
            outln!("{}", j.key())?;
        }
        for c in left_out {
            outln!("left out: {}", c.key())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every kernel the jobs boot, obtained (built if needed) before any VM.
fn obtain_kernels(
    resolver: &ktstr_kernel::Resolver,
    jobs: &[GauntletJob],
) -> anyhow::Result<BTreeMap<Option<String>, BootKernel>> {
    let ids: BTreeSet<Option<String>> = jobs.iter().map(|j| j.kernel.clone()).collect();
    let mut out = BTreeMap::new();
    for id in ids {
        let k = resolver.obtain(id.as_deref(), &Progress::new())?;
        out.insert(id, k);
    }
    Ok(out)
}

/// The report, the matrix, JUnit, the exit code.
fn finish(
    report: &GauntletReport,
    run_dir: &Path,
    args: &GauntletArgs,
) -> anyhow::Result<ExitCode> {
    let saved = report.save(run_dir)?;
    super::stats::save_run_dataset(run_dir);
    if let Some(path) = &args.junit {
        std::fs::write(path, report.junit())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        outln!("{}", serde_json::to_string_pretty(report)?)?;
    } else {
        out_matrix(report, &saved)?;
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn out_matrix(report: &GauntletReport, saved: &Path) -> std::io::Result<()> {
    use ktstr_plan::verdict::Outcome;
    outln!("{}", report.matrix().trim_end())?;
    for j in report.jobs.iter().filter(|j| j.outcome != Outcome::Pass) {
        outln!(
            "{} {}::{}::{} run {}:",
            j.outcome.label(),
            j.cell.scenario,
            j.cell.preset,
            j.cell.scheduler,
            j.repetition
        )?;
        for r in &j.reasons {
            outln!("    {}", r.replace('\n', "\n    "))?;
        }
    }
    for (s, why) in &report.unfit {
        outln!("not run: {s}: {why}")?;
    }
    if report.interrupted {
        outln!("interrupted: {} job(s) not run", report.not_run.len())?;
    }
    let n = |o| report.jobs.iter().filter(|j| j.outcome == o).count();
    outln!(
        "{} jobs: {} passed, {} failed, {} inconclusive, {} skipped in {:.1}s; report {}",
        report.jobs.len(),
        n(Outcome::Pass),
        n(Outcome::Fail),
        n(Outcome::Inconclusive),
        n(Outcome::Skip),
        report.wall_s,
        saved.display()
    )
}
