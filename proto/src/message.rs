//! Messages from the guest agent to the host, one per frame, as JSON.

use ktstr_topology::CpuLayout;
use serde::{Deserialize, Serialize};

/// Bumped whenever a message changes shape; the host refuses a guest agent
/// that speaks another version. 2: typed Plan in the job, host messages
/// and the guest's answers. 3: live sessions (`Job::Live`, `Live`
/// requests and answers, `Shutdown`). 4: `BpfPrograms`, `BpfDump`. 5:
/// `Await` and `Start`. 6: selftests.
pub const PROTOCOL_VERSION: u32 = 6;

/// How the agent's event that a plan's workers have started ends
/// (`2 cgroup(s) started`): the zero of the workers' clock, which the host
/// aligns its monitor's samples to.
pub const WORKERS_STARTED_EVENT: &str = "cgroup(s) started";

/// What the guest saw once its filesystems were mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestReport {
    /// `uname -r` of the guest kernel.
    pub kernel_release: String,
    /// The guest's CPU layout, read from its sysfs.
    pub layout: CpuLayout,
    /// `/sys/kernel/sched_ext/state`, or None without sched_ext.
    pub sched_ext_state: Option<String>,
    /// The kernel command line.
    pub cmdline: String,
    /// Memory the guest kernel manages, in KiB (`MemTotal`).
    pub mem_total_kib: u64,
    /// Things the agent could not set up but carried on without (a mount
    /// that failed, ...).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Which output stream of a guest command a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One message from the guest agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum GuestMessage {
    /// The agent is up: first message of every boot.
    Ready {
        /// [`PROTOCOL_VERSION`] of the agent.
        protocol: u32,
        /// The agent's crate version.
        agent_version: String,
        /// What the guest sees.
        report: Box<GuestReport>,
    },
    /// A chunk of a guest command's output.
    Output {
        /// The stream.
        stream: OutputStream,
        /// The bytes, lossily decoded as UTF-8.
        data: String,
    },
    /// A guest command finished.
    Exit {
        /// Its exit code (128 + signal number when killed).
        code: i32,
    },
    /// Progress of a plan (scheduler attached, step started, ...).
    Event {
        /// Milliseconds since the plan started.
        at_ms: f64,
        /// What happened.
        message: String,
    },
    /// The scheduler attached, exited or was kicked out.
    Scheduler {
        /// `attached`, `exited`, `failed` or `stuck` (did not exit when stopped).
        state: String,
        /// Its exit reason, output tail or kernel lines, when it ended.
        detail: String,
    },
    /// The BPF programs loaded once the scheduler attached, with what the
    /// verifier processed of each.
    BpfPrograms {
        /// One entry per program.
        programs: Vec<ktstr_plan::results::BpfProgram>,
    },
    /// The scheduler's global data (`.bss`, `.data`, `.rodata`) with its
    /// BTF: read when it was found dead, else at the end of the run.
    BpfDump {
        /// The maps and BTF objects.
        dump: Box<ktstr_plan::results::BpfDump>,
    },
    /// Every worker's telemetry at the end of a plan.
    Results {
        /// One report per worker.
        workers: Vec<crate::WorkerReport>,
        /// Milliseconds the plan ran.
        duration_ms: f64,
        /// When each round of step ops was applied.
        #[serde(default)]
        ops_applied: Vec<crate::OpsApplied>,
    },
    /// The selftests a [`crate::Job::Selftests`] will run, in order.
    SelftestList {
        /// The selected tests.
        tests: Vec<ktstr_plan::selftests::SelftestInfo>,
    },
    /// A selftest started.
    SelftestStarted {
        /// Its name.
        name: String,
    },
    /// A selftest ended.
    SelftestCase {
        /// Its result.
        case: Box<ktstr_plan::selftests::SelftestCase>,
    },
    /// Something the agent could not do; the job failed.
    Error {
        /// What went wrong.
        message: String,
    },
    /// The answer to a [`crate::HostMessage`] that needs no data back.
    Ack {
        /// The request's id.
        id: u64,
        /// What the agent did (`pong`, `stopping the plan`, ...).
        message: String,
    },
    /// The answer to [`crate::HostMessage::Report`]: what the guest sees
    /// now.
    Report {
        /// The request's id.
        id: u64,
        /// The report.
        report: Box<GuestReport>,
    },
    /// The answer to [`crate::HostMessage::Live`].
    Live {
        /// The request's id.
        id: u64,
        /// The answer.
        answer: ktstr_plan::live::LiveAnswer,
    },
    /// A host frame or message the agent refused (corrupt, oversized,
    /// unknown); the agent carries on with the next one.
    Rejected {
        /// Why.
        reason: String,
    },
    /// The job is over; the agent powers the guest off next.
    Done,
}

impl GuestMessage {
    /// The message as a frame payload.
    pub fn to_payload(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("messages always serialize")
    }

    /// Parses a frame payload.
    pub fn from_payload(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_unknown_ones_fail() {
        let m = GuestMessage::Exit { code: 3 };
        let back = GuestMessage::from_payload(&m.to_payload()).unwrap();
        assert_eq!(back, m);
        assert!(GuestMessage::from_payload(br#"{"type":"bogus"}"#).is_err());
        assert!(GuestMessage::from_payload(b"\xff\x00").is_err());
    }
}
