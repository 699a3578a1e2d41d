//! One job: check the script, resolve its topology and scheduler, boot the
//! VM, judge what came back, write the sidecar.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ktstr_engine::plan::{Plan, SchedulerSpec, TopologyReq};
use ktstr_engine::verdict;
use ktstr_engine::{check_file, CheckOptions};
use ktstr_kernel::BootKernel;
use ktstr_proto::{Job, JobSpec, SchedulerLaunch};
use ktstr_sched::SchedulersToml;
use ktstr_topology::Topology;
use ktstr_vmm::initramfs::GuestFile;
use ktstr_vmm::session::{self, SessionIo};
use ktstr_vmm::BackendKind;
use serde_json::json;

use super::report::{host_facts, JobResult, Seen};
use super::{launch, RunArgs};
use crate::cli::guest::{self, Payload, VmArgs};

/// What every job of one `ktstr run` shares.
pub struct Context<'a> {
    /// The command line.
    pub args: &'a RunArgs,
    /// kernels.toml, if given.
    pub kernels_toml: Option<&'a Path>,
    /// schedulers.toml.
    pub registry: &'a SchedulersToml,
    /// The kernel, obtained for the first job that boots.
    pub kernel: Option<BootKernel>,
    /// Where sidecars go.
    pub run_dir: &'a Path,
}

/// Runs `file` once (`attempt` numbers repeats in the sidecar's name).
pub fn run_file(ctx: &mut Context, file: &Path, attempt: u32) -> anyhow::Result<JobResult> {
    let args = ctx.args;
    let opts = CheckOptions {
        topology: args.topology,
        ..CheckOptions::default()
    };
    let checked = check_file(file, &opts);
    if !checked.is_clean() {
        err!("{}", checked.render());
        return Ok(JobResult::failed(
            file.display().to_string(),
            "the script has errors".into(),
        ));
    }
    let mut plan = checked.plan.context("a clean check has a plan")?;
    apply_overrides(args, &mut plan);
    let sched_label = plan
        .scheduler
        .as_ref()
        .map_or("eevdf".to_string(), |s| s.name.clone());
    let Some(topology) = choose_topology(args.topology, &plan) else {
        let label = format!("{} - {sched_label}", plan.name);
        let why = "no topology satisfies the scenario's constraints";
        return Ok(JobResult::skipped(label, why));
    };
    let label = format!("{} {topology} {sched_label}", plan.name);
    if topology.cpus() > ktstr_vmm::qemu::QEMU_MAX_CPUS {
        let why = "this host's VM backend cannot give that many CPUs";
        return Ok(JobResult::skipped(label, why));
    }
    if ctx.kernel.is_none() {
        ctx.kernel = Some(guest::obtain_kernel(
            ctx.kernels_toml,
            args.kernel.as_deref(),
        )?);
    }
    let kernel = ctx.kernel.as_ref().expect("kernel obtained");
    let (files, launch) = match &plan.scheduler {
        Some(s) => match launch::resolve(s, kernel, ctx.registry, args.attach_timeout, topology) {
            Ok((f, l)) => (vec![f], Some(l)),
            Err(e) => return Ok(JobResult::failed(label, e)),
        },
        None => (vec![], None),
    };
    let stem = match args.repeat {
        1 => file_stem(&label),
        _ => format!("{}-run{}", file_stem(&label), attempt + 1),
    };
    let job = ReadyJob {
        plan,
        topology,
        label,
        stem,
        files,
        launch,
    };
    execute(ctx, job)
}

/// A checked job with everything resolved, ready to boot.
struct ReadyJob {
    plan: Plan,
    topology: Topology,
    label: String,
    stem: String,
    files: Vec<GuestFile>,
    launch: Option<SchedulerLaunch>,
}

