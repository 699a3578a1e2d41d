//! `ktstr verifier --scheduler S [--kernel K...] [--topology T...]`: load
//! the scheduler on each kernel × topology and print every BPF program's
//! verified instruction count and its share of the verifier's limit;
//! `--compare PREV.json` exits 1 when a program grew past `--max-growth`
//! or a cell that loaded is now rejected.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ktstr_plan::SchedulerSpec;
use ktstr_run::verifier::{compare, sweep_cell, CellOutcome, VerifierReport, VERIFIER_INSN_LIMIT};
use ktstr_topology::Topology;
use ktstr_vmm::probe::BackendChoice;

use super::progress::Progress;
use super::Manifests;

/// Arguments of `verifier`.
#[derive(Debug, clap::Args)]
pub struct VerifierArgs {
    /// The scheduler (as `ktstr run --scheduler` finds it).
    #[arg(long, value_name = "NAME|PATH")]
    pub scheduler: String,
    /// An argument for the scheduler (repeatable).
    #[arg(long = "sched-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sched_args: Vec<String>,
    /// Kernels to sweep (repeatable; default: the default kernel).
    #[arg(long, value_name = "ID")]
    pub kernel: Vec<String>,
    /// Topologies to sweep (repeatable; default: 1n1l2c1t).
    #[arg(long, short, value_name = "T")]
    pub topology: Vec<Topology>,
    /// An earlier sweep's `--json` output: print each program's change
    /// and exit 1 on a regression.
    #[arg(long, value_name = "PREV.json")]
    pub compare: Option<PathBuf>,
    /// With --compare: the growth (now / before) past which a program's
    /// count is a regression.
    #[arg(long, default_value_t = 1.10, value_name = "RATIO")]
    pub max_growth: f64,
    /// VM backend (auto, kvm, qemu-kvm, qemu-tcg).
    #[arg(long, default_value = "auto", env = "KTSTR_BACKEND", value_name = "B")]
    pub backend: BackendChoice,
    /// Machine-readable output (the sweep, with the comparison).
    #[arg(long)]
    pub json: bool,
}

/// Runs the sweep; exit 1 when a cell was rejected or failed, or the
/// comparison found a regression.
pub fn run(args: &VerifierArgs, manifests: Manifests) -> anyhow::Result<ExitCode> {
    let before: Option<VerifierReport> = match &args.compare {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| p.display().to_string())?;
            let v: serde_json::Value =
                serde_json::from_str(&text).with_context(|| p.display().to_string())?;
            let report = v.get("report").cloned().unwrap_or(v);
            Some(serde_json::from_value(report).with_context(|| {
                format!("{}: not a `ktstr verifier --json` report", p.display())
            })?)
        }
        None => None,
    };
    let runner = super::run::new_runner(manifests)?;
    let scheduler = SchedulerSpec {
        name: args.scheduler.clone(),
        args: args.sched_args.clone(),
        at: Default::default(),
    };
    let kernels: Vec<Option<&str>> = if args.kernel.is_empty() {
        vec![None]
    } else {
        args.kernel.iter().map(|k| Some(k.as_str())).collect()
    };
    let topologies = if args.topology.is_empty() {
        vec!["1n1l2c1t".parse().expect("a valid topology")]
    } else {
        args.topology.clone()
    };
    let mut report = VerifierReport {
        scheduler,
        cells: Vec::new(),
    };
    for id in kernels {
        let kernel = super::guest::obtain_kernel(manifests.kernels, id)?;
        for &t in &topologies {
            let cell = sweep_cell(
                &runner,
                &report.scheduler,
                &kernel,
                t,
                args.backend,
                &Progress::new(),
            )?;
            report.cells.push(cell);
        }
    }
    let changes = before
        .as_ref()
        .map(|b| compare(b, &report, args.max_growth));
    let regressed = changes.iter().flatten().any(|c| c.regression);
    let broken = report
        .cells
        .iter()
        .any(|c| !matches!(c.outcome, CellOutcome::Loaded { .. }));
    if args.json {
        let v = serde_json::json!({ "report": report, "changes": changes });
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        print_table(&report)?;
        if let Some(changes) = &changes {
            print_changes(changes, args.max_growth)?;
        }
    }
    Ok(if regressed || broken {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Programs as rows, kernel × topology cells as columns.
fn print_table(r: &VerifierReport) -> anyhow::Result<()> {
    let mut names: Vec<&str> = Vec::new();
    for c in &r.cells {
        if let CellOutcome::Loaded { programs } = &c.outcome {
            for p in programs {
                if !names.contains(&p.name.as_str()) {
                    names.push(&p.name);
                }
            }
        }
    }
    names.sort_unstable();
    let width = names.iter().map(|n| n.len()).max().unwrap_or(7).max(7);
    outln!("{} on {} cell(s)", r.scheduler.name, r.cells.len())?;
    for (i, c) in r.cells.iter().enumerate() {
        outln!("  [{}] {} {}", i + 1, c.kernel, c.topology)?;
    }
    let mut head = format!("{:width$}", "program");
    for i in 0..r.cells.len() {
        head.push_str(&format!("  {:>18}", format!("[{}] insns (limit)", i + 1)));
    }
    outln!("{head}")?;
    for name in &names {
        let mut line = format!("{name:width$}");
        for c in &r.cells {
            let cell = match &c.outcome {
                CellOutcome::Loaded { programs } => {
                    match programs.iter().find(|p| p.name == *name) {
                        Some(p) => format!(
                            "{} ({:.2}%)",
                            p.verified_insns,
                            100.0 * f64::from(p.verified_insns) / f64::from(VERIFIER_INSN_LIMIT)
                        ),
                        None => "-".into(),
                    }
                }
                _ => "-".into(),
            };
            line.push_str(&format!("  {cell:>18}"));
        }
        outln!("{line}")?;
    }
    for (i, c) in r.cells.iter().enumerate() {
        match &c.outcome {
            CellOutcome::Loaded { .. } => {}
            CellOutcome::Rejected { program, message } => outln!(
                "[{}] REJECTED program {}: {message}",
                i + 1,
                program.as_deref().unwrap_or("(unnamed)")
            )?,
            CellOutcome::Failed { reason } => outln!("[{}] FAILED: {reason}", i + 1)?,
        }
    }
    Ok(())
}

fn print_changes(
    changes: &[ktstr_run::verifier::ProgramChange],
    max_growth: f64,
) -> anyhow::Result<()> {
    if changes.is_empty() {
        outln!("no program's count changed")?;
    }
    let shown = |n: Option<u32>| n.map_or("-".to_string(), |n| n.to_string());
    for c in changes {
        outln!(
            "{} {} {}: {} -> {}{}",
            if c.regression {
                "REGRESSION"
            } else {
                "changed"
            },
            c.cell,
            c.program,
            shown(c.before),
            shown(c.after),
            if c.regression {
                format!(" (past x{max_growth} or newly rejected)")
            } else {
                String::new()
            }
        )?;
    }
    Ok(())
}
