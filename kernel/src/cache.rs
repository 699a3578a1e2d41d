//! The kernel cache: looking entries up (verified, never trusting a
//! half-written one), installing new ones atomically, listing and cleaning.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::layout::{discard_dir, remove_dir_if_exists, CacheLayout};
use crate::manifest::{CacheEntry, Manifest, MANIFEST_FILE};

/// Name prefix of entries being written (`.staging-<key>-<pid>`).
const STAGING_PREFIX: &str = ".staging-";

/// What a key lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// A complete entry whose files all match their manifest.
    Valid(CacheEntry),
    /// A directory exists but fails verification (the reason says why).
    Invalid(String),
    /// No such entry.
    Absent,
}

/// One row of [`KernelCache::list`].
#[derive(Debug)]
pub struct Listed {
    /// Directory name.
    pub key: String,
    /// The entry, when its manifest loads.
    pub manifest: Option<Manifest>,
    /// Why it is unusable, if it is.
    pub problem: Option<String>,
}

/// A kernel cache rooted at a [`CacheLayout`].
#[derive(Debug, Clone)]
pub struct KernelCache {
    layout: CacheLayout,
}

impl KernelCache {
    /// The cache at `layout`.
    pub fn new(layout: CacheLayout) -> Self {
        KernelCache { layout }
    }

    /// Its layout.
    pub fn layout(&self) -> &CacheLayout {
        &self.layout
    }

    /// Looks `key` up, verifying every file of the entry.
    pub fn lookup(&self, key: &str) -> Lookup {
        let dir = self.layout.entry_dir(key);
        if !dir.is_dir() {
            return Lookup::Absent;
        }
        match load_verified(&dir) {
            Ok(entry) if entry.manifest.key == key => Lookup::Valid(entry),
            Ok(entry) => Lookup::Invalid(format!(
                "manifest key {} differs from directory",
                entry.manifest.key
            )),
            Err(reason) => Lookup::Invalid(reason),
        }
    }

    /// Makes `staging` (a directory holding every file of `manifest`) the
    /// entry for `manifest.key`: writes the manifest, syncs, and renames it
    /// into place, discarding any invalid entry that was there.
    pub fn install(&self, staging: &Path, manifest: &Manifest) -> Result<CacheEntry> {
        let manifest_path = staging.join(MANIFEST_FILE);
        let json = serde_json::to_vec_pretty(manifest).expect("manifest serializes");
        std::fs::write(&manifest_path, json).at(&manifest_path)?;
        for rec in &manifest.files {
            let p = staging.join(&rec.path);
            std::fs::File::open(&p).and_then(|f| f.sync_all()).at(&p)?;
        }
        let dest = self.layout.entry_dir(&manifest.key);
        discard_dir(&dest)?;
        std::fs::rename(staging, &dest).at(&dest)?;
        if let Ok(d) = std::fs::File::open(self.layout.kernels_dir()) {
            let _ = d.sync_all();
        }
        Ok(CacheEntry {
            dir: dest,
            manifest: Box::new(manifest.clone()),
        })
    }

    /// Every entry directory (not staging or trash), newest first; each
    /// verified when `verify` is set.
    pub fn list(&self, verify: bool) -> Result<Vec<Listed>> {
        let dir = self.layout.kernels_dir();
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(crate::KernelError::io(dir, e)),
        };
        let mut rows = Vec::new();
        for entry in rd.flatten() {
            let key = entry.file_name().to_string_lossy().into_owned();
            if key.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            let (manifest, problem) = match Manifest::load(&entry.path()) {
                Ok(m) => {
                    let problem = if verify {
                        m.verify(&entry.path()).err()
                    } else {
                        None
                    };
                    (Some(m), problem)
                }
                Err(e) => (None, Some(e)),
            };
            rows.push(Listed {
                key,
                manifest,
                problem,
            });
        }
        rows.sort_by(|a, b| {
            let t = |l: &Listed| l.manifest.as_ref().map_or(0, |m| m.created_unix);
            t(b).cmp(&t(a)).then_with(|| a.key.cmp(&b.key))
        });
        Ok(rows)
    }

    /// Removes all but the `keep` newest valid entries, every invalid entry,
    /// leftovers of interrupted writes, and build and source directories no
    /// kept entry uses. Returns the keys removed.
    pub fn clean(&self, keep: usize) -> Result<Vec<String>> {
        let rows = self.list(true)?;
        let mut kept = Vec::new();
        let mut removed = Vec::new();
        for row in rows {
            match row.manifest {
                Some(m) if row.problem.is_none() && kept.len() < keep => kept.push(m),
                _ => {
                    let _guard = self.layout.lock(&format!("entry-{}", row.key))?;
                    discard_dir(&self.layout.entry_dir(&row.key))?;
                    removed.push(row.key);
                }
            }
        }
        let slots: BTreeSet<&str> = kept.iter().map(|m| m.build_slot.as_str()).collect();
        self.remove_unused(
            &self.layout.build_dir(),
            |name| slots.contains(name),
            "build-",
        )?;
        let sources: BTreeSet<String> = kept
            .iter()
            .map(|m| m.source.content_id[..16].to_string())
            .collect();
        self.remove_unused(
            &self.layout.src_dir(),
            |name| sources.contains(name),
            "src-",
        )?;
        self.remove_leftovers(&[STAGING_PREFIX, ".trash-"])?;
        Ok(removed)
    }

    /// A fresh staging directory for `key`, named for this process. The
    /// caller must hold the key's build lock: any other staging directory
    /// of the key is then left over from a killed build, and is removed.
    pub fn new_staging_dir(&self, key: &str) -> Result<PathBuf> {
        let prefix = format!("{STAGING_PREFIX}{key}-");
        self.remove_leftovers(&[&prefix])?;
        Ok(self
            .layout
            .kernels_dir()
            .join(format!("{prefix}{}", std::process::id())))
    }

    /// Removes every directory in `kernels/` whose name starts with one of
    /// `prefixes` (interrupted writes: staging and trash).
    fn remove_leftovers(&self, prefixes: &[&str]) -> Result<()> {
        let Ok(rd) = std::fs::read_dir(self.layout.kernels_dir()) else {
            return Ok(());
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if prefixes.iter().any(|p| name.starts_with(p)) {
                remove_dir_if_exists(&e.path())?;
            }
        }
        Ok(())
    }

    fn remove_unused(
        &self,
        dir: &Path,
        used: impl Fn(&str) -> bool,
        lock_prefix: &str,
    ) -> Result<()> {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.trim_start_matches(STAGING_PREFIX);
            if used(stem) {
                continue;
            }
            let _guard = self.layout.lock(&format!("{lock_prefix}{stem}"))?;
            remove_dir_if_exists(&e.path())?;
        }
        Ok(())
    }
}

