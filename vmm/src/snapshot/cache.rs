//! The snapshot cache: `<root>/<key id>/` holds one snapshot (manifest,
//! state, initramfs, RAM images), complete once renamed into place. Every
//! use checks the manifest's key against the one asked for and every file
//! against its recorded size and hash (the RAM images while they are
//! loaded), so a stale, truncated or altered snapshot is discarded and
//! taken again, never restored. Taking one holds an exclusive lock on its
//! key, so parallel jobs that want the same snapshot take it once.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{
    ram, ram_file, FileDigest, SnapshotKey, SnapshotManifest, CONSOLE_FILE, INITRAMFS_FILE,
    MANIFEST_FILE, MAX_BOOT_CONSOLE, STATE_FILE,
};
use crate::error::IoAt;
use crate::introspect::RamBacking;
use crate::VmError;

/// How many snapshots are kept (the least recently used go first): a
/// gauntlet or a test suite uses one per topology and initramfs (each
/// scheduler and payload set is a base of its own), about 50 MB each at
/// small topologies.
pub const KEEP_SNAPSHOTS: usize = 64;

/// A directory of snapshots.
#[derive(Debug, Clone)]
pub struct SnapshotCache {
    root: PathBuf,
}

/// A snapshot checked and loaded for one restore.
#[derive(Debug)]
pub struct LoadedSnapshot {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: SnapshotManifest,
    /// The device state, open from its start.
    pub state: File,
    /// The initramfs, open.
    pub initramfs: File,
    /// Each node's RAM in a fresh memfd.
    pub ram: Vec<RamBacking>,
    /// Its boot console (at most [`MAX_BOOT_CONSOLE`] bytes; empty if
    /// unreadable).
    pub boot_console: Vec<u8>,
}

/// Where a snapshot came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obtained {
    /// It was in the cache and checked out.
    Cached,
    /// There was none: it was taken now.
    Taken,
    /// There was one that could not be used (why): it was discarded and
    /// taken again.
    Retaken {
        /// What was wrong with the old one.
        why: String,
    },
}

impl SnapshotCache {
    /// The cache at `root` (created when first written).
    pub fn new(root: PathBuf) -> Self {
        SnapshotCache { root }
    }

    /// Where `key`'s snapshot lives.
    pub fn dir(&self, key: &SnapshotKey) -> PathBuf {
        self.root.join(key.id())
    }

    /// Loads `key`'s snapshot: None if there is none, an error saying
    /// what is wrong with one that cannot be restored.
    pub fn load(&self, key: &SnapshotKey) -> Result<Option<LoadedSnapshot>, String> {
        let dir = self.dir(key);
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = match fs::read(&manifest_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", manifest_path.display())),
        };
        let manifest: SnapshotManifest = serde_json::from_slice(&text)
            .map_err(|e| format!("{}: {e}", manifest_path.display()))?;
        if manifest.key != *key {
            return Err(format!(
                "{} was taken for another key",
                manifest_path.display()
            ));
        }
        for (name, want) in [
            (STATE_FILE, &manifest.state),
            (INITRAMFS_FILE, &manifest.initramfs),
        ] {
            let path = dir.join(name);
            let got = FileDigest::of(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            if got != *want {
                return Err(format!(
                    "{} holds {} bytes with hash {}, the manifest says {} bytes with hash {}",
                    path.display(),
                    got.size,
                    &got.blake3[..16],
                    want.size,
                    &want.blake3[..16.min(want.blake3.len())]
                ));
            }
        }
        let ram = (manifest.ram.iter().enumerate())
            .map(|(n, digest)| ram::load(&dir.join(ram_file(n)), digest, &format!("ktstr-ram{n}")))
            .collect::<Result<Vec<_>, _>>()?;
        let open = |name: &str| {
            let path = dir.join(name);
            File::open(&path).map_err(|e| format!("{}: {e}", path.display()))
        };
        let (state, initramfs) = (open(STATE_FILE)?, open(INITRAMFS_FILE)?);
        let mut boot_console = Vec::new();
        if let Ok(f) = File::open(dir.join(CONSOLE_FILE)) {
            let _ = f.take(MAX_BOOT_CONSOLE).read_to_end(&mut boot_console);
        }
        // Mark it used, for pruning.
        let _ = File::open(&manifest_path).and_then(|f| f.set_modified(SystemTime::now()));
        Ok(Some(LoadedSnapshot {
            dir,
            manifest,
            state,
            initramfs,
            ram,
            boot_console,
        }))
    }

    /// Loads `key`'s snapshot, taking it with `capture` (which fills the
    /// directory it is given and returns the manifest) when there is none
    /// or the one there cannot be used.
    pub fn obtain(
        &self,
        key: &SnapshotKey,
        capture: impl FnOnce(&Path) -> Result<SnapshotManifest, VmError>,
    ) -> Result<(LoadedSnapshot, Obtained), VmError> {
        if let Ok(Some(s)) = self.load(key) {
            return Ok((s, Obtained::Cached));
        }
        fs::create_dir_all(&self.root).at(&self.root)?;
        let _lock = self.lock(key)?;
        let why = match self.load(key) {
            Ok(Some(s)) => return Ok((s, Obtained::Cached)),
            Ok(None) => None,
            Err(why) => {
                self.discard(key)?;
                Some(why)
            }
        };
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&self.root)
            .at(&self.root)?;
        let manifest = capture(staging.path())?;
        let json = serde_json::to_vec_pretty(&manifest).expect("manifests always serialize");
        let manifest_path = staging.path().join(MANIFEST_FILE);
        fs::write(&manifest_path, json).at(&manifest_path)?;
        let dir = self.dir(key);
        fs::rename(staging.keep(), &dir).at(&dir)?;
        self.prune(KEEP_SNAPSHOTS);
        let loaded = self
            .load(key)
            .map_err(|why| VmError::Snapshot(format!("the snapshot just taken: {why}")))?
            .ok_or_else(|| VmError::Snapshot("the snapshot just taken vanished".into()))?;
        let obtained = match why {
            Some(why) => Obtained::Retaken { why },
            None => Obtained::Taken,
        };
        Ok((loaded, obtained))
    }

