//! What can go wrong in the agent, by kind. Every error reaches the host
//! as one line (a `GuestMessage::Error`, or a scheduler's failure
//! detail), so each message names the file, program or cgroup it is about.

use std::io;
use std::path::PathBuf;

/// The agent's errors at its module boundaries.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file operation on the guest's filesystems (cgroupfs, /proc,
    /// the job file) failed.
    #[error("{what} {}: {error}", path.display())]
    Io {
        /// What the agent was doing (`mkdir`, `write`, `read`, ...).
        what: String,
        /// The file.
        path: PathBuf,
        /// The error (a field, not a source: the message says it).
        error: io::Error,
    },
    /// A program the agent starts could not be started or waited for.
    #[error("cannot start {program}: {error}")]
    Start {
        /// The program.
        program: String,
        /// The error.
        error: io::Error,
    },
    /// The scheduler did not start or attach; the text carries its
    /// output and the kernel's sched_ext lines.
    #[error("{0}")]
    Scheduler(String),
    /// The plan asks for something the guest cannot do (a cpuset that
    /// does not resolve on this topology, an op on a cgroup that is not
    /// there).
    #[error("{0}")]
    Plan(String),
    /// The job file is missing or does not parse.
    #[error("{0}")]
    Job(String),
    /// What the guest sees could not be read (sysfs, uname).
    #[error("{0}")]
    Report(String),
}

impl AgentError {
    /// An I/O error while doing `what` to `path`.
    pub fn io(what: impl Into<String>, path: impl Into<PathBuf>, error: io::Error) -> Self {
        AgentError::Io {
            what: what.into(),
            path: path.into(),
            error,
        }
    }

    /// `program` could not be started.
    pub fn start(program: impl Into<String>, error: io::Error) -> Self {
        AgentError::Start {
            program: program.into(),
            error,
        }
    }
}

/// The agent's result type.
pub type Result<T> = std::result::Result<T, AgentError>;
