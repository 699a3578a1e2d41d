//! Where the kernel cache lives on disk, and the file locks that keep
//! concurrent ktstr processes from corrupting it.
//!
//! ```text
//! $KTSTR_CACHE_DIR  (default $XDG_CACHE_HOME/ktstr)
//! ├── kernels/<key>/          complete entries only (renamed into place)
//! ├── kernels/.staging-*      entries being written
//! ├── work/src/<source-id>/   extracted source trees
//! ├── work/build/<slot>/      kbuild output directories (incremental rebuilds)
//! ├── work/downloads/         verified kernel.org tarballs
//! ├── work/locks/             one lock file per source and build slot
//! └── work/sources.json       memo: tarball fingerprint -> content hash, version
//! ```

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, KernelError, Result};

/// The directories of one kernel cache.
#[derive(Debug, Clone)]
pub struct CacheLayout {
    root: PathBuf,
}

impl CacheLayout {
    /// The layout rooted at `root` (entries go to `root/kernels`).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        CacheLayout { root: root.into() }
    }

    /// The layout from the environment: `KTSTR_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/ktstr`, else `~/.cache/ktstr`.
    pub fn from_env() -> Result<Self> {
        if let Some(dir) = std::env::var_os("KTSTR_CACHE_DIR") {
            if dir.is_empty() {
                return Err(KernelError::EmptyCacheDir);
            }
            return Ok(Self::at(dir));
        }
        let base = dirs::cache_dir().ok_or(KernelError::NoCacheDir)?;
        Ok(Self::at(base.join("ktstr")))
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Directory holding complete cache entries.
    pub fn kernels_dir(&self) -> PathBuf {
        self.root.join("kernels")
    }

    /// The directory of the entry with `key`.
    pub fn entry_dir(&self, key: &str) -> PathBuf {
        self.kernels_dir().join(key)
    }

    /// Extracted source trees.
    pub fn src_dir(&self) -> PathBuf {
        self.root.join("work/src")
    }

    /// kbuild output directories.
    pub fn build_dir(&self) -> PathBuf {
        self.root.join("work/build")
    }

    /// Downloaded tarballs.
    pub fn downloads_dir(&self) -> PathBuf {
        self.root.join("work/downloads")
    }

    /// The memo of tarball fingerprints.
    pub fn sources_memo(&self) -> PathBuf {
        self.root.join("work/sources.json")
    }

    /// Takes (blocking) the exclusive lock named `name`; released on drop.
    pub fn lock(&self, name: &str) -> Result<LockGuard> {
        let dir = self.root.join("work/locks");
        std::fs::create_dir_all(&dir).at(&dir)?;
        let path = dir.join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        file.lock().at(&path)?;
        Ok(LockGuard { _file: file })
    }
}

/// Holds an exclusive `flock` until dropped (the kernel releases it on
/// process exit too, so a killed build never leaves a stale lock).
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// Removes a directory tree if it exists.
pub(crate) fn remove_dir_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(KernelError::io(path, e)),
    }
}

/// Moves `path` aside to a unique trash name in the same directory and
/// deletes it, so that readers never see a half-deleted directory under
/// its real name.
pub(crate) fn discard_dir(path: &Path) -> Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let trash = path.with_file_name(format!(".trash-{name}-{}", std::process::id()));
    std::fs::rename(path, &trash).at(path)?;
    remove_dir_if_exists(&trash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_is_exclusive_between_handles() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = CacheLayout::at(tmp.path());
        let guard = layout.lock("k").unwrap();
        let path = tmp.path().join("work/locks/k.lock");
        let other = File::open(&path).unwrap();
        assert!(
            other.try_lock().is_err(),
            "second lock must fail while held"
        );
        drop(guard);
        assert!(other.try_lock().is_ok(), "lock must be free after drop");
    }

    #[test]
    fn discard_removes_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("entry");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("sub/f"), b"x").unwrap();
        discard_dir(&d).unwrap();
        assert!(!d.exists());
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
