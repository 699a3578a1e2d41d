//! The VM interface every backend implements.

use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use ktstr_topology::Topology;
use serde::{Deserialize, Serialize};

use crate::snapshot::{SavedState, SnapshotRole};
use crate::VmError;

/// The backends ktstr can run a VM on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// ktstr's own VMM on /dev/kvm.
    Kvm,
    /// QEMU with KVM acceleration.
    QemuKvm,
    /// QEMU with TCG (pure emulation, multi-threaded).
    QemuTcg,
}

impl BackendKind {
    /// The name used on the command line and in results.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Kvm => "kvm",
            BackendKind::QemuKvm => "qemu-kvm",
            BackendKind::QemuTcg => "qemu-tcg",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kvm" => Ok(BackendKind::Kvm),
            "qemu-kvm" => Ok(BackendKind::QemuKvm),
            "qemu-tcg" => Ok(BackendKind::QemuTcg),
            _ => Err(format!(
                "unknown backend `{s}` (expected auto, kvm, qemu-kvm or qemu-tcg)"
            )),
        }
    }
}

/// Everything needed to boot one VM.
#[derive(Debug, Clone)]
pub struct VmSpec {
    /// The kernel image (bzImage).
    pub kernel: PathBuf,
    /// The initramfs, already assembled (base plus job suffix).
    pub initramfs: PathBuf,
    /// The kernel command line (see [`crate::cmdline`]).
    pub cmdline: String,
    /// The CPU topology the guest must see.
    pub topology: Topology,
    /// Guest memory in MiB.
    pub memory_mb: u32,
    /// How long the whole VM may live before it is killed.
    pub timeout: Duration,
    /// A directory for the backend's sockets and scratch files; the caller
    /// owns and removes it.
    pub work_dir: PathBuf,
    /// Whether the VM boots, boots to be saved, or is restored.
    pub snapshot: SnapshotRole,
}

impl VmSpec {
    /// Default memory for a topology: 64 MiB per CPU, at least 256 MiB.
    pub fn default_memory_mb(topology: &Topology) -> u32 {
        (64 * topology.cpus()).max(256)
    }
}

/// A running VM's process, as its backend controls it.
pub trait VmProcess: Send {
    /// Whether the VM has ended, and with which status text if so
    /// (`None` while it runs).
    fn try_wait(&mut self) -> Result<Option<BackendExit>, VmError>;
    /// Ends the VM now and reaps it; safe to call more than once.
    fn kill(&mut self);
    /// The backend's own diagnostics so far (QEMU's stderr), bounded.
    fn diagnostics(&self) -> String;
    /// Pauses the VM and saves it into `dir`: the device state as
    /// [`crate::snapshot::STATE_FILE`] and each node's RAM image. Only VMs
    /// launched with [`SnapshotRole::Capture`] of a backend whose
    /// [`VmBackend::snapshots`] is true can.
    fn save_snapshot(&mut self, dir: &Path) -> Result<SavedState, VmError> {
        let _ = dir;
        Err(VmError::Snapshot(
            "this backend cannot save a running VM".into(),
        ))
    }
}

/// How the backend process ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendExit {
    /// True when the backend considers the run clean (QEMU exit 0).
    pub success: bool,
    /// The exit status as text (`exit status: 1`, `signal: 9`).
    pub status: String,
}

/// A started VM: its process and raw streams, before the session layer
/// gives them meaning.
pub struct LaunchedVm {
    /// The process (or thread set) running the VM.
    pub process: Box<dyn VmProcess>,
    /// Bytes the guest writes to its console (ttyS0).
    pub console: Box<dyn Read + Send>,
    /// Bytes typed into the guest console.
    pub console_input: Box<dyn Write + Send>,
    /// Bytes the guest agent writes to the channel.
    pub channel: Box<dyn Read + Send>,
    /// Bytes to the guest agent over the channel.
    pub channel_output: Box<dyn Write + Send>,
    /// Guest RAM as the host can read it, or why it cannot (a backend
    /// that does not share it, a mapping that failed): the monitor is
    /// then unavailable, the VM runs all the same.
    pub memory: Result<crate::introspect::GuestMemory, String>,
}

/// A way of running VMs.
pub trait VmBackend: Send + Sync {
    /// Which backend this is; recorded in every result.
    fn kind(&self) -> BackendKind;
    /// Checks that this backend can run `spec` at all (before anything
    /// starts).
    fn check(&self, spec: &VmSpec) -> Result<(), VmError>;
    /// Starts the VM. The guest's console is ttyS0 and the channel is the
    /// agent's `ktstr.channel` device (see [`crate::cmdline`]).
    fn launch(&self, spec: &VmSpec) -> Result<LaunchedVm, VmError>;
    /// Whether this backend saves and restores snapshots
    /// ([`SnapshotRole`]).
    fn snapshots(&self) -> bool {
        false
    }
    /// The backend program's version, part of every snapshot key.
    fn version(&self) -> String {
        crate::VMM_VERSION.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for k in [BackendKind::Kvm, BackendKind::QemuKvm, BackendKind::QemuTcg] {
            assert_eq!(k.name().parse::<BackendKind>().unwrap(), k);
        }
        assert!("qemu"
            .parse::<BackendKind>()
            .unwrap_err()
            .contains("qemu-tcg"));
    }

    #[test]
    fn default_memory_scales_with_cpus() {
        let small: Topology = "1n1l2c1t".parse().unwrap();
        let big: Topology = "2n8l4c2t".parse().unwrap();
        assert_eq!(VmSpec::default_memory_mb(&small), 256);
        assert_eq!(VmSpec::default_memory_mb(&big), 64 * 64);
    }
}
