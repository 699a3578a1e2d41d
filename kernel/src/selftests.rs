//! The kernel's sched_ext selftests runner
//! (`tools/testing/selftests/sched_ext`), built from the same tree as the
//! kernel and kept in its cache entry as `selftests/runner`: by the
//! kernel build itself, or once, later, for an entry built before ktstr
//! built it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::{clang, llvm_strip};
use crate::cache::KernelCache;
use crate::error::{IoContext, KernelError, Result};
use crate::manifest::{CacheEntry, FileRecord, Manifest, SelftestsState, MANIFEST_FILE};
use crate::observer::Observer;
use crate::runner::run_step;

/// The runner's path inside a cache entry.
pub const RUNNER_PATH: &str = "selftests/runner";

/// The suite's directory in a kernel tree.
pub fn suite_dir(tree: &Path) -> PathBuf {
    tree.join("tools/testing/selftests/sched_ext")
}

/// Whether `tree` holds the suite (kernels before 6.12 do not).
pub fn tree_has_suite(tree: &Path) -> bool {
    suite_dir(tree).join("runner.c").is_file()
}

/// Builds the runner from `tree` into `out` (which it creates) against
/// the BTF of `vmlinux`, logging to `log`; returns its path.
pub fn make_runner(
    tree: &Path,
    out: &Path,
    vmlinux: &Path,
    jobs: usize,
    log: &Path,
    observer: &dyn Observer,
) -> Result<PathBuf> {
    if !Path::new("/usr/include/zstd.h").is_file() {
        return Err(KernelError::MissingTool {
            tool: "zstd.h (the selftests runner links libzstd)".into(),
            hint: "apt-get install libzstd-dev".into(),
        });
    }
    observer.phase("build the sched_ext selftests runner", None);
    std::fs::create_dir_all(out).at(out)?;
    let mut cmd = Command::new("make");
    cmd.arg("-C")
        .arg(suite_dir(tree))
        .arg(format!("OUTPUT={}", out.display()))
        .arg(format!("VMLINUX_BTF={}", vmlinux.display()))
        .arg(format!("CLANG={}", clang()))
        .arg(format!("LLVM_STRIP={}", llvm_strip()))
        .arg(format!("-j{jobs}"));
    run_step(
        "make -C tools/testing/selftests/sched_ext",
        cmd,
        log,
        observer,
    )?;
    let runner = out.join("runner");
    if !runner.is_file() {
        return Err(KernelError::MissingOutput {
            step: "make -C tools/testing/selftests/sched_ext".into(),
            path: runner,
        });
    }
    observer.finish("selftests runner built");
    Ok(runner)
}

