//! Script suites as tests: every script of a suite × every topology it
//! accepts is a test case of its own, named
//! `suite::scenario::preset[::scheduler]`, listed by `cargo test --test
//! suites -- --list` and run like any test (`cargo nextest run --test
//! suites --partition hash:K/N` spreads them over machines).
//!
//! The suite is the `scenarios/` catalog, or the directory in
//! `KTSTR_SUITE` (a scheduler's own repository can check in
//! `tests/ktstr/*.rhai` and point it there). Each script's smallest
//! topology runs by default; the others are ignored unless asked for
//! (`-- --include-ignored`, or `--ignored NAME`). Each case boots its VM
//! (`KTSTR_BACKEND`, default auto) with the default kernel, which must be
//! built (`ktstr kernel build`); without it a case fails under CI=true
//! and is reported as not run otherwise.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ktstr_engine::{catalog, check_file, CheckOptions};
use ktstr_kernel::{BootKernel, CacheLayout, KernelCache, KernelsToml, Resolver, Silent};
use ktstr_plan::verdict::Outcome;
use ktstr_plan::{Plan, TopologyReq};
use ktstr_run::{JobRequest, Runner};
use ktstr_sched::SchedulersToml;
use ktstr_topology::{presets, Topology};
use libtest_mimic::{Arguments, Failed, Trial};

/// The suite's directory and name.
fn suite() -> (PathBuf, String) {
    let dir = std::env::var_os("KTSTR_SUITE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios"));
    let name = dir
        .file_name()
        .map_or("suite".into(), |n| n.to_string_lossy().into_owned());
    (dir, name)
}

/// Every topology a plan runs on in the default sweep, smallest first.
fn topologies(plan: &Plan) -> Vec<(String, Topology)> {
    match &plan.topology {
        TopologyReq::Fixed { topology } => {
            let label =
                presets::name_of(topology).map_or_else(|| topology.to_string(), str::to_string);
            vec![(label, *topology)]
        }
        TopologyReq::Constraints(c) => presets::presets()
            .into_iter()
            .filter(|(_, t)| presets::in_default_sweep(t) && c.accepts(t))
            .map(|(n, t)| (n.to_string(), t))
            .collect(),
    }
}

fn main() {
    let args = Arguments::from_args();
    let (dir, suite) = suite();
    let entries = catalog::list(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut trials = Vec::new();
    for entry in entries {
        let checked = check_file(&entry.path, &CheckOptions::default());
        let Some(plan) = checked.plan.clone().filter(|_| checked.is_clean()) else {
            let path = entry.path.clone();
            let text = checked.render();
            trials.push(Trial::test(
                format!("{suite}::{}::check", entry.id),
                move || Err(format!("{}:\n{text}", path.display()).into()),
            ));
            continue;
        };
        let sched = plan.scheduler.as_ref().map(|s| format!("::{}", s.name));
        for (i, (preset, topology)) in topologies(&plan).into_iter().enumerate() {
            let name = format!(
                "{suite}::{}::{preset}{}",
                plan.name,
                sched.clone().unwrap_or_default()
            );
            let plan = plan.clone();
            trials
                .push(Trial::test(name, move || run_case(plan, topology)).with_ignored_flag(i > 0));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// The default kernel, located once.
fn kernel() -> Result<&'static BootKernel, String> {
    static KERNEL: OnceLock<Result<BootKernel, String>> = OnceLock::new();
    KERNEL
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let mirror = ktstr_kernel::KERNEL_ORG_MIRROR;
            let named =
                KernelsToml::load(&root.join("kernels.toml"), mirror).map_err(|e| e.to_string())?;
            let resolver = Resolver {
                cache: KernelCache::new(CacheLayout::from_env().map_err(|e| e.to_string())?),
                named: Some(named),
                mirror: mirror.to_string(),
            };
            resolver
                .locate(None, &Silent)
                .map_err(|e| format!("the default kernel is not built (ktstr kernel build): {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The runner every case shares: the repository's schedulers.toml, runs
/// under `target/ktstr/suites`.
fn runner() -> &'static Runner {
    static RUNNER: OnceLock<Runner> = OnceLock::new();
    RUNNER.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let names = ktstr_plan::thresholds::threshold_names();
        let registry =
            SchedulersToml::load(&root.join("schedulers.toml"), &names).expect("schedulers.toml");
        let run_id = format!("suites-{}", std::process::id());
        Runner {
            registry,
            layout: CacheLayout::from_env().expect("a cache directory"),
            agent: PathBuf::from(env!("CARGO_BIN_EXE_ktstr-guest-agent")),
            run_dir: root.join("target/ktstr/suites").join(&run_id),
            run_id,
        }
    })
}

fn run_case(plan: Plan, topology: Topology) -> Result<(), Failed> {
    let kernel = match kernel() {
        Ok(k) => k.clone(),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            return Err(format!("CI=true and {why}").into());
        }
        Err(why) => {
            eprintln!("not run: {why}");
            return Ok(());
        }
    };
    let mut req = JobRequest::new(plan, topology, kernel);
    if let Ok(b) = std::env::var("KTSTR_BACKEND") {
        req.backend = b.parse().map_err(|e: String| Failed::from(e))?;
    }
    let r = runner().run(req, &Silent).map_err(|e| e.to_string())?;
    match r.verdict.outcome {
        Outcome::Pass | Outcome::Skip => Ok(()),
        Outcome::Fail | Outcome::Inconclusive => Err(format!(
            "{}: {}\n{}\nsidecar: {}",
            r.verdict.outcome.label(),
            r.label,
            r.verdict.reasons.join("\n"),
            r.sidecar
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )
        .into()),
    }
}
