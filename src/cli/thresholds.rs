//! `ktstr thresholds [FILE] [--scheduler S]`: every threshold the
//! verdict would use, its value and the layer it came from.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ktstr_engine::check_file;
use ktstr_plan::thresholds::{threshold_def, InForce, Source, Speed};
use ktstr_vmm::probe::{BackendChoice, KvmProbe};
use ktstr_vmm::BackendKind;
use serde_json::json;

use super::Manifests;

/// Arguments of `thresholds`.
#[derive(Debug, clap::Args)]
pub struct ThresholdsArgs {
    /// A scenario script: its `threshold(...)` calls, its scheduler and
    /// its busy vCPUs count.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The scheduler whose schedulers.toml layer applies (default: the
    /// script's).
    #[arg(long, value_name = "NAME")]
    pub scheduler: Option<String>,
    /// A command-line threshold, as `ktstr run --threshold` (repeatable).
    #[arg(long = "threshold", value_name = "KEY=VALUE", value_parser = super::run::parse_threshold)]
    pub thresholds: Vec<(String, f64)>,
    /// The backend whose speed scales time thresholds (default: what
    /// `auto` chose on this host last, else qemu-tcg).
    #[arg(long, default_value = "auto", env = "KTSTR_BACKEND", value_name = "B")]
    pub backend: BackendChoice,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// The backend `auto` would use, from the probe's cached verdict (no VM is
/// booted), and how it was decided.
fn backend(choice: BackendChoice) -> anyhow::Result<(BackendKind, String)> {
    if let BackendChoice::Kind(k) = choice {
        return Ok((k, "as given".into()));
    }
    let layout = ktstr_kernel::CacheLayout::from_env()?;
    let probe = KvmProbe::new(layout.root().join("probe").join("kvm.json"));
    Ok(match probe.cached() {
        Some(v) => (v.backend(), "the KVM probe's verdict".into()),
        None => (
            BackendKind::QemuTcg,
            "assumed: the KVM probe has not run on this host".into(),
        ),
    })
}

fn source_text(name: &str, f: &InForce, scheduler: Option<&str>, file: &str) -> String {
    match f.source {
        Source::BuiltIn { factor } if factor != 1.0 => {
            let native = threshold_def(name).map_or(f.value, |d| d.default);
            format!("built-in {native} x{factor:.2} (emulation)")
        }
        Source::BuiltIn { .. } => "built-in".into(),
        Source::Scheduler => format!("schedulers.toml [{}]", scheduler.unwrap_or("the scheduler")),
        Source::Scenario => format!("the scenario ({file})"),
        Source::CommandLine => "--threshold".into(),
    }
}

/// Prints the thresholds in force.
pub fn run(args: &ThresholdsArgs, manifests: Manifests) -> anyhow::Result<ExitCode> {
    let registry = super::sched::registry(manifests.schedulers)?;
    let plan = match &args.file {
        Some(f) => {
            let checked = check_file(f, &super::scripts::options(None));
            if !checked.is_clean() {
                anyhow::bail!("{}", checked.render());
            }
            Some(checked.plan.context("a clean check has a plan")?)
        }
        None => None,
    };
    let scheduler = args
        .scheduler
        .clone()
        .or_else(|| plan.as_ref()?.scheduler.as_ref().map(|s| s.name.clone()));
    let (kind, how) = backend(args.backend)?;
    // A script's busy vCPUs on its first topology; else one.
    let busy = plan
        .as_ref()
        .and_then(|p| {
            Some(ktstr_run::thresholds::busy_vcpus(
                p,
                &p.topology.choose(None)?,
            ))
        })
        .unwrap_or(1);
    let speed = ktstr_run::thresholds::speed(kind, busy);
    let file = args
        .file
        .as_ref()
        .map_or(String::new(), |f| f.display().to_string());
    let t: BTreeMap<String, InForce> = ktstr_run::thresholds::explain(
        plan.as_ref().map(|p| &p.thresholds),
        scheduler.as_deref(),
        &registry,
        &args.thresholds,
        speed,
    );
    if args.json {
        let rows: Vec<_> = t
            .iter()
            .map(|(k, f)| {
                json!({"name": k, "value": f.value, "source": f.source,
                       "doc": threshold_def(k).map(|d| d.doc)})
            })
            .collect();
        let out = json!({"backend": kind.to_string(), "backend_from": how,
            "busy_vcpus": busy, "slowdown": speed.slowdown(), "scheduler": scheduler,
            "file": args.file, "thresholds": rows});
        outln!("{}", serde_json::to_string_pretty(&out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let sched = scheduler.as_deref().unwrap_or("eevdf (no scheduler layer)");
    outln!("scheduler: {sched}")?;
    let speed_text = match speed {
        Speed::Hardware => "native speed".to_string(),
        Speed::Emulated { busy_per_core } => format!(
            "emulated, {busy} busy vCPU(s), {busy_per_core:.1} per host core: times x{:.2}",
            speed.slowdown()
        ),
    };
    outln!("backend:   {kind} ({how}); {speed_text}")?;
    outln!()?;
    for (k, f) in &t {
        let from = source_text(k, f, scheduler.as_deref(), &file);
        outln!("{k:<24} {:>10} {from}", f.value)?;
    }
    outln!()?;
    outln!("What each bounds (`--json` for all of it):")?;
    for k in t.keys() {
        let doc = threshold_def(k).map_or("(not a known threshold)", |d| d.doc);
        let first = doc.split(". ").next().unwrap_or(doc).trim_end_matches('.');
        outln!("  {k}: {first}.")?;
    }
    Ok(ExitCode::SUCCESS)
}
