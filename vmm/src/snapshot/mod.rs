//! Snapshots of a booted, idle guest, so that jobs start from a restore
//! instead of a boot.
//!
//! A snapshot is taken once per [`SnapshotKey`] (kernel, topology, memory,
//! initramfs base, backend and its version, agent protocol, command line):
//! the guest boots with [`ktstr_proto::Job::Await`], and when its agent
//! reports ready the backend pauses it and saves its device state
//! ([`crate::VmProcess::save_snapshot`]) and every NUMA node's RAM as a
//! sparse image ([`ram`]). A job restores it ([`Restore`]): the RAM images
//! are loaded into fresh memfds (checked against the manifest on the way),
//! the backend resumes the device state, and the session sends the job
//! with the host's clock and a fresh seed ([`ktstr_proto::HostMessage::Start`]).
//!
//! [`cache::SnapshotCache`] keeps them, verified on every use; a stale or
//! corrupt one is discarded and taken again, never restored.

pub mod cache;
pub mod capture;
pub mod ram;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ktstr_proto::JobSpec;
use ktstr_topology::Topology;
use serde::{Deserialize, Serialize};

use crate::introspect::RamBacking;
use crate::BackendKind;

pub use cache::{LoadedSnapshot, Obtained, SnapshotCache};
pub use ram::RamDigest;

/// The layout of a snapshot directory and its manifest; a snapshot of
/// another format is never restored.
pub const SNAPSHOT_FORMAT: u32 = 1;
/// The device state file in a snapshot directory.
pub const STATE_FILE: &str = "state";
/// The initramfs the snapshot booted (restores pass the same one, so the
/// machine they build matches the one saved).
pub const INITRAMFS_FILE: &str = "initramfs";
/// The manifest.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The snapshot's boot console (a restored VM's console log starts with
/// it; not verified: nothing is restored from it).
pub const CONSOLE_FILE: &str = "console.log";
/// The most of [`CONSOLE_FILE`] a restore reads.
pub const MAX_BOOT_CONSOLE: u64 = 1 << 20;

/// The name of node `n`'s RAM image.
pub fn ram_file(n: usize) -> String {
    format!("ram{n}")
}

/// Everything that shapes a booted guest's state: two keys that differ in
/// anything give different snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotKey {
    /// The kernel's identity: its cache entry key, or the image's hash.
    pub kernel: String,
    /// The guest's CPU topology.
    pub topology: Topology,
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// The initramfs base's content key (agent, busybox, files).
    pub initramfs_base: String,
    /// The backend.
    pub backend: BackendKind,
    /// The backend program's own version (QEMU's `--version` line).
    pub backend_version: String,
    /// The guest agent's protocol version.
    pub agent_protocol: u32,
    /// The kernel command line.
    pub cmdline: String,
    /// [`SNAPSHOT_FORMAT`].
    pub format: u32,
}

impl SnapshotKey {
    /// The key's directory name: a hash of all of it.
    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).expect("keys always serialize");
        let hex = blake3::hash(&json).to_hex();
        format!("{}-{}", self.topology, &hex[..16])
    }
}

/// A file's size and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Bytes.
    pub size: u64,
    /// BLAKE3, hex.
    pub blake3: String,
}

impl FileDigest {
    /// Hashes the file at `path` (memory-mapped and hashed on all cores,
    /// as the kernel cache hashes its files).
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let mut hasher = blake3::Hasher::new();
        hasher.update_mmap_rayon(path)?;
        Ok(FileDigest {
            size: hasher.count(),
            blake3: hasher.finalize().to_hex().to_string(),
        })
    }
}

/// What a snapshot directory holds, written last when it is taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotManifest {
    /// What it is a snapshot of.
    pub key: SnapshotKey,
    /// The device state file.
    pub state: FileDigest,
    /// The initramfs it booted.
    pub initramfs: FileDigest,
    /// Each NUMA node's RAM image, in node order.
    pub ram: Vec<RamDigest>,
    /// Milliseconds from launch to the agent's ready when it was taken.
    pub boot_ms: f64,
    /// Milliseconds the save took.
    pub save_ms: f64,
}

