//! Building a guest kernel and the sample sched_ext schedulers into a cache
//! entry: configure (tinyconfig + fragments, then check nothing was
//! dropped), make, build `tools/sched_ext` and the sched_ext selftests
//! runner, stage, install atomically.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::cache::{KernelCache, Lookup};
use crate::error::{IoContext, KernelError, Result};
use crate::kconfig::{dropped_options, Fragment};
use crate::layout::remove_dir_if_exists;
use crate::manifest::{
    CacheEntry, FileRecord, Manifest, SelftestsState, ENTRY_FILES, MANIFEST_FORMAT,
};
use crate::observer::Observer;
use crate::prepare::{prepare, Prepared, ARCH};
use crate::runner::{on_path, run_step};
use crate::selftests::{make_runner, tree_has_suite, RUNNER_PATH};
use crate::source::{extract, SourceSpec};

/// The sample schedulers from `tools/sched_ext`, ktstr's default real
/// schedulers.
pub const SAMPLE_SCHEDULERS: [&str; 4] = ["scx_simple", "scx_qmap", "scx_central", "scx_flatcg"];

/// The file in a kbuild slot recording which config hash it was configured
/// for.
const CONFIGURED_MARKER: &str = ".ktstr-configured";

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// The source.
    pub source: SourceSpec,
    /// An optional fragment applied after ktstr's.
    pub extra_kconfig: Option<PathBuf>,
    /// Parallel make jobs (default: available CPUs).
    pub jobs: Option<usize>,
    /// Rebuild even if a valid entry exists.
    pub force: bool,
}

/// What [`build`] did.
#[derive(Debug, Clone)]
pub struct BuildOutcome {
    /// The valid entry.
    pub entry: CacheEntry,
    /// True when an existing entry was reused.
    pub cached: bool,
    /// Why an existing entry was rejected and rebuilt, if one was.
    pub rejected: Option<String>,
}

/// The clang used for BPF schedulers: `KTSTR_CLANG`, else `clang-19`.
pub fn clang() -> String {
    std::env::var("KTSTR_CLANG").unwrap_or_else(|_| "clang-19".into())
}

/// The llvm-strip that goes with [`clang`].
pub fn llvm_strip() -> String {
    let clang = clang();
    match clang.strip_prefix("clang") {
        Some(suffix) => format!("llvm-strip{suffix}"),
        None => "llvm-strip".into(),
    }
}

