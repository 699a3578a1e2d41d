//! `ktstr run FILE...`: check each script, boot a VM of its topology,
//! run its Plan in the guest, judge the results, write a sidecar.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use ktstr_engine::plan::{Plan, SchedulerSpec, TopologyReq};
use ktstr_engine::results::{CgroupResults, RunResults, WorkerResults};
use ktstr_engine::verdict::{self, Outcome, Verdict};
use ktstr_engine::{check_file, CheckOptions};
use ktstr_kernel::BootKernel;
use ktstr_proto::{GuestMessage, Job, JobSpec, SchedulerLaunch, WorkerReport};
use ktstr_topology::Topology;
use ktstr_vmm::initramfs::GuestFile;
use ktstr_vmm::probe::BackendChoice;
use ktstr_vmm::session::{self, SessionIo};
use ktstr_vmm::{BackendKind, VmOutcome};
use serde_json::json;

use super::guest::{self, Payload, VmArgs};

/// Seconds a scheduler may take to attach (production schedulers need up
/// to ~25 s under TCG).
const ATTACH_TIMEOUT_S: u64 = 90;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario scripts.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Kernel to boot (see `ktstr kernel build --help`).
    #[arg(long, value_name = "ID")]
    pub kernel: Option<String>,
    /// Scheduler (sample scheduler name, program on PATH, or path);
    /// overrides the script's.
    #[arg(long, value_name = "NAME|PATH")]
    pub scheduler: Option<String>,
    /// Argument for the scheduler (repeatable).
    #[arg(long = "sched-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sched_args: Vec<String>,
    /// Topology; overrides the script's.
    #[arg(long, short, value_name = "T")]
    pub topology: Option<Topology>,
    /// Duration in seconds; overrides the script's.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// VM backend (auto, kvm, qemu-kvm, qemu-tcg).
    #[arg(long, default_value = "auto", env = "KTSTR_BACKEND", value_name = "B")]
    pub backend: BackendChoice,
    /// Machine-readable output (one JSON object per job, as an array).
    #[arg(long)]
    pub json: bool,
}

/// What one job produced.
struct JobResult {
    label: String,
    verdict: Verdict,
    seconds: f64,
    sidecar: Option<PathBuf>,
    stats: Vec<String>,
}

/// Runs every file; the exit code is the worst outcome's.
pub fn run(args: RunArgs, kernels_toml: Option<&Path>) -> anyhow::Result<ExitCode> {
    let run_dir = runs_dir().join(run_id());
    let mut kernel: Option<BootKernel> = None;
    let mut results = Vec::new();
    for file in &args.files {
        let r = run_file(&args, file, kernels_toml, &mut kernel, &run_dir)?;
        if !args.json {
            print_result(&r);
        }
        results.push(r);
    }
    if args.json {
        let v: Vec<_> = results
            .iter()
            .map(|r| json!({"job": r.label, "seconds": r.seconds, "verdict": r.verdict, "sidecar": r.sidecar}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    let worst = results
        .iter()
        .map(|r| r.verdict.outcome)
        .max()
        .unwrap_or(Outcome::Pass);
    Ok(ExitCode::from(worst.exit_code()))
}

fn runs_dir() -> PathBuf {
    std::env::var_os("KTSTR_RUNS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/ktstr/runs"))
}

fn run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}-{}", std::process::id())
}

fn failed(label: String, reason: String) -> JobResult {
    JobResult {
        label,
        verdict: Verdict {
            outcome: Outcome::Fail,
            reasons: vec![reason],
            thresholds: Default::default(),
            claims: vec![],
        },
        seconds: 0.0,
        sidecar: None,
        stats: vec![],
    }
}

