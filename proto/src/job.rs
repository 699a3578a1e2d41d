//! The job the guest agent runs, read from [`JOB_PATH`] in the initramfs.

use serde::{Deserialize, Serialize};

/// Where the per-job initramfs suffix puts the job.
pub const JOB_PATH: &str = "/ktstr/job.json";

/// What the guest agent does after it reports ready.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Job {
    /// Report and power off.
    Probe,
    /// Report ready, then wait for the real job over the channel
    /// ([`crate::HostMessage::Start`]): the idle guest a snapshot is taken
    /// of. Every job started from the snapshot begins here.
    Await,
    /// Run `command` with `/bin/sh -c`, stream its output, report its exit.
    Exec {
        /// The shell command line.
        command: String,
    },
    /// An interactive busybox shell on the console; power off when it exits.
    Shell,
    /// Run a scenario Plan: cgroups, workers, steps; report results.
    Plan {
        /// The Plan.
        plan: Box<ktstr_plan::Plan>,
        /// The topology the guest runs on (cpusets resolve against it).
        topology: ktstr_topology::Topology,
        /// The scheduler to start first; None runs the kernel's own.
        scheduler: Option<SchedulerLaunch>,
    },
    /// The kernel's sched_ext selftests: list the runner's tests, then run
    /// each selected one in a runner of its own (killed at the per-test
    /// limit), reporting each as it starts and ends.
    Selftests {
        /// The runner's path in the guest.
        runner: String,
        /// Which tests, and how long each may take.
        spec: ktstr_plan::selftests::SelftestSpec,
    },
    /// A live session (the REPL): the agent carries out
    /// [`crate::HostMessage::Live`] requests as they come until
    /// [`crate::HostMessage::Shutdown`], and reports a scheduler that dies
    /// on its own.
    Live {
        /// The topology the guest runs on (cpusets resolve against it).
        topology: ktstr_topology::Topology,
        /// The schedulers the session may start, by their binary's name.
        schedulers: Vec<SchedulerLaunch>,
    },
}

/// How the guest starts a sched_ext scheduler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerLaunch {
    /// The binary's path in the guest.
    pub path: String,
    /// The name `root/ops` must show once it is attached.
    pub ops_name: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Seconds to wait for it to attach.
    pub attach_timeout_s: u64,
    /// The CPU the kernel's sched_ext enable helper kthread must be
    /// created on: the agent pins kthreadd there while the scheduler
    /// attaches (scx_central runs `ops.init` checks on its central CPU,
    /// and in 6.12 `ops.init` runs in that helper). None: the kernel's
    /// placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_cpu: Option<u32>,
}

/// A fault the agent injects on purpose, so that ktstr's own tests can
/// check how the host reports each kind of guest failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Panic the guest kernel (sysrq `c`) after reporting ready.
    KernelPanic,
    /// Exit the agent (PID 1) with status 3 after reporting ready.
    AgentExit,
    /// Never report ready; sleep forever.
    Hang,
    /// Send a corrupt frame and an oversized header before each message.
    Garbage,
    /// Panic the guest kernel halfway through a plan's run, while its
    /// workers (and scheduler) run.
    PanicMidRun,
}

/// The job file: the job and an optional injected fault.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// The work.
    pub job: Job,
    /// A fault to inject, for testing ktstr itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<Fault>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_spec_round_trips() {
        let spec = JobSpec {
            job: Job::Exec {
                command: "nproc".into(),
            },
            fault: Some(Fault::Garbage),
        };
        let j = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<JobSpec>(&j).unwrap(), spec);
        assert!(serde_json::from_str::<JobSpec>(r#"{"job":{"kind":"nope"}}"#).is_err());
    }
}
