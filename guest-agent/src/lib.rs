//! ktstr-guest-agent: PID 1 inside the guest. Owns mounting the guest's
//! filesystems, reporting what the guest sees, running the job the host
//! shipped in the initramfs, and the guest side of the host/guest channel
//! in both directions: messages to the host, and live requests from it
//! ([`live`]).
//!
//! It must never link the host's VMM or the kernel pipeline: it runs inside
//! the VM with nothing beneath it but the kernel and the shared libraries
//! the host packed beside it.

pub mod bpf;
pub mod cgroups;
pub mod channel;
pub mod error;
pub mod exec;
pub mod fault;
pub mod live;
pub mod mounts;
pub mod plan;
pub mod power;
pub mod report;
pub mod restore;
pub mod run;
pub mod selftests;
pub mod shell;
pub mod workers;

/// The crate's version, reported to the host in the agent's first message.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
