//! ktstr-guest-agent: PID 1 inside the guest. Owns mounting the guest's
//! filesystems, reporting what the guest sees, starting the scheduler,
//! cgroups and workers, and the guest side of the host/guest channel.
//!
//! It must never link the host's VMM or the kernel pipeline: it runs inside
//! the VM, statically built, with nothing but the kernel beneath it.

/// The crate's version, reported to the host in the agent's first message.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");