/// What a backend saved, besides the state file it wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedState {
    /// Each node's RAM image, in node order.
    pub ram: Vec<RamDigest>,
}

/// A guest to restore instead of booting: the snapshot, loaded, and the
/// job it is to run.
#[derive(Debug, Clone)]
pub struct Restore {
    /// The snapshot's files, loaded and verified (used by one VM).
    pub snapshot: Arc<Mutex<Option<LoadedParts>>>,
    /// The snapshot's initramfs.
    pub initramfs: PathBuf,
    /// The job sent once the guest runs.
    pub job: JobSpec,
    /// The snapshot's boot console, which the restored VM's console log
    /// starts with.
    pub boot_console: Arc<Vec<u8>>,
}

/// The open files one restore consumes.
#[derive(Debug)]
pub struct LoadedParts {
    /// The device state, open for reading from its start.
    pub state: File,
    /// The initramfs, open (the backend boots it through the descriptor,
    /// so a snapshot pruned meanwhile cannot pull it away).
    pub initramfs: File,
    /// Each node's RAM, loaded into its own memfd.
    pub ram: Vec<RamBacking>,
}

impl Restore {
    /// A restore of `snapshot` running `job`.
    pub fn new(snapshot: LoadedSnapshot, job: JobSpec) -> Self {
        Restore {
            initramfs: snapshot.dir.join(INITRAMFS_FILE),
            boot_console: Arc::new(snapshot.boot_console),
            snapshot: Arc::new(Mutex::new(Some(LoadedParts {
                state: snapshot.state,
                initramfs: snapshot.initramfs,
                ram: snapshot.ram,
            }))),
            job,
        }
    }

    /// Takes the loaded files; None once a VM has taken them.
    pub fn take(&self) -> Option<LoadedParts> {
        self.snapshot
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// How a VM starts: booting, booting to be saved, or restored.
#[derive(Debug, Clone, Default)]
pub enum SnapshotRole {
    /// A cold boot.
    #[default]
    None,
    /// Boot with [`ktstr_proto::Job::Await`]; once the agent is ready, save
    /// the VM into `dir` and stop it ([`crate::VmEnd::Saved`]).
    Capture {
        /// Where the state and RAM images go.
        dir: PathBuf,
    },
    /// Start from a snapshot.
    Restore(Restore),
}

impl SnapshotRole {
    /// Whether the VM is restored.
    pub fn is_restore(&self) -> bool {
        matches!(self, SnapshotRole::Restore(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_of_the_key_changes_its_id() {
        let base = SnapshotKey {
            kernel: "bzimage-hash".into(),
            topology: "1n1l2c1t".parse().unwrap(),
            memory_mb: 256,
            initramfs_base: "base-hash".into(),
            backend: BackendKind::QemuTcg,
            backend_version: "QEMU emulator version 7.2.22".into(),
            agent_protocol: 5,
            cmdline: "console=ttyS0".into(),
            format: SNAPSHOT_FORMAT,
        };
        let variants: [fn(&mut SnapshotKey); 9] = [
            |k| k.kernel = "another kernel".into(),
            |k| k.topology = "1n2l2c1t".parse().unwrap(),
            |k| k.memory_mb = 384,
            // A new agent build is a new initramfs base.
            |k| k.initramfs_base = "another agent".into(),
            |k| k.backend = BackendKind::QemuKvm,
            |k| k.backend_version = "QEMU emulator version 8.2".into(),
            |k| k.agent_protocol = 6,
            |k| k.cmdline = "console=ttyS0 quiet".into(),
            |k| k.format = SNAPSHOT_FORMAT + 1,
        ];
        let mut ids = std::collections::BTreeSet::from([base.id()]);
        for change in variants {
            let mut k = base.clone();
            change(&mut k);
            assert!(ids.insert(k.id()), "{k:?} collides");
        }
        assert!(base.id().starts_with("1n1l2c1t-"));
    }
}