fn load_verified(dir: &Path) -> std::result::Result<CacheEntry, String> {
    let manifest = Manifest::load(dir)?;
    manifest.verify(dir)?;
    Ok(CacheEntry {
        dir: dir.to_path_buf(),
        manifest: Box::new(manifest),
    })
}

/// Installs a complete entry `key` of 4 KiB fake files (created at Unix
/// time `created`), for tests of what reads the cache.
#[cfg(any(test, feature = "test-support"))]
pub fn fake_entry(cache: &KernelCache, key: &str, created: u64) -> CacheEntry {
    use crate::manifest::{FileRecord, ENTRY_FILES, MANIFEST_FORMAT};
    use crate::source::{SourceIdentity, SourceKind};
    let staging = cache.layout().kernels_dir().join(format!(".staging-{key}"));
    std::fs::create_dir_all(&staging).expect("staging dir");
    for f in ENTRY_FILES {
        std::fs::write(staging.join(f), vec![7u8; 4096]).expect("fake file");
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        key: key.into(),
        version: "6.12.117".into(),
        source: SourceIdentity {
            kind: SourceKind::Tarball,
            location: "/x.tar.xz".into(),
            version: "6.12.117".into(),
            content_id: "ab".repeat(32),
        },
        arch: "x86_64".into(),
        config_hash: "cd".repeat(32),
        fragments: vec!["ktstr.kconfig".into()],
        build_slot: format!("slot-{key}"),
        created_unix: created,
        build_seconds: 1.0,
        files: ENTRY_FILES
            .iter()
            .map(|f| FileRecord::of(&staging, f).expect("recorded"))
            .collect(),
        schedulers: vec![],
        selftests: Default::default(),
    };
    cache.install(&staging, &manifest).expect("installed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_or_altered_entry_is_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(CacheLayout::at(tmp.path()));
        let entry = fake_entry(&cache, "k1", 1);
        assert!(matches!(cache.lookup("k1"), Lookup::Valid(_)));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(entry.bzimage())
            .unwrap();
        f.set_len(100).unwrap();
        match cache.lookup("k1") {
            Lookup::Invalid(r) => assert!(r.contains("bzImage is 100 bytes"), "{r}"),
            other => panic!("expected invalid, got {other:?}"),
        }
        std::fs::write(entry.bzimage(), vec![8u8; 4096]).unwrap();
        match cache.lookup("k1") {
            Lookup::Invalid(r) => assert!(r.contains("content differs"), "{r}"),
            other => panic!("expected invalid, got {other:?}"),
        }
        std::fs::remove_file(entry.dir.join(MANIFEST_FILE)).unwrap();
        assert!(matches!(cache.lookup("k1"), Lookup::Invalid(_)));
        let fresh = fake_entry(&cache, "k2", 2);
        let mut m = fresh.manifest.as_ref().clone();
        m.files.clear();
        std::fs::write(
            fresh.dir.join(MANIFEST_FILE),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
        match cache.lookup("k2") {
            Lookup::Invalid(r) => assert!(r.contains("does not record bzImage"), "{r}"),
            other => panic!("an empty file list passed: {other:?}"),
        }
        assert!(matches!(cache.lookup("nope"), Lookup::Absent));
    }

    #[test]
    fn clean_keeps_newest_and_drops_invalid() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(CacheLayout::at(tmp.path()));
        fake_entry(&cache, "old", 1);
        fake_entry(&cache, "new", 3);
        let broken = fake_entry(&cache, "broken", 5);
        std::fs::remove_file(broken.bzimage()).unwrap();
        std::fs::create_dir_all(cache.layout().kernels_dir().join(".staging-x")).unwrap();
        let mut removed = cache.clean(1).unwrap();
        removed.sort();
        assert_eq!(removed, ["broken", "old"]);
        let left: Vec<_> = std::fs::read_dir(cache.layout().kernels_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(left, ["new"]);
    }
}
