//! The manifest of one cache entry: what was built from what, and the size
//! and BLAKE3 hash of every file, so a truncated or corrupt entry is caught
//! before it is used.

use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};
use crate::source::SourceIdentity;

/// Manifest file name inside an entry directory.
pub const MANIFEST_FILE: &str = "manifest.json";

/// Manifest format version; entries with another version are rebuilt.
pub const MANIFEST_FORMAT: u32 = 1;

/// The files every entry has besides its schedulers (`sched/<name>`).
pub const ENTRY_FILES: [&str; 4] = ["bzImage", "vmlinux", "config", "System.map"];

/// One file of an entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileRecord {
    /// Path relative to the entry directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 hash, hex.
    pub blake3: String,
}

impl FileRecord {
    /// Records `rel` inside `dir` by size and hash.
    pub fn of(dir: &Path, rel: &str) -> Result<Self> {
        let path = dir.join(rel);
        let size = std::fs::metadata(&path).at(&path)?.len();
        Ok(FileRecord {
            path: rel.to_string(),
            size,
            blake3: hash_file(&path)?,
        })
    }
}

/// BLAKE3 of a file, memory-mapped and hashed on all cores.
pub fn hash_file(path: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_mmap_rayon(path).at(path)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Everything recorded about one built kernel.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`] at write time.
    pub format: u32,
    /// The cache key (also the entry's directory name).
    pub key: String,
    /// Kernel version.
    pub version: String,
    /// Where the source came from, identified by content.
    pub source: SourceIdentity,
    /// Target architecture (`x86_64`).
    pub arch: String,
    /// Hash of the merged kconfig inputs.
    pub config_hash: String,
    /// The fragments applied after tinyconfig, in order.
    pub fragments: Vec<String>,
    /// The kbuild output slot this entry was built in.
    pub build_slot: String,
    /// Seconds since the epoch when the entry was completed.
    pub created_unix: u64,
    /// Wall-clock seconds the build took.
    pub build_seconds: f64,
    /// Every file of the entry.
    pub files: Vec<FileRecord>,
    /// Names of the scheduler binaries under `sched/`.
    pub schedulers: Vec<String>,
    /// Whether the entry holds the sched_ext selftests runner
    /// ([`crate::selftests::RUNNER_PATH`]).
    #[serde(default)]
    pub selftests: SelftestsState,
}

/// Whether a cache entry holds the sched_ext selftests runner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SelftestsState {
    /// Not built yet: the entry predates ktstr building it
    /// ([`crate::selftests::ensure_runner`] builds it on first use).
    #[default]
    NotBuilt,
    /// Built, recorded among the entry's files.
    Built,
    /// The kernel's tree has no `tools/testing/selftests/sched_ext`.
    NotInTree,
}

impl Manifest {
    /// Reads the manifest of the entry in `dir`.
    pub fn load(dir: &Path) -> std::result::Result<Self, String> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        if m.format != MANIFEST_FORMAT {
            return Err(format!(
                "manifest format {} (want {MANIFEST_FORMAT})",
                m.format
            ));
        }
        Ok(m)
    }

    /// Checks that the manifest records every file an entry must have
    /// (and only plain relative paths), then every file against its
    /// recorded size and hash; returns the first problem found.
    pub fn verify(&self, dir: &Path) -> std::result::Result<(), String> {
        let recorded = |rel: &str| self.files.iter().any(|f| f.path == rel);
        let schedulers = self.schedulers.iter().map(|s| format!("sched/{s}"));
        let runner = (self.selftests == SelftestsState::Built)
            .then(|| crate::selftests::RUNNER_PATH.to_string());
        let required = ENTRY_FILES
            .iter()
            .map(|f| f.to_string())
            .chain(schedulers)
            .chain(runner);
        for rel in required {
            if !recorded(&rel) {
                return Err(format!("the manifest does not record {rel}"));
            }
        }
        if let Some(bad) = self.files.iter().find(|f| !is_plain_relative(&f.path)) {
            return Err(format!(
                "the manifest names a file outside the entry: {}",
                bad.path
            ));
        }
        for rec in &self.files {
            let path = dir.join(&rec.path);
            let size = std::fs::metadata(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .len();
            if size != rec.size {
                return Err(format!(
                    "{} is {size} bytes, manifest says {}",
                    rec.path, rec.size
                ));
            }
            let hash = hash_file(&path).map_err(|e| e.to_string())?;
            if hash != rec.blake3 {
                return Err(format!(
                    "{} content differs from its manifest hash",
                    rec.path
                ));
            }
        }
        Ok(())
    }
}

impl Manifest {
    /// Replaces the manifest of the entry in `dir` (written beside it,
    /// then renamed over it).
    pub fn rewrite(&self, dir: &Path) -> Result<()> {
        let path = dir.join(MANIFEST_FILE);
        let partial = dir.join(format!("{MANIFEST_FILE}.partial"));
        let json = serde_json::to_vec_pretty(self).expect("manifest serializes");
        std::fs::write(&partial, json).at(&partial)?;
        std::fs::rename(&partial, &path).at(&path)
    }
}

/// Whether `rel` stays inside the entry: relative, no `..`.
fn is_plain_relative(rel: &str) -> bool {
    let p = Path::new(rel);
    !rel.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// A verified cache entry.
#[derive(Debug, Clone)]
pub struct CacheEntry {
    /// The entry directory.
    pub dir: PathBuf,
    /// Its manifest (boxed: entries travel inside small enums).
    pub manifest: Box<Manifest>,
}

impl CacheEntry {
    /// The compressed boot image.
    pub fn bzimage(&self) -> PathBuf {
        self.dir.join("bzImage")
    }

    /// The uncompressed ELF kernel with BTF and symbols.
    pub fn vmlinux(&self) -> PathBuf {
        self.dir.join("vmlinux")
    }

    /// The final `.config`.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// `System.map`.
    pub fn system_map(&self) -> PathBuf {
        self.dir.join("System.map")
    }

    /// The sched_ext selftests runner, if the entry has it.
    pub fn selftests_runner(&self) -> Option<PathBuf> {
        (self.manifest.selftests == SelftestsState::Built)
            .then(|| self.dir.join(crate::selftests::RUNNER_PATH))
    }

    /// The path of scheduler `name` (e.g. `scx_simple`) if this entry has it.
    pub fn scheduler(&self, name: &str) -> Option<PathBuf> {
        self.manifest
            .schedulers
            .iter()
            .any(|s| s == name)
            .then(|| self.dir.join("sched").join(name))
    }
}