/// `entry` with its selftests state settled: an entry built before ktstr
/// built the runner gets it now (built from its source tree, copied in,
/// recorded in its manifest with size and hash), or is recorded as
/// having none when its tree lacks the suite. Entries already settled
/// come back as they are.
pub fn ensure_runner(
    cache: &KernelCache,
    entry: CacheEntry,
    observer: &dyn Observer,
) -> Result<CacheEntry> {
    if entry.manifest.selftests != SelftestsState::NotBuilt {
        return Ok(entry);
    }
    let layout = cache.layout();
    let slot = entry.manifest.build_slot.clone();
    let _build = layout.lock(&format!("build-{slot}"))?;
    let _entry = layout.lock(&format!("entry-{}", entry.manifest.key))?;
    // Another process may have done it while this one waited.
    let mut manifest = Manifest::load(&entry.dir).map_err(|why| KernelError::Io {
        path: entry.dir.join(MANIFEST_FILE),
        error: std::io::Error::other(why),
    })?;
    if manifest.selftests != SelftestsState::NotBuilt {
        return Ok(CacheEntry {
            dir: entry.dir,
            manifest: Box::new(manifest),
        });
    }
    let tree = crate::source::tree_on_disk(layout, &manifest.source).ok_or_else(|| {
        KernelError::SourceGone {
            key: manifest.key.clone(),
        }
    })?;
    if tree_has_suite(&tree) {
        let objdir = layout.build_dir().join(&slot);
        std::fs::create_dir_all(&objdir).at(&objdir)?;
        let log = objdir.join("ktstr-selftests.log");
        std::fs::write(&log, b"").at(&log)?;
        let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
        let out = objdir.join("selftests-sched_ext");
        let built = make_runner(&tree, &out, &entry.vmlinux(), jobs, &log, observer)?;
        let dest = entry.dir.join(RUNNER_PATH);
        let parent = dest.parent().expect("RUNNER_PATH has a directory");
        std::fs::create_dir_all(parent).at(parent)?;
        let partial = entry.dir.join(format!("{RUNNER_PATH}.partial"));
        std::fs::copy(&built, &partial).at(&partial)?;
        std::fs::rename(&partial, &dest).at(&dest)?;
        manifest.files.retain(|f| f.path != RUNNER_PATH);
        manifest
            .files
            .push(FileRecord::of(&entry.dir, RUNNER_PATH)?);
        manifest.selftests = SelftestsState::Built;
    } else {
        manifest.selftests = SelftestsState::NotInTree;
    }
    manifest.rewrite(&entry.dir)?;
    Ok(CacheEntry {
        dir: entry.dir,
        manifest: Box::new(manifest),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{fake_entry, Lookup};
    use crate::layout::CacheLayout;
    use crate::source::SourceKind;

    fn cache() -> (tempfile::TempDir, KernelCache) {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(CacheLayout::at(dir.path()));
        (dir, cache)
    }

    #[test]
    fn an_old_entry_whose_tree_lacks_the_suite_is_recorded_as_having_none() {
        let (dir, cache) = cache();
        let mut entry = fake_entry(&cache, "k1", 1);
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("tools/sched_ext")).unwrap();
        std::fs::write(tree.join("Makefile"), "VERSION = 6\n").unwrap();
        entry.manifest.source.kind = SourceKind::Tree;
        entry.manifest.source.location = tree.display().to_string();
        entry.manifest.rewrite(&entry.dir).unwrap();
        let settled = ensure_runner(&cache, entry, &crate::Silent).unwrap();
        assert_eq!(settled.manifest.selftests, SelftestsState::NotInTree);
        assert!(settled.selftests_runner().is_none());
        // Recorded in the entry: a lookup sees it, and it stays valid.
        match cache.lookup("k1") {
            Lookup::Valid(e) => assert_eq!(e.manifest.selftests, SelftestsState::NotInTree),
            _ => panic!("the entry is no longer valid"),
        }
    }

    #[test]
    fn an_old_entry_whose_source_is_gone_says_how_to_rebuild() {
        let (_dir, cache) = cache();
        let entry = fake_entry(&cache, "k2", 1);
        let err = ensure_runner(&cache, entry, &crate::Silent).unwrap_err();
        assert!(matches!(err, KernelError::SourceGone { .. }), "{err}");
        assert!(
            err.to_string().contains("ktstr kernel build --force"),
            "{err}"
        );
    }

    #[test]
    fn a_built_runner_must_be_recorded_and_intact() {
        let (_dir, cache) = cache();
        let entry = fake_entry(&cache, "k3", 1);
        let mut m = (*entry.manifest).clone();
        m.selftests = SelftestsState::Built;
        assert!(m.verify(&entry.dir).unwrap_err().contains(RUNNER_PATH));
        std::fs::create_dir_all(entry.dir.join("selftests")).unwrap();
        std::fs::write(entry.dir.join(RUNNER_PATH), b"runner").unwrap();
        m.files
            .push(FileRecord::of(&entry.dir, RUNNER_PATH).unwrap());
        m.verify(&entry.dir).unwrap();
        std::fs::write(entry.dir.join(RUNNER_PATH), b"Runner").unwrap();
        assert!(m.verify(&entry.dir).is_err());
        // Manifests written before the field existed read as not built.
        let mut json: serde_json::Value = serde_json::to_value(&*entry.manifest).unwrap();
        json.as_object_mut().unwrap().remove("selftests");
        let old: Manifest = serde_json::from_value(json).unwrap();
        assert_eq!(old.selftests, SelftestsState::NotBuilt);
    }
}