fn run_file(
    args: &RunArgs,
    file: &Path,
    kernels_toml: Option<&Path>,
    kernel: &mut Option<BootKernel>,
    run_dir: &Path,
) -> anyhow::Result<JobResult> {
    let opts = CheckOptions {
        topology: args.topology,
        ..CheckOptions::default()
    };
    let checked = check_file(file, &opts);
    if !checked.is_clean() {
        eprint!("{}", checked.render());
        return Ok(failed(
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
        return Ok(skip(
            label,
            "no topology satisfies the scenario's constraints",
        ));
    };
    let label = format!("{} {topology} {sched_label}", plan.name);
    if topology.cpus() > ktstr_vmm::qemu::QEMU_MAX_CPUS {
        return Ok(skip(
            label,
            "this host's VM backend cannot give that many CPUs",
        ));
    }
    if kernel.is_none() {
        *kernel = Some(guest::obtain_kernel(kernels_toml, args.kernel.as_deref())?);
    }
    let kernel = kernel.as_ref().expect("kernel obtained");
    let (files, launch) = match &plan.scheduler {
        Some(s) => match resolve_scheduler(s, kernel) {
            Ok((f, l)) => (vec![f], Some(l)),
            Err(e) => return Ok(failed(label, e)),
        },
        None => (vec![], None),
    };
    let job = ReadyJob {
        plan,
        topology,
        label,
        files,
        launch,
    };
    execute(args, job, kernel, run_dir)
}

/// A checked job with everything resolved, ready to boot.
struct ReadyJob {
    plan: Plan,
    topology: Topology,
    label: String,
    files: Vec<GuestFile>,
    launch: Option<SchedulerLaunch>,
}

/// Boots the VM for `job`, judges what came back, writes the sidecar.
fn execute(
    args: &RunArgs,
    job: ReadyJob,
    kernel: &BootKernel,
    run_dir: &Path,
) -> anyhow::Result<JobResult> {
    let ReadyJob {
        plan,
        topology,
        label,
        files,
        launch,
    } = job;
    std::fs::create_dir_all(run_dir).with_context(|| format!("creating {}", run_dir.display()))?;
    let stem = label.replace(' ', "-");
    let vm_args = VmArgs {
        kernel: args.kernel.clone(),
        topology,
        backend: args.backend,
        memory_mb: None,
        console_log: Some(run_dir.join(format!("{stem}.console.log"))),
    };
    let job = JobSpec {
        job: Job::Plan {
            plan: serde_json::to_value(&plan)?,
            topology,
            scheduler: launch,
        },
        fault: None,
    };
    let timeout = Duration::from_secs_f64(plan.duration_s + ATTACH_TIMEOUT_S as f64 + 120.0);
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
    let results = run_results(&seen.workers);
    let failures = failures(&outcome, &seen);
    let slowdown = slowdown(outcome.backend);
    let thresholds = verdict::thresholds(&Default::default(), &plan.thresholds, slowdown);
    let verdict = verdict::judge(&plan, &topology, &results, thresholds, failures);
    let stats = stats_lines(&seen.workers);
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
        stats,
    })
}

