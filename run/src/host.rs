//! Facts about the host a job ran on, recorded in its sidecar.

use serde::{Deserialize, Serialize};

/// The host's kernel, CPUs and ktstr version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// The host kernel release.
    pub kernel: String,
    /// CPUs available to ktstr.
    pub cpus: usize,
    /// The ktstr version that ran the job.
    pub ktstr: String,
}

impl HostFacts {
    /// This host, now.
    pub fn current() -> Self {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        HostFacts {
            kernel: release.trim().to_string(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            ktstr: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}