/// Checks that every tool the build needs is installed, naming the missing
/// ones and the package to install.
pub fn check_tools() -> Result<()> {
    let needs = [
        ("make", "make"),
        ("gcc", "gcc"),
        ("flex", "flex"),
        ("bison", "bison"),
        ("bc", "bc"),
        ("pahole", "dwarves"),
        (clang().as_str(), "clang-19"),
        (llvm_strip().as_str(), "llvm-19"),
    ]
    .map(|(t, p)| (t.to_string(), p));
    let missing: Vec<_> = needs.iter().filter(|(t, _)| !on_path(t)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(KernelError::MissingTool {
        tool: missing
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        hint: format!(
            "apt-get install {}",
            missing
                .iter()
                .map(|(_, p)| *p)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    })
}

/// Returns a valid cache entry for `req`, building it unless one exists.
pub fn build(
    cache: &KernelCache,
    req: &BuildRequest,
    observer: &dyn Observer,
) -> Result<BuildOutcome> {
    let layout = cache.layout();
    let prepared = prepare(layout, &req.source, req.extra_kconfig.as_deref(), observer)?;
    let mut rejected = None;
    match cache.lookup(&prepared.key) {
        Lookup::Valid(entry) if !req.force => {
            // An entry from before ktstr built the selftests runner gets it;
            // a failure there is the selftests' (a selftest job tries again
            // and says why), not the kernel's.
            let entry = match crate::selftests::ensure_runner(cache, entry.clone(), observer) {
                Ok(e) => e,
                Err(e) => {
                    observer.finish(&format!("warning: no selftests runner: {e}"));
                    entry
                }
            };
            return Ok(BuildOutcome {
                entry,
                cached: true,
                rejected: None,
            });
        }
        Lookup::Invalid(reason) => rejected = Some(reason),
        _ => {}
    }
    let _guard = layout.lock(&format!("build-{}", prepared.slot))?;
    // Another process may have finished the same key while we waited.
    if !req.force {
        if let Lookup::Valid(entry) = cache.lookup(&prepared.key) {
            return Ok(BuildOutcome {
                entry,
                cached: true,
                rejected,
            });
        }
    }
    check_tools()?;
    let started = Instant::now();
    let tree = match &prepared.tarball {
        Some(tarball) => extract(layout, tarball, &prepared.identity, observer)?,
        None => PathBuf::from(&prepared.identity.location),
    };
    let objdir = layout.build_dir().join(&prepared.slot);
    std::fs::create_dir_all(&objdir).at(&objdir)?;
    let log = objdir.join("ktstr-build.log");
    std::fs::write(&log, b"").at(&log)?;
    let jobs = req
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let kbuild = Kbuild {
        tree,
        objdir,
        jobs,
        log,
        observer,
    };
    kbuild.configure(&prepared)?;
    kbuild.make_kernel()?;
    kbuild.make_schedulers()?;
    let runner = kbuild.make_selftests();
    let entry = stage_and_install(
        cache,
        &kbuild.objdir,
        (runner.0, runner.1.as_deref()),
        &prepared,
        started.elapsed().as_secs_f64(),
    )?;
    Ok(BuildOutcome {
        entry,
        cached: false,
        rejected,
    })
}

/// One kbuild run: the source tree, its output slot, and where output goes.
struct Kbuild<'a> {
    tree: PathBuf,
    objdir: PathBuf,
    jobs: usize,
    log: PathBuf,
    observer: &'a dyn Observer,
}

impl Kbuild<'_> {
    fn make(&self) -> Command {
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(&self.tree)
            .arg(format!("O={}", self.objdir.display()));
        cmd
    }

    fn step(&self, step: &str, cmd: Command) -> Result<()> {
        run_step(step, cmd, &self.log, self.observer)
    }

    /// tinyconfig + fragments + olddefconfig, then verify every asked-for
    /// option survived. Skipped when the slot is already configured for
    /// this exact config hash (keeps kbuild incremental).
    fn configure(&self, prepared: &Prepared) -> Result<()> {
        let marker = self.objdir.join(CONFIGURED_MARKER);
        let config_path = self.objdir.join(".config");
        if std::fs::read_to_string(&marker).is_ok_and(|m| m.trim() == prepared.config_hash)
            && config_path.is_file()
        {
            return Ok(());
        }
        let _ = std::fs::remove_file(&marker);
        self.observer
            .phase("configure (tinyconfig + fragments)", None);
        let mut tiny = self.make();
        tiny.arg("tinyconfig");
        self.step("make tinyconfig", tiny)?;
        let frag_dir = self.objdir.join("ktstr-fragments");
        remove_dir_if_exists(&frag_dir)?;
        std::fs::create_dir_all(&frag_dir).at(&frag_dir)?;
        let mut merge = Command::new(self.tree.join("scripts/kconfig/merge_config.sh"));
        merge
            .current_dir(&self.tree)
            .arg("-m")
            .arg("-O")
            .arg(&self.objdir)
            .arg(&config_path);
        for (i, fragment) in prepared.fragments.iter().enumerate() {
            let path = frag_dir.join(format!("{i:02}.kconfig"));
            std::fs::write(&path, &fragment.text).at(&path)?;
            merge.arg(&path);
        }
        self.step("merge_config.sh", merge)?;
        let mut olddef = self.make();
        olddef.arg("olddefconfig");
        self.step("make olddefconfig", olddef)?;
        let final_config = std::fs::read_to_string(&config_path).at(&config_path)?;
        let dropped = dropped_options(&prepared.fragments, &final_config)?;
        if !dropped.is_empty() {
            return Err(KernelError::DroppedOptions(dropped));
        }
        std::fs::write(&marker, &prepared.config_hash).at(&marker)?;
        self.observer.finish("configured");
        Ok(())
    }

    fn make_kernel(&self) -> Result<()> {
        self.observer
            .phase("build kernel (make vmlinux bzImage)", None);
        let mut cmd = self.make();
        cmd.arg(format!("-j{}", self.jobs))
            .args(["vmlinux", "bzImage"]);
        self.step("make vmlinux bzImage", cmd)?;
        self.observer.finish("kernel built");
        Ok(())
    }

    fn make_schedulers(&self) -> Result<()> {
        self.observer
            .phase("build sched_ext sample schedulers", None);
        let out = self.objdir.join("sched_ext");
        std::fs::create_dir_all(&out).at(&out)?;
        let mut cmd = Command::new("make");
        cmd.arg("-C")
            .arg(self.tree.join("tools/sched_ext"))
            .arg(format!("O={}", out.display()))
            .arg(format!(
                "VMLINUX_BTF={}",
                self.objdir.join("vmlinux").display()
            ))
            .arg(format!("CLANG={}", clang()))
            .arg(format!("LLVM_STRIP={}", llvm_strip()))
            .arg(format!("-j{}", self.jobs))
            .args(SAMPLE_SCHEDULERS);
        self.step("make -C tools/sched_ext", cmd)?;
        self.observer.finish("schedulers built");
        Ok(())
    }
}

