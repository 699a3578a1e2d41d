//! Starting a job's VM from a snapshot of the booted, idle guest instead
//! of booting it: the key of everything that shapes that guest, the cache
//! under `<cache>/snapshots`, taking the snapshot on a miss (one job takes
//! it while parallel jobs with the same key wait for it), and how the VM
//! started, as the sidecar records it.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use ktstr_kernel::{BootKernel, CacheLayout, Observer};
use ktstr_proto::{Job, JobSpec, PROTOCOL_VERSION};
use ktstr_vmm::initramfs::{self, BaseImage};
use ktstr_vmm::session::SessionIo;
use ktstr_vmm::snapshot::{
    capture::capture, FileDigest, Obtained, Restore, SnapshotCache, SnapshotKey, SnapshotRole,
    SNAPSHOT_FORMAT,
};
use ktstr_vmm::{BackendKind, VmBackend, VmSpec};
use serde::{Deserialize, Serialize};

/// How a job's VM started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BootMode {
    /// Booted from its kernel.
    Cold {
        /// Why not from a snapshot, when one was wanted (a backend that
        /// takes none, a guest that could not be saved).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<String>,
    },
    /// Restored from a snapshot.
    Restored {
        /// The snapshot's directory name.
        snapshot: String,
        /// `cached`, `taken` (by this job) or `retaken` (the cached one
        /// could not be used).
        source: String,
        /// Milliseconds the snapshot's guest took to boot to ready.
        snapshot_boot_ms: f64,
    },
}

impl Default for BootMode {
    fn default() -> Self {
        BootMode::Cold { why: None }
    }
}

/// The snapshots under `layout`.
pub fn cache(layout: &CacheLayout) -> SnapshotCache {
    SnapshotCache::new(layout.root().join("snapshots"))
}

/// The kernel's identity in a snapshot key: the hash of the image the
/// backend boots (as the cache entry records it, else computed).
fn kernel_identity(kernel: &BootKernel, image: &Path) -> Result<String, String> {
    if let BootKernel::Entry(e) = kernel {
        let rel = image.strip_prefix(&e.dir).ok().map(Path::to_path_buf);
        let recorded = e
            .manifest
            .files
            .iter()
            .find(|f| rel.as_deref() == Some(Path::new(&f.path)));
        if let Some(f) = recorded {
            return Ok(f.blake3.clone());
        }
    }
    FileDigest::of(image)
        .map(|d| d.blake3)
        .map_err(|e| format!("{}: {e}", image.display()))
}

/// The key of the snapshot `spec` (a cold boot of `base` on `backend`)
/// would restore from.
pub fn key_for(
    spec: &VmSpec,
    kernel: &BootKernel,
    base: &BaseImage,
    backend: &dyn VmBackend,
) -> Result<SnapshotKey, String> {
    Ok(SnapshotKey {
        kernel: kernel_identity(kernel, &spec.kernel)?,
        topology: spec.topology,
        memory_mb: spec.memory_mb,
        initramfs_base: base.key.clone(),
        backend: backend.kind(),
        backend_version: backend.version(),
        agent_protocol: PROTOCOL_VERSION,
        cmdline: spec.cmdline.clone(),
        format: SNAPSHOT_FORMAT,
    })
}

/// How long the guest to be saved may take to boot: boots grow faster
/// than the vCPU count under emulation (87 s measured at 64 vCPUs).
fn capture_timeout(kind: BackendKind, cpus: u32) -> Duration {
    match kind {
        BackendKind::QemuTcg => Duration::from_secs(60 + 3 * u64::from(cpus)),
        _ => Duration::from_secs(60 + u64::from(cpus)),
    }
}

/// What a snapshot is taken of, and the flag that stops taking it.
pub struct Source<'a> {
    /// The kernel.
    pub kernel: &'a BootKernel,
    /// The initramfs base.
    pub base: &'a BaseImage,
    /// Set from outside (Ctrl-C) to stop the guest being booted.
    pub cancel: Arc<AtomicBool>,
}

/// Turns the cold `spec` of `job` into a restore: the snapshot of its
/// key, taken now when the cache has none (or none usable). Err says why
/// the VM must boot cold.
pub fn restore(
    spec: &mut VmSpec,
    backend: &dyn VmBackend,
    source: &Source<'_>,
    job: &JobSpec,
    layout: &CacheLayout,
    observer: &dyn Observer,
) -> Result<BootMode, String> {
    if !backend.snapshots() {
        return Err(format!("the {} backend takes no snapshots", backend.kind()));
    }
    let size = serde_json::to_vec(job).map_or(usize::MAX, |j| j.len());
    if size > ktstr_proto::MAX_START_FRAME_LEN - 1024 {
        return Err(format!(
            "the job is {size} bytes, too big to send a restored guest"
        ));
    }
    let (kernel, base) = (source.kernel, source.base);
    let key = key_for(spec, kernel, base, backend)?;
    let work = spec.work_dir.clone();
    let (loaded, obtained) = cache(layout)
        .obtain(&key, |dir| {
            observer.line(&format!(
                "taking a snapshot of the booted {} guest (once per kernel, topology, memory \
                 and initramfs)...",
                spec.topology
            ));
            let mut boot = spec.clone();
            boot.initramfs = work.join("await-initramfs");
            boot.timeout = capture_timeout(backend.kind(), spec.topology.cpus());
            let idle = JobSpec {
                job: Job::Await,
                fault: None,
            };
            initramfs::assemble(&base.path, &initramfs::job_suffix(&idle), &boot.initramfs)?;
            let mut io = SessionIo::logged(work.join("snapshot-console.log"));
            io.cancel = Arc::clone(&source.cancel);
            let r = capture(backend, &boot, &key, dir, io);
            let _ = std::fs::remove_file(&boot.initramfs);
            r
        })
        .map_err(|e| e.to_string())?;
    let mode = BootMode::Restored {
        snapshot: key.id(),
        source: match &obtained {
            Obtained::Cached => "cached".into(),
            Obtained::Taken => "taken".into(),
            Obtained::Retaken { why } => {
                observer.line(&format!("snapshot discarded and taken again: {why}"));
                "retaken".into()
            }
        },
        snapshot_boot_ms: loaded.manifest.boot_ms,
    };
    let restore = Restore::new(loaded, job.clone());
    spec.initramfs = restore.initramfs.clone();
    spec.snapshot = SnapshotRole::Restore(restore);
    Ok(mode)
}
