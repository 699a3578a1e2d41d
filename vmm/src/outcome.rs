//! How a VM ended and what it reported.

use std::path::PathBuf;

use ktstr_proto::GuestReport;
use serde::{Deserialize, Serialize};

use crate::BackendKind;

/// The way a VM ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VmEnd {
    /// The agent finished its job and the guest powered off.
    Completed,
    /// The guest kernel panicked (or oopsed).
    KernelPanic {
        /// The panic line from the console.
        message: String,
    },
    /// The guest agent (PID 1) exited or crashed.
    AgentExited {
        /// The kernel's panic line about it.
        message: String,
        /// The agent's exit code, if it exited rather than died by signal.
        exit_code: Option<i32>,
        /// The signal that killed it, if one did.
        signal: Option<i32>,
    },
    /// The deadline passed; the VM was killed.
    Timeout {
        /// Seconds the VM was given.
        after_s: f64,
        /// Whether the agent had reported ready.
        agent_ready: bool,
    },
    /// The guest stopped without a panic and without the agent saying done.
    EndedEarly,
    /// The backend itself failed (bad arguments, crash).
    BackendFailed {
        /// Its exit status.
        status: String,
    },
    /// The guest sent more channel data than allowed; the VM was killed.
    ChannelOverflow {
        /// The limit in bytes.
        limit: usize,
    },
    /// The user or a signal stopped the run.
    Interrupted,
    /// The guest was saved as a snapshot once its agent was ready, then
    /// stopped ([`crate::snapshot::SnapshotRole::Capture`]).
    Saved {
        /// Each node's RAM image as saved.
        ram: Vec<crate::snapshot::RamDigest>,
    },
}

/// Everything the host knows after a VM ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VmOutcome {
    /// The backend that ran the VM.
    pub backend: BackendKind,
    /// How it ended.
    pub end: VmEnd,
    /// Milliseconds from launch to the agent's ready message.
    pub ready_ms: Option<f64>,
    /// Milliseconds from launch to the end of the VM.
    pub lifetime_ms: f64,
    /// What the guest reported when ready.
    pub report: Option<GuestReport>,
    /// The exit code of the guest command (exec and shell jobs).
    pub exit_code: Option<i32>,
    /// Errors the agent reported.
    pub agent_errors: Vec<String>,
    /// Frames or messages the host rejected.
    pub protocol_errors: Vec<String>,
    /// The last console lines.
    pub console_tail: Vec<String>,
    /// The backend's own diagnostics (QEMU's stderr).
    pub backend_diagnostics: String,
    /// Where the full console log is.
    pub console_log: PathBuf,
    /// What the host-side monitor saw (when one was asked for); sample
    /// times count from the launch, like `ready_ms`.
    #[serde(default)]
    pub monitor: Option<ktstr_plan::monitor::MonitorReport>,
}

impl VmOutcome {
    /// True when the VM completed its job with no error of any kind.
    pub fn is_clean(&self) -> bool {
        self.end == VmEnd::Completed
            && self.report.is_some()
            && self.agent_errors.is_empty()
            && self.protocol_errors.is_empty()
    }

    /// One line saying how the VM ended.
    pub fn headline(&self) -> String {
        match &self.end {
            VmEnd::Completed if self.is_clean() => "the guest completed its job".to_string(),
            VmEnd::Completed => {
                "the guest ran its job, but the agent or the channel reported errors".to_string()
            }
            VmEnd::KernelPanic { message } => format!("guest kernel panic: {message}"),
            VmEnd::AgentExited { message, .. } => format!("guest agent exited: {message}"),
            VmEnd::Timeout {
                after_s,
                agent_ready,
            } => format!(
                "timed out after {after_s:.1} s ({})",
                if *agent_ready {
                    "the agent was ready but its job did not finish"
                } else {
                    "the guest agent never reported ready"
                }
            ),
            VmEnd::EndedEarly => "the guest stopped before the agent finished its job".to_string(),
            VmEnd::BackendFailed { status } => {
                format!("the {} backend failed ({status})", self.backend)
            }
            VmEnd::ChannelOverflow { limit } => {
                format!("the guest sent more than {limit} bytes over the channel")
            }
            VmEnd::Interrupted => "interrupted".to_string(),
            VmEnd::Saved { .. } => "the guest was saved as a snapshot".to_string(),
        }
    }

    /// A multi-line account for a failed VM: the headline, errors, the
    /// backend's diagnostics and the last console lines.
    pub fn failure_report(&self) -> String {
        let mut s = self.headline();
        for e in &self.agent_errors {
            s.push_str(&format!("\nagent error: {e}"));
        }
        for e in &self.protocol_errors {
            s.push_str(&format!("\nchannel error: {e}"));
        }
        let diag = self.backend_diagnostics.trim();
        if !diag.is_empty() {
            s.push_str(&format!("\n{} said:\n{diag}", self.backend));
        }
        if !self.console_tail.is_empty() {
            s.push_str(&format!(
                "\nlast console lines ({}):",
                self.console_log.display()
            ));
            for l in &self.console_tail {
                s.push_str(&format!("\n  {l}"));
            }
        }
        s
    }
}

/// Splits the kernel's `exitcode=0x...` of a dead init into exit code and
/// signal (a wait status).
pub(crate) fn init_exit_status(panic_line: &str) -> (Option<i32>, Option<i32>) {
    let Some(hex) = panic_line
        .split("exitcode=0x")
        .nth(1)
        .map(|r| r.trim_end_matches(|c: char| !c.is_ascii_hexdigit()))
    else {
        return (None, None);
    };
    let Ok(status) = i32::from_str_radix(hex, 16) else {
        return (None, None);
    };
    if status & 0x7f == 0 {
        (Some((status >> 8) & 0xff), None)
    } else {
        (None, Some(status & 0x7f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_init_exit_status() {
        let l = "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000300";
        assert_eq!(init_exit_status(l), (Some(3), None));
        let l = "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000006";
        assert_eq!(init_exit_status(l), (None, Some(6)));
        assert_eq!(init_exit_status("no code"), (None, None));
    }
}
