//! `ktstr run FILE...`: check each script, boot a VM of its topology,
//! run its Plan in the guest, judge the results, write a sidecar.
//!
//! - [`job`]: one script: checked, overrides applied, topology chosen,
//!   handed to `ktstr-run` (which boots, judges and writes the sidecar).
//! - [`report`]: the human and JSON output of a job.

mod job;
mod report;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ktstr_plan::verdict::Outcome;
use ktstr_proto::Fault;
use ktstr_run::{JobResult, Repetition, Runner};
use ktstr_topology::Topology;
use ktstr_vmm::probe::BackendChoice;

/// Arguments of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Scenario scripts.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Kernel to boot (see `ktstr kernel build --help`).
    #[arg(long, value_name = "ID")]
    pub kernel: Option<String>,
    /// Scheduler (sample scheduler name, one installed with `ktstr sched
    /// install`, program on PATH, or path); overrides the script's.
    #[arg(long, value_name = "NAME|PATH")]
    pub scheduler: Option<String>,
    /// Argument for the scheduler (repeatable).
    #[arg(long = "sched-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub sched_args: Vec<String>,
    /// A host file to ship into the guest as /files/NAME, for the
    /// scheduler's arguments (`--sched-file layered.json --sched-arg
    /// --config --sched-arg /files/layered.json`; repeatable).
    #[arg(long = "sched-file", value_name = "PATH")]
    pub sched_files: Vec<PathBuf>,
    /// Seconds the scheduler may take to attach (default: schedulers.toml's
    /// value for it, else 90).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub attach_timeout: Option<u64>,
    /// Topology; overrides the script's.
    #[arg(long, short, value_name = "T")]
    pub topology: Option<Topology>,
    /// Duration in seconds (more than 0, at most 3600); overrides the
    /// script's.
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub duration: Option<f64>,
    /// A threshold over every other layer, e.g. max_gap_ms=3000 (repeatable).
    #[arg(long = "threshold", value_name = "KEY=VALUE", value_parser = parse_threshold)]
    pub thresholds: Vec<(String, f64)>,
    /// Run each script N times in a row (a fresh VM each time) and report
    /// how many passed.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub repeat: u32,
    /// VM backend (auto, kvm, qemu-kvm, qemu-tcg).
    #[arg(long, default_value = "auto", env = "KTSTR_BACKEND", value_name = "B")]
    pub backend: BackendChoice,
    /// The host-side monitor's sampling period: every guest CPU's run
    /// queue is read from guest memory this often (1 to 10000 ms).
    #[arg(long, default_value_t = ktstr_plan::monitor::DEFAULT_MONITOR_PERIOD_MS, value_name = "MS",
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub monitor_ms: u32,
    /// Run without the host-side monitor.
    #[arg(long)]
    pub no_monitor: bool,
    /// Boot cold instead of restoring a snapshot of the booted guest
    /// (snapshots are taken once per kernel, topology, memory and
    /// initramfs, and kept in the cache).
    #[arg(long)]
    pub no_snapshot: bool,
    /// Machine-readable output (one JSON object per job, as an array).
    #[arg(long)]
    pub json: bool,
    /// Inject a fault in the guest (for ktstr's own tests).
    #[arg(long, hide = true, value_parser = super::vm::parse_fault)]
    pub fault: Option<Fault>,
}

pub(crate) fn parse_threshold(s: &str) -> Result<(String, f64), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not KEY=VALUE"))?;
    let v: f64 = v
        .parse()
        .map_err(|_| format!("`{v}` is not a number >= 0"))?;
    ktstr_plan::thresholds::check_threshold(k, v)?;
    Ok((k.to_string(), v))
}

/// `--duration`: the same bounds as the script's `duration(...)`.
fn parse_duration(s: &str) -> Result<f64, String> {
    let secs: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    ktstr_plan::check_duration(secs)?;
    Ok(secs)
}

