//! Errors of topology parsing and sysfs reading.

use std::path::PathBuf;

/// What can go wrong declaring or reading a topology.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// A topology string that is neither `N,N,N,N` nor `NnNlNcNt`.
    #[error("invalid topology `{input}`: {reason} (expected e.g. `2n4l2c1t` or `2,4,2,1`: NUMA nodes, LLCs, cores per LLC, threads per core)")]
    Syntax {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Well-formed numbers that do not make a topology.
    #[error("invalid topology {topology}: {reason}")]
    Invalid {
        /// The topology as displayed.
        topology: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A CPU list such as `0-3,8` that does not parse.
    #[error("invalid CPU list `{input}`: {reason}")]
    CpuList {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A sysfs file that could not be read or parsed.
    #[error("{}: {reason}", path.display())]
    Sysfs {
        /// The file.
        path: PathBuf,
        /// The I/O or parse error.
        reason: String,
    },
}