/// Boots the VM for `job`, judges what came back, writes the sidecar.
fn execute(ctx: &Context, job: ReadyJob) -> anyhow::Result<JobResult> {
    let (args, run_dir) = (ctx.args, ctx.run_dir);
    let kernel = ctx.kernel.as_ref().expect("kernel obtained");
    let ReadyJob {
        plan,
        topology,
        label,
        stem,
        files,
        launch,
    } = job;
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let vm_args = VmArgs {
        kernel: args.kernel.clone(),
        topology,
        backend: args.backend,
        memory_mb: None,
        console_log: Some(run_dir.join(format!("{stem}.console.log"))),
        append: String::new(),
    };
    let attach_s = launch.as_ref().map_or(0, |l| l.attach_timeout_s);
    let job = JobSpec {
        job: Job::Plan {
            plan: serde_json::to_value(&plan)?,
            topology,
            scheduler: launch,
        },
        fault: args.fault,
    };
    let timeout = Duration::from_secs_f64(plan.duration_s + attach_s as f64 + 120.0);
    let payload = Payload {
        busybox: false,
        files,
    };
    let vm = guest::prepare(&vm_args, kernel, job, payload, timeout)?;
    let mut io = SessionIo::logged(vm.console_log.clone());
    io.cancel = guest::cancel_on_signals()?;
    let mut seen = Seen::default();
    let start = Instant::now();
    let outcome = session::run(vm.backend.as_ref(), &vm.spec, io, &mut |m| seen.take(m))?;
    let seconds = start.elapsed().as_secs_f64();
    let results = seen.run_results();
    let mut scenario_layer = plan.thresholds.clone();
    scenario_layer.extend(args.thresholds.iter().cloned());
    let thresholds = verdict::thresholds(
        &launch::thresholds(plan.scheduler.as_ref(), ctx.registry),
        &scenario_layer,
        slowdown(outcome.backend),
    );
    let verdict = verdict::judge(
        &plan,
        &topology,
        &results,
        thresholds,
        seen.failures(&outcome),
    );
    let sidecar = run_dir.join(format!("{stem}.json"));
    let doc = json!({
        "plan": plan, "topology": topology.to_string(), "kernel": guest::kernel_label(kernel),
        "scheduler": plan.scheduler, "backend": outcome.backend, "host": host_facts(),
        "telemetry": {"workers": seen.workers, "events": seen.events, "scheduler": seen.scheduler},
        "vm": outcome, "verdict": verdict, "seconds": seconds,
    });
    std::fs::write(&sidecar, serde_json::to_string_pretty(&doc)?)
        .with_context(|| format!("writing {}", sidecar.display()))?;
    Ok(JobResult {
        label,
        verdict,
        seconds,
        sidecar: Some(sidecar),
        stats: seen.stats_lines(),
        repeat: None,
    })
}

/// `label` as a file name: spaces become `-`, anything but letters,
/// digits, `.`, `_` and `-` becomes `_` (a scheduler given as a path has
/// slashes).
fn file_stem(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            ' ' => '-',
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') => c,
            _ => '_',
        })
        .collect()
}

fn apply_overrides(args: &RunArgs, plan: &mut Plan) {
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
}

/// The override (if the scenario accepts it) or the scenario's own.
fn choose_topology(over: Option<Topology>, plan: &Plan) -> Option<Topology> {
    match (over, &plan.topology) {
        (Some(t), TopologyReq::Constraints(c)) => c.accepts(&t).then_some(t),
        (Some(t), TopologyReq::Fixed { .. }) => Some(t),
        (None, req) => req.default_topology(),
    }
}

/// How much slower than hardware the backend runs: time thresholds
/// (gaps) are multiplied by this. TCG emulates every instruction and here
/// shares two host cores among all vCPUs; 2.5 was chosen from runs of the
/// steady scenarios (see README).
fn slowdown(kind: BackendKind) -> f64 {
    match kind {
        BackendKind::QemuTcg => 2.5,
        _ => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_safe_file_names() {
        assert_eq!(
            file_stem("two_cgroups 1n1l2c1t /bin/sleep"),
            "two_cgroups-1n1l2c1t-_bin_sleep"
        );
        assert_eq!(file_stem("a 2n4l2c1t scx_simple"), "a-2n4l2c1t-scx_simple");
    }
}