/// Runs every file (`repeat` times); the exit code is the worst outcome's.
pub fn run(args: RunArgs, manifests: super::Manifests) -> anyhow::Result<ExitCode> {
    let runner = new_runner(manifests)?;
    let mut ctx = job::Context {
        args: &args,
        kernels_toml: manifests.kernels,
        runner: &runner,
        kernel: None,
        cancel: super::guest::cancel_on_signals()?,
    };
    let mut results: Vec<JobResult> = Vec::new();
    for file in &args.files {
        let mut outcomes = Vec::new();
        for i in 0..args.repeat {
            let rep = Repetition {
                index: i + 1,
                of: args.repeat,
            };
            let r = job::run_file(&mut ctx, file, rep)?;
            if !args.json {
                report::print_result(&r)?;
            }
            outcomes.push(r.verdict.outcome);
            results.push(r);
        }
        if args.repeat > 1 && !args.json {
            outln!("{}", repeat_summary(file, &outcomes))?;
        }
    }
    super::stats::save_run_dataset(&runner.run_dir);
    if args.json {
        let v: Vec<_> = results.iter().map(report::to_json).collect();
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
    }
    Ok(worst_exit(&results))
}

/// The run library's settings for a new run: schedulers.toml, the cache,
/// the guest agent, and a fresh run directory.
pub(crate) fn new_runner(manifests: super::Manifests) -> anyhow::Result<Runner> {
    let run_id = run_id();
    Ok(Runner {
        registry: super::sched::registry(manifests.schedulers)?,
        layout: ktstr_kernel::CacheLayout::from_env()?,
        agent: super::guest::guest_agent()?,
        run_dir: runs_dir().join(&run_id),
        run_id,
    })
}

/// The exit code of the worst outcome among `results` (0 with none).
pub(crate) fn worst_exit(results: &[JobResult]) -> ExitCode {
    let worst = results
        .iter()
        .map(|r| r.verdict.outcome)
        .max()
        .unwrap_or(Outcome::Pass);
    ExitCode::from(worst.exit_code())
}

/// "`file`: 9/10 passed, 1 failed (10 %), 0 inconclusive, 0 skipped".
fn repeat_summary(file: &Path, outcomes: &[Outcome]) -> String {
    let mut n: BTreeMap<Outcome, usize> = BTreeMap::new();
    for o in outcomes {
        *n.entry(*o).or_default() += 1;
    }
    let get = |o| n.get(&o).copied().unwrap_or(0);
    let total = outcomes.len();
    let failed = get(Outcome::Fail);
    format!(
        "{}: {}/{total} passed, {failed} failed ({:.0} %), {} inconclusive, {} skipped",
        file.display(),
        get(Outcome::Pass),
        100.0 * failed as f64 / total.max(1) as f64,
        get(Outcome::Inconclusive),
        get(Outcome::Skip)
    )
}

/// Where runs go: `KTSTR_RUNS_DIR`, else `target/ktstr/runs`.
pub(crate) fn runs_dir() -> PathBuf {
    std::env::var_os("KTSTR_RUNS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/ktstr/runs"))
}

/// A new run's id: the time and this process.
pub(crate) fn run_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{secs}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_and_unknown_names_are_refused() {
        assert_eq!(
            parse_threshold("max_gap_ms=3000").unwrap(),
            ("max_gap_ms".to_string(), 3000.0)
        );
        assert!(parse_threshold("max_gaps=1")
            .unwrap_err()
            .contains("unknown threshold"));
        assert!(parse_threshold("max_gap_ms=-1").is_err());
        assert!(parse_threshold("max_gap_ms").is_err());
    }

    #[test]
    fn repeat_summaries_count_each_outcome() {
        let s = repeat_summary(
            Path::new("a.rhai"),
            &[Outcome::Pass, Outcome::Fail, Outcome::Pass, Outcome::Pass],
        );
        assert_eq!(
            s,
            "a.rhai: 3/4 passed, 1 failed (25 %), 0 inconclusive, 0 skipped"
        );
    }
}
