//! One script of `ktstr run`: checked, the command line's overrides
//! applied, its topology chosen, then run by `ktstr-run`.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context as _;
use ktstr_engine::{check_file, CheckOptions};
use ktstr_kernel::BootKernel;
use ktstr_plan::{Plan, SchedulerSpec, ShippedFile};
use ktstr_run::{JobRequest, JobResult, Repetition, Runner};

use super::RunArgs;
use crate::cli::guest;
use crate::cli::progress::Progress;

/// What every job of one `ktstr run` shares.
pub struct Context<'a> {
    /// The command line.
    pub args: &'a RunArgs,
    /// kernels.toml, if given.
    pub kernels_toml: Option<&'a Path>,
    /// The run library's shared settings.
    pub runner: &'a Runner,
    /// The kernel, obtained for the first job that boots.
    pub kernel: Option<BootKernel>,
    /// Set by Ctrl-C.
    pub cancel: Arc<AtomicBool>,
}

/// Runs `file` once (repetition `rep`).
pub fn run_file(ctx: &mut Context, file: &Path, rep: Repetition) -> anyhow::Result<JobResult> {
    let mut r = attempt(ctx, file, rep)?;
    r.repetition = rep;
    Ok(r)
}

fn attempt(ctx: &mut Context, file: &Path, rep: Repetition) -> anyhow::Result<JobResult> {
    let args = ctx.args;
    let opts = CheckOptions {
        topology: args.topology,
        ..CheckOptions::default()
    };
    let checked = check_file(file, &opts);
    super::super::scripts::show_output(&checked);
    if !checked.is_clean() {
        err!("{}", checked.render());
        let why = "the script has errors".to_string();
        return Ok(JobResult::failed(file.display().to_string(), why));
    }
    let mut plan = checked.plan.context("a clean check has a plan")?;
    apply_overrides(args, &mut plan)?;
    let Some(topology) = plan.topology.choose(args.topology) else {
        let sched = plan.scheduler.as_ref().map_or("eevdf", |s| s.name.as_str());
        let label = format!("{} - {sched}", plan.name);
        let why = "no topology satisfies the scenario's constraints".to_string();
        return Ok(JobResult::skipped(label, why));
    };
    if ctx.kernel.is_none() {
        ctx.kernel = Some(guest::obtain_kernel(
            ctx.kernels_toml,
            args.kernel.as_deref(),
        )?);
    }
    let kernel = ctx.kernel.clone().expect("kernel obtained");
    let mut req = JobRequest::new(plan, topology, kernel);
    req.backend = args.backend;
    req.attach_timeout = args.attach_timeout;
    req.monitor_ms = (!args.no_monitor).then_some(args.monitor_ms);
    req.snapshot = !args.no_snapshot;
    req.thresholds = args.thresholds.clone();
    req.fault = args.fault;
    req.repetition = rep;
    req.cancel = Arc::clone(&ctx.cancel);
    Ok(ctx.runner.run(req, &Progress::new())?)
}

fn apply_overrides(args: &RunArgs, plan: &mut Plan) -> anyhow::Result<()> {
    if let Some(d) = args.duration {
        plan.duration_s = d;
    }
    if let Some(name) = &args.scheduler {
        plan.scheduler = Some(SchedulerSpec {
            name: name.clone(),
            args: args.sched_args.clone(),
            at: Default::default(),
        });
    } else if !args.sched_args.is_empty() {
        if let Some(s) = plan.scheduler.as_mut() {
            s.args = args.sched_args.clone();
        }
    }
    for path in &args.sched_files {
        let f = ShippedFile::new(path).map_err(|e| anyhow::anyhow!("--sched-file {e}"))?;
        ShippedFile::add_to(&mut plan.files, f)
            .map_err(|e| anyhow::anyhow!("--sched-file: {e}"))?;
    }
    Ok(())
}