    /// Removes `key`'s snapshot (moved aside first, so no reader sees it
    /// half deleted).
    pub fn discard(&self, key: &SnapshotKey) -> Result<(), VmError> {
        let dir = self.dir(key);
        if !dir.exists() {
            return Ok(());
        }
        let trash = self
            .root
            .join(format!(".trash-{}-{}", key.id(), std::process::id()));
        fs::rename(&dir, &trash).at(&dir)?;
        fs::remove_dir_all(&trash).at(&trash)
    }

    /// Keeps the `keep` most recently used snapshots, removing the rest,
    /// and what a killed process left half taken an hour ago or more.
    pub fn prune(&self, keep: usize) {
        let Ok(entries) = fs::read_dir(&self.root) else {
            return;
        };
        let entries: Vec<_> = entries.flatten().collect();
        let hour_ago = SystemTime::now() - std::time::Duration::from_secs(3600);
        for e in &entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let stale = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t < hour_ago);
            if (name.starts_with(".staging-") || name.starts_with(".trash-")) && stale {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let mut dirs: Vec<(SystemTime, PathBuf)> = entries
            .iter()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let used = e
                    .path()
                    .join(MANIFEST_FILE)
                    .metadata()
                    .ok()?
                    .modified()
                    .ok()?;
                Some((used, e.path()))
            })
            .collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.0));
        for (_, dir) in dirs.into_iter().skip(keep) {
            let _ = fs::remove_dir_all(dir);
        }
    }

    /// Takes (blocking) the exclusive lock on `key`; released on drop or
    /// when the process dies.
    fn lock(&self, key: &SnapshotKey) -> Result<File, VmError> {
        let path = self.root.join(format!(".{}.lock", key.id()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        file.lock().at(&path)?;
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::introspect::ram_memfd;
    use crate::snapshot::{ram, SNAPSHOT_FORMAT};
    use crate::BackendKind;
    use std::cell::Cell;
    use std::os::unix::fs::FileExt;

    fn key(memory_mb: u32) -> SnapshotKey {
        SnapshotKey {
            kernel: "k".into(),
            topology: "1n1l2c1t".parse().unwrap(),
            memory_mb,
            initramfs_base: "base".into(),
            backend: BackendKind::QemuTcg,
            backend_version: "QEMU 7.2".into(),
            agent_protocol: 5,
            cmdline: "console=ttyS0".into(),
            format: SNAPSHOT_FORMAT,
        }
    }

    /// A capture that writes small real files, counting its calls.
    fn fake_capture<'a>(
        key: &'a SnapshotKey,
        calls: &'a Cell<u32>,
    ) -> impl FnOnce(&Path) -> Result<SnapshotManifest, VmError> + 'a {
        move |dir: &Path| {
            calls.set(calls.get() + 1);
            fs::write(dir.join(STATE_FILE), b"device state").unwrap();
            fs::write(dir.join(INITRAMFS_FILE), b"initramfs").unwrap();
            let mem = ram_memfd("t", 1 << 20).unwrap();
            mem.write_all_at(b"guest page", 8192).unwrap();
            let digest = ram::save(
                &RamBacking {
                    file: mem,
                    len: 1 << 20,
                },
                &dir.join(ram_file(0)),
            )
            .unwrap();
            Ok(SnapshotManifest {
                key: key.clone(),
                state: FileDigest::of(&dir.join(STATE_FILE)).unwrap(),
                initramfs: FileDigest::of(&dir.join(INITRAMFS_FILE)).unwrap(),
                ram: vec![digest],
                boot_ms: 1.0,
                save_ms: 1.0,
            })
        }
    }

    #[test]
    fn taken_once_then_restored_from_the_cache_and_a_new_key_takes_its_own() {
        let root = tempfile::tempdir().unwrap();
        let cache = SnapshotCache::new(root.path().to_path_buf());
        let (k, calls) = (key(256), Cell::new(0));
        let (s, how) = cache.obtain(&k, fake_capture(&k, &calls)).unwrap();
        assert_eq!((how, calls.get()), (Obtained::Taken, 1));
        let mut page = [0u8; 10];
        s.ram[0].file.read_exact_at(&mut page, 8192).unwrap();
        assert_eq!(&page, b"guest page");
        let (_, how) = cache.obtain(&k, fake_capture(&k, &calls)).unwrap();
        assert_eq!((how, calls.get()), (Obtained::Cached, 1));
        // Any input of the key changes the snapshot.
        let other = key(512);
        assert_ne!(cache.dir(&other), cache.dir(&k));
        let (_, how) = cache.obtain(&other, fake_capture(&other, &calls)).unwrap();
        assert_eq!((how, calls.get()), (Obtained::Taken, 2));
    }

    #[test]
    fn a_truncated_or_altered_snapshot_is_discarded_and_taken_again() {
        let root = tempfile::tempdir().unwrap();
        let cache = SnapshotCache::new(root.path().to_path_buf());
        let (k, calls) = (key(256), Cell::new(0));
        cache.obtain(&k, fake_capture(&k, &calls)).unwrap();
        let state = cache.dir(&k).join(STATE_FILE);
        File::options()
            .write(true)
            .open(&state)
            .unwrap()
            .set_len(3)
            .unwrap();
        assert!(cache.load(&k).unwrap_err().contains("holds 3 bytes"));
        let (_, how) = cache.obtain(&k, fake_capture(&k, &calls)).unwrap();
        assert!(matches!(how, Obtained::Retaken { ref why } if why.contains("holds 3 bytes")));
        assert_eq!(calls.get(), 2);
        let ram0 = cache.dir(&k).join(ram_file(0));
        File::options()
            .write(true)
            .open(&ram0)
            .unwrap()
            .write_all_at(b"X", 8192)
            .unwrap();
        let (_, how) = cache.obtain(&k, fake_capture(&k, &calls)).unwrap();
        assert!(matches!(how, Obtained::Retaken { ref why } if why.contains("does not match")));
        // A manifest written for another key is never restored.
        let m = cache.dir(&k).join(MANIFEST_FILE);
        let text = fs::read_to_string(&m)
            .unwrap()
            .replace("\"k\"", "\"other\"");
        fs::write(&m, text).unwrap();
        assert!(cache.load(&k).unwrap_err().contains("another key"));
    }

    #[test]
    fn pruning_keeps_the_most_recently_used() {
        let root = tempfile::tempdir().unwrap();
        let cache = SnapshotCache::new(root.path().to_path_buf());
        let calls = Cell::new(0);
        let keys: Vec<_> = (0..3).map(|i| key(256 + i)).collect();
        for k in &keys {
            cache.obtain(k, fake_capture(k, &calls)).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        cache.load(&keys[0]).unwrap().unwrap();
        cache.prune(2);
        assert!(cache.dir(&keys[0]).exists());
        assert!(!cache.dir(&keys[1]).exists());
        assert!(cache.dir(&keys[2]).exists());
    }
}
