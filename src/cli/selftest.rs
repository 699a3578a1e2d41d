//! `ktstr selftest`: the kernel's sched_ext selftests in a VM, one verdict
//! per test, a table (or `--json`), a sidecar per run and `--junit`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use ktstr_plan::selftests::{SelftestSpec, DEFAULT_TEST_TIMEOUT_S};
use ktstr_run::selftest::SelftestJob;
use ktstr_run::{JobRequest, JobResult, Repetition};
use ktstr_topology::Topology;
use ktstr_vmm::probe::BackendChoice;

use super::progress::Progress;
use super::Manifests;

/// Arguments of `selftest`.
#[derive(Debug, clap::Args)]
pub struct SelftestArgs {
    /// The kernel (a kernels.toml name, cache key, version, tree or
    /// tarball; default: the default kernel).
    #[arg(long, value_name = "ID")]
    pub kernel: Option<String>,
    /// The guest's topology (repeatable: one VM each).
    #[arg(long, short, value_name = "T", default_value = "1n2l2c1t")]
    pub topology: Vec<Topology>,
    /// Only tests whose name contains this (the runner's `-t`).
    #[arg(long, value_name = "NAME")]
    pub filter: Option<String>,
    /// Seconds each test may take before it is killed (a timeout).
    #[arg(long, default_value_t = DEFAULT_TEST_TIMEOUT_S, value_name = "S")]
    pub test_timeout: u64,
    /// A runner to use instead of the kernel's (another tree's build).
    #[arg(long, value_name = "FILE")]
    pub runner: Option<PathBuf>,
    /// Write JUnit XML: one test case per selftest and topology.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// VM backend (auto, kvm, qemu-kvm, qemu-tcg).
    #[arg(long, default_value = "auto", env = "KTSTR_BACKEND", value_name = "B")]
    pub backend: BackendChoice,
    /// Boot cold instead of restoring a snapshot of the booted guest.
    #[arg(long)]
    pub no_snapshot: bool,
    /// Machine-readable output: each topology's job with every test.
    #[arg(long)]
    pub json: bool,
}

/// Runs the selftests on each topology; exit 1 when a test failed, timed
/// out, crashed or was not run.
pub fn run(args: &SelftestArgs, manifests: Manifests) -> anyhow::Result<ExitCode> {
    if args.test_timeout == 0 {
        anyhow::bail!("--test-timeout must be at least 1 second");
    }
    let runner = super::run::new_runner(manifests)?;
    let kernel = super::guest::obtain_kernel(manifests.kernels, args.kernel.as_deref())?;
    let cancel = super::guest::cancel_on_signals()?;
    let job = SelftestJob {
        spec: SelftestSpec {
            filter: args.filter.clone(),
            test_timeout_s: args.test_timeout,
        },
        runner: args.runner.clone(),
    };
    let mut results: Vec<JobResult> = Vec::new();
    for (i, &topology) in args.topology.iter().enumerate() {
        let mut req = JobRequest::selftests(job.clone(), topology, kernel.clone());
        req.backend = args.backend;
        req.snapshot = !args.no_snapshot;
        req.cancel = Arc::clone(&cancel);
        req.repetition = Repetition { index: 1, of: 1 };
        let r = runner.run(req, &Progress::new())?;
        if !args.json {
            print_job(&r)?;
        }
        results.push(r);
        if cancel.load(std::sync::atomic::Ordering::Relaxed) && i + 1 < args.topology.len() {
            break;
        }
    }
    super::stats::save_run_dataset(&runner.run_dir);
    if let Some(path) = &args.junit {
        std::fs::write(path, ktstr_run::selftest::junit(&runner.run_id, &results))
            .with_context(|| path.display().to_string())?;
    }
    if args.json {
        let v: Vec<_> = results.iter().map(to_json).collect();
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else if results.len() > 1 {
        let columns: Vec<(String, _)> = results
            .iter()
            .map(|r| (topology_of(r), r.telemetry.selftests.clone()))
            .collect();
        outln!("{}", ktstr_run::selftest::matrix(&columns))?;
    }
    Ok(super::run::worst_exit(&results))
}

/// The topology of a job's label (`selftests 1n2l2c1t eevdf`).
fn topology_of(r: &JobResult) -> String {
    ktstr_run::selftest::topology_of(&r.label).to_string()
}

/// One job: its tests as a table, then its verdict's reasons.
fn print_job(r: &JobResult) -> anyhow::Result<()> {
    let cases = &r.telemetry.selftests;
    outln!(
        "{} [{:5.1}s] {}",
        r.verdict.outcome.label(),
        r.seconds,
        r.label
    )?;
    if !cases.is_empty() {
        let column = vec![(topology_of(r), cases.clone())];
        for line in ktstr_run::selftest::matrix(&column).lines() {
            outln!("  {line}")?;
        }
    }
    for reason in &r.verdict.reasons {
        for line in reason.lines() {
            outln!("  {line}")?;
        }
    }
    for note in &r.verdict.notes {
        outln!("  {note}")?;
    }
    if let Some(p) = &r.sidecar {
        outln!("  sidecar: {}", p.display())?;
    }
    Ok(())
}

fn to_json(r: &JobResult) -> serde_json::Value {
    serde_json::json!({
        "job": r.label,
        "outcome": r.verdict.outcome,
        "reasons": r.verdict.reasons,
        "seconds": r.seconds,
        "tests": r.telemetry.selftests,
        "sidecar": r.sidecar,
    })
}
