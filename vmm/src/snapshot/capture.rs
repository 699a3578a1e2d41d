//! Taking a snapshot: boot the idle guest, save it at its agent's ready,
//! and describe what was saved in the manifest.

use std::path::Path;

use super::{
    FileDigest, SnapshotKey, SnapshotManifest, SnapshotRole, CONSOLE_FILE, INITRAMFS_FILE,
    STATE_FILE,
};
use crate::error::IoAt;
use crate::session::{self, SessionIo};
use crate::{VmBackend, VmEnd, VmError, VmSpec};

/// Boots `spec` (whose initramfs runs [`ktstr_proto::Job::Await`]) on
/// `backend`, saves the guest into `dir` once its agent is ready, copies
/// the initramfs beside it, and returns the manifest for `key`. The
/// session's console log and cancel flag come from `io`.
pub fn capture(
    backend: &dyn VmBackend,
    spec: &VmSpec,
    key: &SnapshotKey,
    dir: &Path,
    io: SessionIo,
) -> Result<SnapshotManifest, VmError> {
    if !backend.snapshots() {
        return Err(VmError::Snapshot(format!(
            "the {} backend does not take snapshots",
            backend.kind()
        )));
    }
    let mut spec = spec.clone();
    spec.snapshot = SnapshotRole::Capture {
        dir: dir.to_path_buf(),
    };
    let outcome = session::run(backend, &spec, io, &mut |_| {})?;
    let ram = match outcome.end {
        VmEnd::Saved { ram } => ram,
        end => {
            let tail = outcome.console_tail.join("\n");
            return Err(VmError::Snapshot(format!(
                "the guest to be saved ended {end:?} before it was saved: {}\n{tail}",
                outcome.backend_diagnostics.trim()
            )));
        }
    };
    let console = dir.join(CONSOLE_FILE);
    std::fs::copy(&outcome.console_log, &console).at(&console)?;
    let initramfs = dir.join(INITRAMFS_FILE);
    std::fs::copy(&spec.initramfs, &initramfs).at(&initramfs)?;
    let state = dir.join(STATE_FILE);
    let ready_ms = outcome.ready_ms.unwrap_or(0.0);
    Ok(SnapshotManifest {
        key: key.clone(),
        state: FileDigest::of(&state).at(&state)?,
        initramfs: FileDigest::of(&initramfs).at(&initramfs)?,
        ram,
        boot_ms: ready_ms,
        save_ms: outcome.lifetime_ms - ready_ms,
    })
}
