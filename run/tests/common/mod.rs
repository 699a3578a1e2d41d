//! Helpers for the run library's VM tests: the built kernel, the guest
//! agent, a private runner, and plans from inline scripts.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use ktstr_kernel::{BootKernel, CacheLayout, KernelCache, KernelsToml, Resolver, Silent};
use ktstr_plan::Plan;
use ktstr_run::Runner;
use ktstr_sched::SchedulersToml;
use ktstr_vmm::probe::BackendChoice;

/// True under CI, where a test that cannot find what it needs must fail
/// instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Fails under CI, else says why the test does not run.
pub fn skip(why: &str) {
    assert!(!in_ci(), "CI=true and {why}");
    eprintln!("SKIP: {why}");
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The default kernel, already built in the user's cache (what
/// `.ci/run` builds); None (skip) when it is not.
pub fn built_kernel() -> Option<BootKernel> {
    let mirror = ktstr_kernel::KERNEL_ORG_MIRROR;
    let named = KernelsToml::load(&repo().join("kernels.toml"), mirror).expect("kernels.toml");
    let resolver = Resolver {
        cache: KernelCache::new(CacheLayout::from_env().expect("a cache directory")),
        named: Some(named),
        mirror: mirror.to_string(),
    };
    match resolver.locate(None, &Silent) {
        Ok(k) => Some(k),
        Err(e) => {
            skip(&format!(
                "the default kernel is not built (ktstr kernel build): {e}"
            ));
            None
        }
    }
}

/// The guest agent the workspace built beside the test binaries
/// (`target/<profile>/ktstr-guest-agent`), or `KTSTR_GUEST_AGENT`.
pub fn agent() -> Option<PathBuf> {
    let exe = std::env::current_exe().expect("test binary");
    // target/<profile>/deps/<test> -> target/<profile>/<agent>
    let deps = exe.parent().expect("deps dir");
    match ktstr_run::vm::guest_agent(deps) {
        Ok(p) => Some(p),
        Err(e) => {
            skip(&format!("{e} (cargo test --workspace builds it)"));
            None
        }
    }
}

/// The backend the tests use: `KTSTR_BACKEND`, else QEMU TCG (no probe).
pub fn backend() -> BackendChoice {
    std::env::var("KTSTR_BACKEND")
        .unwrap_or_else(|_| "qemu-tcg".into())
        .parse()
        .expect("KTSTR_BACKEND")
}

/// A runner with a private cache and run directory (both in `tmp`).
pub fn runner(tmp: &Path, agent: PathBuf) -> Runner {
    let registry = SchedulersToml::load(
        &repo().join("schedulers.toml"),
        &ktstr_plan::thresholds::threshold_names(),
    )
    .expect("schedulers.toml");
    Runner {
        registry,
        layout: CacheLayout::at(tmp.join("cache")),
        agent,
        run_dir: tmp.join("runs"),
        run_id: "test".into(),
    }
}

/// The Plan of an inline script (which must check clean).
pub fn plan(src: &str) -> Plan {
    let c = ktstr_engine::check_source("inline.rhai", src, None, &Default::default());
    assert!(c.is_clean(), "{}", c.render());
    c.plan.expect("a plan")
}

/// One VM test at a time in this binary (TCG guests on two host cores
/// slow each other past their thresholds); the concurrency test runs its
/// two VMs inside one lock.
pub fn vm_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}
