//! A QEMU VM that can be saved: the process, its QMP session and its RAM
//! files. Saving pauses the guest, migrates its device state into the
//! snapshot's state file with `x-ignore-shared` (guest RAM is shared
//! file memory, so it stays out of the stream) and copies each node's
//! RAM as a sparse image; a restore starts QEMU with `-incoming` on the
//! state file and the RAM already loaded into its memfds.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::process::QemuProcess;
use super::qmp::Qmp;
use crate::backend::{BackendExit, VmProcess};
use crate::error::IoAt;
use crate::introspect::RamBacking;
use crate::snapshot::{ram, ram_file, SavedState, STATE_FILE};
use crate::VmError;

/// How long the device state may take to be written.
const SAVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Sets the migration capability that leaves shared RAM out of the
/// stream (QMP only: QEMU 7.2 has no `-global` for it); both ends need it.
pub(super) fn ignore_shared(qmp: &mut Qmp) -> Result<(), VmError> {
    let caps = json!({"capabilities": [{"capability": "x-ignore-shared", "state": true}]});
    qmp.execute("migrate-set-capabilities", caps).map(|_| ())
}

/// A running QEMU with what a save needs.
pub(super) struct QemuVm {
    pub process: QemuProcess,
    /// The QMP session (VMs that are saved or restored).
    pub qmp: Option<Qmp>,
    /// Each node's RAM file.
    pub ram: Vec<RamBacking>,
}

impl QemuVm {
    /// [`QemuVm::save_state`], with QEMU's own words on failure.
    fn save(&mut self, dir: &Path) -> Result<SavedState, VmError> {
        self.save_state(dir)
            .map_err(|e| VmError::Snapshot(format!("{e}\n{}", self.process.stderr_text().trim())))
    }

    fn save_state(&mut self, dir: &Path) -> Result<SavedState, VmError> {
        let qmp = self
            .qmp
            .as_mut()
            .ok_or_else(|| VmError::Snapshot("this VM was not started to be saved".into()))?;
        qmp.execute("stop", json!({}))?;
        ignore_shared(qmp)?;
        let path = dir.join(STATE_FILE);
        let state = File::create(&path).at(&path)?;
        qmp.send_fd("ktstr-state", state.as_raw_fd())?;
        qmp.execute("migrate", json!({"uri": "fd:ktstr-state"}))?;
        wait_migrated(qmp)?;
        let ram = (self.ram.iter().enumerate())
            .map(|(n, r)| {
                let dst = dir.join(ram_file(n));
                ram::save(r, &dst).at(&dst)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(SavedState { ram })
    }
}

/// Polls `query-migrate` until the outgoing migration completed.
fn wait_migrated(qmp: &mut Qmp) -> Result<(), VmError> {
    let until = Instant::now() + SAVE_TIMEOUT;
    loop {
        let m = qmp.execute("query-migrate", json!({}))?;
        match m.get("status").and_then(Value::as_str).unwrap_or("") {
            "completed" => return Ok(()),
            "failed" | "cancelled" => {
                let why = m.get("error-desc").and_then(Value::as_str).unwrap_or("?");
                return Err(VmError::Snapshot(format!(
                    "saving the VM state failed: {why}"
                )));
            }
            _ if Instant::now() > until => {
                return Err(VmError::Snapshot(format!(
                    "saving the VM state took more than {} s",
                    SAVE_TIMEOUT.as_secs()
                )))
            }
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

impl VmProcess for QemuVm {
    fn try_wait(&mut self) -> Result<Option<BackendExit>, VmError> {
        self.process.try_wait()
    }

    fn kill(&mut self) {
        self.process.kill();
    }

    fn diagnostics(&self) -> String {
        self.process.diagnostics()
    }

    fn save_snapshot(&mut self, dir: &Path) -> Result<SavedState, VmError> {
        self.save(dir)
    }
}
