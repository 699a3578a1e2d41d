//! `ktstr check`, `ktstr plan`, `ktstr list`, `ktstr defs`: scripts,
//! checked before anything boots.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use ktstr_engine::catalog;
use ktstr_engine::{check_file, CheckOptions, Checked};
use ktstr_kernel::SAMPLE_SCHEDULERS;
use ktstr_topology::Topology;
use serde_json::json;

use super::Manifests;

/// Arguments of `check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Scripts to check.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Validate against this topology instead of each script's own.
    #[arg(long, short, value_name = "T")]
    pub topology: Option<Topology>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// The script.
    pub file: PathBuf,
    /// Validate against this topology instead of the script's own.
    #[arg(long, short, value_name = "T")]
    pub topology: Option<Topology>,
    /// Print the Plan as JSON (default: a summary).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only scenarios whose id or description contains S.
    #[arg(long, value_name = "S")]
    pub filter: Option<String>,
    /// The catalog directory.
    #[arg(long, default_value = "scenarios", value_name = "DIR")]
    pub dir: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `defs`.
#[derive(Debug, clap::Args)]
pub struct DefsArgs {
    /// Where to write the `.d.rhai` files (default: `.rhai-defs`).
    #[arg(default_value = ".rhai-defs", value_name = "DIR")]
    pub dir: PathBuf,
}

/// Whether a scheduler name or path can be found: a sample scheduler built
/// with every kernel, or an executable program at a path, installed, or on
/// PATH. `Err` says why not.
pub(crate) fn scheduler_exists(name: &str) -> Result<(), String> {
    if SAMPLE_SCHEDULERS.contains(&name) {
        return Ok(());
    }
    ktstr_sched::on_host(name).map(|_| ())
}

/// Check options with the host's scheduler lookup.
pub(crate) fn options(topology: Option<Topology>) -> CheckOptions {
    CheckOptions {
        topology,
        scheduler_exists: Some(Arc::new(scheduler_exists)),
        ..CheckOptions::default()
    }
}

/// `ktstr check`: exit 0 when every script is clean, 1 otherwise. The
/// manifests a run would read are validated first.
pub fn check(args: &CheckArgs, manifests: Manifests) -> anyhow::Result<ExitCode> {
    manifests.validate()?;
    let opts = options(args.topology);
    let results: Vec<Checked> = args.files.iter().map(|f| check_file(f, &opts)).collect();
    let clean = results.iter().all(Checked::is_clean);
    if args.json {
        let v: Vec<_> = results
            .iter()
            .map(|c| {
                json!({"file": c.file, "clean": c.is_clean(), "diagnostics": c.diagnostics,
                       "output": c.output})
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for c in &results {
            show_output(c);
            if c.is_clean() {
                outln!("ok    {}", c.file)?;
            } else {
                err!("{}", c.render());
                outln!("FAIL  {} ({} error(s))", c.file, c.diagnostics.len())?;
            }
        }
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What a script printed (`print`, `debug`), on stderr.
pub fn show_output(c: &Checked) {
    for p in &c.output.lines {
        match &p.at {
            Some(at) => errln!("{at}: debug: {}", p.text),
            None => errln!("{}: print: {}", c.file, p.text),
        }
    }
    if c.output.dropped > 0 {
        errln!(
            "{}: {} more printed lines dropped",
            c.file,
            c.output.dropped
        );
    }
}

/// `ktstr plan`: the resolved Plan of one script.
pub fn plan(args: &PlanArgs, manifests: Manifests) -> anyhow::Result<ExitCode> {
    manifests.validate()?;
    let c = check_file(&args.file, &options(args.topology));
    show_output(&c);
    if !c.is_clean() {
        err!("{}", c.render());
        return Ok(ExitCode::from(1));
    }
    let plan = c.plan.context("a clean check has a plan")?;
    let topology = args.topology.or_else(|| plan.topology.default_topology());
    if args.json {
        let mut v = serde_json::to_value(&plan)?;
        v["resolved_topology"] = json!(topology.map(|t| t.to_string()));
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!("scenario   {}: {}", plan.name, plan.description)?;
    outln!("duration   {} s", plan.duration_s)?;
    outln!(
        "topology   {}",
        topology.map_or("none fits".to_string(), |t| t.to_string())
    )?;
    let sched = plan
        .scheduler
        .as_ref()
        .map_or("EEVDF (none)".to_string(), |s| {
            format!("{} {}", s.name, s.args.join(" "))
        });
    outln!("scheduler  {}", sched.trim())?;
    for g in &plan.cgroups {
        match &g.work {
            ktstr_plan::work::Work::Payload { run } => outln!(
                "cgroup     {}: {} x payload {} {}",
                g.name,
                g.workers,
                run.program,
                run.args.join(" ")
            )?,
            w => outln!("cgroup     {}: {} x {}", g.name, g.workers, w.name())?,
        }
    }
    for f in &plan.files {
        outln!("file       {} -> {}", f.host, f.guest)?;
    }
    outln!("steps      {}", plan.steps.len())?;
    for c in &plan.claims {
        outln!("claim      {}", c.label)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `ktstr list`: the catalog with descriptions.
pub fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let entries = catalog::list(&args.dir)
        .with_context(|| format!("reading the catalog {}", args.dir.display()))?;
    let entries: Vec<_> = entries
        .into_iter()
        .filter(|e| {
            args.filter
                .as_deref()
                .is_none_or(|f| e.id.contains(f) || e.description.contains(f))
        })
        .collect();
    let unreadable = entries.iter().filter(|e| e.problem.is_some()).count();
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&entries)?)?;
    } else {
        let width = entries
            .iter()
            .filter(|e| e.problem.is_none())
            .map(|e| e.id.len())
            .max()
            .unwrap_or(0);
        for e in &entries {
            match &e.problem {
                Some(p) => errln!("warning: {}: {p}", e.path.display()),
                None => outln!("{:width$}  {}", e.id, e.description)?,
            }
        }
    }
    // Like ls(1): what could be read is listed, and the exit status says
    // that something could not.
    Ok(if unreadable == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `ktstr defs`: `.d.rhai` definition files for editors.
pub fn defs(args: &DefsArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    ktstr_engine::defs::write_definitions(&args.dir)
        .with_context(|| format!("writing definitions into {}", args.dir.display()))?;
    outln!("wrote Rhai definitions into {}", args.dir.display())?;
    Ok(ExitCode::SUCCESS)
}