impl Kbuild<'_> {
    /// The selftests runner and the state it leaves the entry in: built,
    /// not in the tree, or not built when its build failed (the runner is
    /// not the kernel: a selftest job tries again and says why).
    fn make_selftests(&self) -> (SelftestsState, Option<PathBuf>) {
        if !tree_has_suite(&self.tree) {
            return (SelftestsState::NotInTree, None);
        }
        let out = self.objdir.join("selftests-sched_ext");
        let vmlinux = self.objdir.join("vmlinux");
        match make_runner(
            &self.tree,
            &out,
            &vmlinux,
            self.jobs,
            &self.log,
            self.observer,
        ) {
            Ok(runner) => (SelftestsState::Built, Some(runner)),
            Err(e) => {
                self.observer
                    .finish(&format!("warning: no selftests runner: {e}"));
                (SelftestsState::NotBuilt, None)
            }
        }
    }
}

fn stage_and_install(
    cache: &KernelCache,
    objdir: &Path,
    selftests: (SelftestsState, Option<&Path>),
    prepared: &Prepared,
    seconds: f64,
) -> Result<CacheEntry> {
    let layout = cache.layout();
    // The caller holds the slot lock, which covers every build of this key.
    let staging = cache.new_staging_dir(&prepared.key)?;
    std::fs::create_dir_all(staging.join("sched")).at(&staging)?;
    // The entry's files, in the order of `ENTRY_FILES`.
    let built = ["arch/x86/boot/bzImage", "vmlinux", ".config", "System.map"];
    let mut copies: Vec<(PathBuf, String)> = built
        .iter()
        .zip(ENTRY_FILES)
        .map(|(from, rel)| (objdir.join(from), rel.to_string()))
        .collect();
    for name in SAMPLE_SCHEDULERS {
        copies.push((
            objdir.join("sched_ext/build/bin").join(name),
            format!("sched/{name}"),
        ));
    }
    if let Some(runner) = selftests.1 {
        std::fs::create_dir_all(staging.join("selftests")).at(&staging)?;
        copies.push((runner.to_path_buf(), RUNNER_PATH.to_string()));
    }
    let mut files = Vec::new();
    for (from, rel) in &copies {
        if !from.is_file() {
            return Err(KernelError::MissingOutput {
                step: "build".into(),
                path: from.clone(),
            });
        }
        let to = staging.join(rel);
        std::fs::copy(from, &to).at(&to)?;
        files.push(FileRecord::of(&staging, rel)?);
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        key: prepared.key.clone(),
        version: prepared.identity.version.clone(),
        source: prepared.identity.clone(),
        arch: ARCH.into(),
        config_hash: prepared.config_hash.clone(),
        fragments: prepared
            .fragments
            .iter()
            .map(|f: &Fragment| f.origin.to_string_lossy().into_owned())
            .collect(),
        build_slot: prepared.slot.clone(),
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        build_seconds: seconds,
        files,
        schedulers: SAMPLE_SCHEDULERS.iter().map(|s| s.to_string()).collect(),
        selftests: selftests.0,
    };
    let _entry_guard = layout.lock(&format!("entry-{}", prepared.key))?;
    cache.install(&staging, &manifest)
}
