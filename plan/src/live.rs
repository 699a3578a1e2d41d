//! A live guest, as data: the requests a host session (the REPL) sends a
//! running guest agent, the answers it gets, and [`LiveGuest`], the one
//! interface the engine's REPL drives and the run library implements over
//! a booted VM. No Rhai, no VM here: the engine and the run library meet
//! on these types.

use serde::{Deserialize, Serialize};

use crate::cgroup::CgroupDef;
use crate::results::WorkerReport;
use crate::steps::Op;

/// The most bytes of a guest command's output kept per stream.
pub const MAX_SH_OUTPUT: usize = 32 * 1024;
/// The longest a guest command may run, seconds.
pub const MAX_SH_SECS: u64 = 600;
/// The most kernel log lines `dmesg(n)` returns.
pub const MAX_DMESG_LINES: u32 = 1000;

/// One thing a live session asks of the guest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case", deny_unknown_fields)]
pub enum LiveRequest {
    /// Create a cgroup and start its workers at once.
    AddCgroup {
        /// The cgroup.
        cgroup: CgroupDef,
    },
    /// Carry out one op (what a scenario's step would do) at once.
    Op {
        /// The op.
        op: Op,
    },
    /// Every worker's telemetry so far.
    Stats,
    /// Start a scheduler the guest was given at boot.
    StartScheduler {
        /// Its name (`scx_simple`).
        name: String,
        /// Its arguments (empty: its defaults).
        args: Vec<String>,
    },
    /// Stop the running scheduler.
    StopScheduler,
    /// The kernel's sched_ext state.
    SchedState,
    /// Run a command with `/bin/sh -c`.
    Sh {
        /// The command.
        command: String,
        /// Seconds before it is killed (at most [`MAX_SH_SECS`]).
        timeout_s: u64,
    },
    /// The last lines of the kernel log.
    Dmesg {
        /// How many (at most [`MAX_DMESG_LINES`]).
        lines: u32,
    },
    /// Stop every worker and the scheduler, remove every cgroup.
    Reset,
}

/// Where a cgroup's workers are allowed and where they are now.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    /// The cgroup.
    pub cgroup: String,
    /// `cpuset.cpus.effective` of the cgroup, as a CPU list.
    pub allowed: String,
    /// The CPUs its running workers' threads were on when asked, ascending.
    pub cpus_now: Vec<u32>,
}

/// The kernel's sched_ext state and the session's scheduler.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedState {
    /// `/sys/kernel/sched_ext/state` (`enabled`, `disabled`, ...), or
    /// `unsupported` without sched_ext.
    pub state: String,
    /// `/sys/kernel/sched_ext/root/ops`: the attached scheduler's name.
    pub ops: Option<String>,
    /// The scheduler the session started, while it runs.
    pub running: Option<String>,
    /// Why the last scheduler of the session ended, if one did.
    pub last_exit: Option<String>,
}

/// What the guest answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case", deny_unknown_fields)]
pub enum LiveAnswer {
    /// Done; what was done.
    Done {
        /// One line.
        message: String,
    },
    /// The request could not be carried out; the session goes on.
    Failed {
        /// Why.
        error: String,
    },
    /// Telemetry so far.
    Stats {
        /// Milliseconds since the first cgroup of the session started.
        elapsed_ms: f64,
        /// Every worker: running ones as of now, stopped ones as they
        /// ended. Progress times are ms since the first cgroup started.
        workers: Vec<WorkerReport>,
        /// Per cgroup that exists now.
        placement: Vec<Placement>,
    },
    /// The sched_ext state.
    SchedState(SchedState),
    /// A command's output.
    Output {
        /// Exit code (128 + signal number when killed).
        code: i32,
        /// Standard output (at most [`MAX_SH_OUTPUT`] bytes, lossy UTF-8).
        stdout: String,
        /// Standard error (the same bound).
        stderr: String,
    },
    /// Text (`dmesg`).
    Text {
        /// The text.
        text: String,
    },
}

/// Something the guest reported on its own between requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notice {
    /// One line: what happened.
    pub message: String,
    /// The detail (a scheduler's exit reason, its output tail).
    pub detail: String,
}

/// A guest that carries out live requests: a booted VM on the host (the
/// run library's session), or a fake in tests.
pub trait LiveGuest: Send {
    /// Sends `request` and waits for its answer; `Err` when the guest
    /// could not be asked (gone, timed out).
    fn call(&mut self, request: LiveRequest) -> Result<LiveAnswer, String>;
    /// What the guest reported on its own since the last call (a
    /// scheduler that died).
    fn notices(&mut self) -> Vec<Notice>;
    /// The guest's CPU topology.
    fn topology(&self) -> ktstr_topology::Topology;
    /// The schedulers the guest can start, by name.
    fn schedulers(&self) -> Vec<String>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip_as_json() {
        let r = LiveRequest::Sh {
            command: "true".into(),
            timeout_s: 5,
        };
        let back: LiveRequest = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let a = LiveAnswer::SchedState(SchedState {
            state: "enabled".into(),
            ops: Some("simple".into()),
            running: Some("scx_simple".into()),
            last_exit: None,
        });
        let back: LiveAnswer = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
        assert!(serde_json::from_str::<LiveRequest>(r#"{"request":"reboot"}"#).is_err());
    }
}
