//! The sidecar: one typed, versioned JSON file per job with everything
//! about it (the plan, where and how it ran, what the guest reported, the
//! thresholds and the verdict). The stats layer reads these back with
//! [`Sidecar::read`]; nothing else parses sidecar JSON.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ktstr_plan::verdict::Verdict;
use ktstr_plan::{Plan, SchedulerSpec};
use ktstr_topology::Topology;
use ktstr_vmm::{BackendKind, VmOutcome};
use serde::{Deserialize, Serialize};

use crate::host::HostFacts;
use crate::snapshot::BootMode;
use crate::telemetry::Telemetry;

/// The sidecar schema this ktstr writes and reads. Bumped whenever a field
/// changes meaning or shape; files of another schema are refused.
pub const SIDECAR_SCHEMA: u32 = 1;

/// The most bytes a sidecar may have when read back.
pub const MAX_SIDECAR_BYTES: u64 = 512 << 20;

/// Where and how a job ran, and what came of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecar {
    /// [`SIDECAR_SCHEMA`] when written.
    pub schema: u32,
    /// The run (one `ktstr run` invocation, one gauntlet) it belongs to.
    pub run_id: String,
    /// The job's label: scenario, topology, scheduler.
    pub job: String,
    /// Which repetition of the job this is (1-based) and of how many.
    pub repetition: Repetition,
    /// The plan as it ran (overrides applied).
    pub plan: Plan,
    /// The topology the VM had.
    pub topology: Topology,
    /// The kernel: its cache key, or the image file.
    pub kernel: String,
    /// The scheduler (None: the kernel's own, EEVDF).
    pub scheduler: Option<SchedulerSpec>,
    /// The backend that ran the VM.
    pub backend: BackendKind,
    /// Whether the VM booted or was restored from a snapshot.
    #[serde(default)]
    pub boot: BootMode,
    /// The host.
    pub host: HostFacts,
    /// How the VM ended and what it reported.
    pub vm: VmOutcome,
    /// What the guest reported about the run.
    pub telemetry: Telemetry,
    /// The thresholds in force, after layering.
    pub thresholds: BTreeMap<String, f64>,
    /// The judgement.
    pub verdict: Verdict,
    /// How long it took.
    pub timings: Timings,
}

/// Repetition `index` of `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repetition {
    /// 1-based.
    pub index: u32,
    /// How many runs of the job were asked for.
    pub of: u32,
}

/// How long a job took.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Seconds from launching the VM to its end.
    pub seconds: f64,
    /// Milliseconds from launch to the guest agent's ready message.
    pub ready_ms: Option<f64>,
    /// Milliseconds the plan ran in the guest.
    pub plan_ms: Option<f64>,
}

/// A sidecar that cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum SidecarError {
    /// The file cannot be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// Written by a ktstr of another sidecar schema.
    #[error("{}: sidecar schema {found}, but this ktstr reads schema {SIDECAR_SCHEMA}", path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// The schema it has (or `none`).
        found: String,
    },
    /// Not a sidecar (not JSON, a field missing or of the wrong type).
    #[error("{}: not a ktstr sidecar: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Sidecar {
    /// Writes the sidecar to `path` (pretty JSON).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(path, json)
    }

    /// Reads a sidecar back: first its schema (a clear error for another
    /// version), then every field.
    pub fn read(path: &Path) -> Result<Sidecar, SidecarError> {
        let io = |error| SidecarError::Io {
            path: path.to_path_buf(),
            error,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_SIDECAR_BYTES {
            return Err(SidecarError::Malformed {
                path: path.to_path_buf(),
                reason: format!("{len} bytes is more than any sidecar has"),
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        Self::parse(path, &bytes)
    }

    /// Parses the bytes of a sidecar read from `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Sidecar, SidecarError> {
        let malformed = |reason: String| SidecarError::Malformed {
            path: path.to_path_buf(),
            reason,
        };
        #[derive(Deserialize)]
        struct SchemaOnly {
            schema: Option<serde_json::Value>,
        }
        let head: SchemaOnly =
            serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))?;
        let found = head.schema.map(|s| s.to_string());
        if found.as_deref() != Some(&SIDECAR_SCHEMA.to_string()) {
            return Err(SidecarError::Schema {
                path: path.to_path_buf(),
                found: found.unwrap_or_else(|| "none".into()),
            });
        }
        serde_json::from_slice(bytes).map_err(|e| malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_schema_or_garbage_is_a_clear_error() {
        let p = Path::new("runs/x.json");
        let e = Sidecar::parse(p, br#"{"schema": 7, "plan": {}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "runs/x.json: sidecar schema 7, but this ktstr reads schema 1"
        );
        let e = Sidecar::parse(p, br#"{"plan": {}}"#).unwrap_err();
        assert!(e.to_string().contains("sidecar schema none"), "{e}");
        let e = Sidecar::parse(p, b"\xff not json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("runs/x.json: not a ktstr sidecar"),
            "{e}"
        );
        let e = Sidecar::parse(p, br#"{"schema": 1}"#).unwrap_err();
        assert!(e.to_string().contains("missing field"), "{e}");
    }
}