fn skip(label: String, why: &str) -> JobResult {
    let mut r = failed(label, why.to_string());
    r.verdict.outcome = Outcome::Skip;
    r
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

/// The scheduler binary (the kernel's sample schedulers first, then a
/// path, then PATH) and how the guest launches it.
fn resolve_scheduler(
    s: &SchedulerSpec,
    kernel: &BootKernel,
) -> Result<(GuestFile, SchedulerLaunch), String> {
    let from_cache = match kernel {
        BootKernel::Entry(e) => e.scheduler(&s.name),
        BootKernel::Image { .. } => None,
    };
    let host = from_cache
        .or_else(|| super::scripts::scheduler_on_host(&s.name))
        .ok_or_else(|| {
            format!(
                "scheduler `{}` not found in the kernel cache entry or on PATH",
                s.name
            )
        })?;
    let base = host
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let guest_path = format!("/sched/{base}");
    Ok((
        GuestFile {
            host,
            guest: guest_path.clone(),
        },
        SchedulerLaunch {
            path: guest_path,
            ops_name: base.trim_start_matches("scx_").to_string(),
            args: s.args.clone(),
            attach_timeout_s: ATTACH_TIMEOUT_S,
        },
    ))
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

/// Everything the guest sent that the verdict needs.
#[derive(Default)]
struct Seen {
    workers: Vec<WorkerReport>,
    results: bool,
    scheduler: Vec<(String, String)>,
    events: Vec<(f64, String)>,
}

impl Seen {
    fn take(&mut self, m: &GuestMessage) {
        match m {
            GuestMessage::Results { workers, .. } => {
                self.workers = workers.clone();
                self.results = true;
            }
            GuestMessage::Scheduler { state, detail } => {
                self.scheduler.push((state.clone(), detail.clone()))
            }
            GuestMessage::Event { at_ms, message } => self.events.push((*at_ms, message.clone())),
            _ => {}
        }
    }
}

fn failures(o: &VmOutcome, seen: &Seen) -> Vec<String> {
    let mut v = Vec::new();
    for (state, detail) in &seen.scheduler {
        if state != "attached" {
            v.push(format!("scheduler {state}: {}", detail.trim()));
        }
    }
    if !o.is_clean() {
        v.push(o.failure_report());
    } else if !seen.results && seen.scheduler.iter().all(|(s, _)| s == "attached") {
        v.push("the guest sent no results".into());
    }
    v
}

fn run_results(workers: &[WorkerReport]) -> RunResults {
    let mut r = RunResults::default();
    for w in workers {
        r.cgroups
            .entry(w.cgroup.clone())
            .or_insert_with(CgroupResults::default)
            .workers
            .push(WorkerResults {
                iterations: w.iterations,
                max_gap_ms: w.max_gap_ms,
                migrations: w.migrations,
                wake_p50_us: w.wake_p50_us,
                wake_p99_us: w.wake_p99_us,
                run_delay_ms: w.run_delay_ms,
                cpu_time_ms: w.cpu_time_ms,
                cpus_used: w.cpus_used.clone(),
                error: w.error.clone(),
            });
    }
    r
}

fn stats_lines(workers: &[WorkerReport]) -> Vec<String> {
    let mut cpus: Vec<u32> = workers.iter().flat_map(|w| w.cpus_used.clone()).collect();
    cpus.sort_unstable();
    cpus.dedup();
    let migrations: u64 = workers.iter().map(|w| w.migrations).sum();
    let worst_gap = workers.iter().map(|w| w.max_gap_ms).fold(0.0, f64::max);
    let mut lines = vec![format!(
        "workers {}  cpus {}  migrations {migrations}  worst gap {worst_gap:.0} ms",
        workers.len(),
        ktstr_topology::cpulist::format(&cpus)
    )];
    let mut names: Vec<&str> = workers.iter().map(|w| w.cgroup.as_str()).collect();
    names.dedup();
    for name in names {
        let ws: Vec<&WorkerReport> = workers.iter().filter(|w| w.cgroup == name).collect();
        let it: u64 = ws.iter().map(|w| w.iterations).sum();
        let cpu: f64 = ws.iter().map(|w| w.cpu_time_ms).sum();
        let gap = ws.iter().map(|w| w.max_gap_ms).fold(0.0, f64::max);
        lines.push(format!(
            "  {name}: {} workers, {it} iterations, {cpu:.0} ms CPU, worst gap {gap:.0} ms",
            ws.len()
        ));
    }
    lines
}

fn host_facts() -> serde_json::Value {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    json!({"kernel": release.trim(), "cpus": cpus, "ktstr": env!("CARGO_PKG_VERSION")})
}

fn print_result(r: &JobResult) {
    println!(
        "{} [{:>5.1}s] {}",
        r.verdict.outcome.label(),
        r.seconds,
        r.label
    );
    if r.verdict.outcome != Outcome::Pass {
        for reason in &r.verdict.reasons {
            println!("    {}", reason.replace('\n', "\n    "));
        }
        for s in &r.stats {
            println!("    {s}");
        }
    }
    if let Some(p) = &r.sidecar {
        if r.verdict.outcome != Outcome::Pass {
            println!("    sidecar: {}", p.display());
        }
    }
}
