//! ktstr-vmm: virtual machines with a declared CPU topology. Owns the VM
//! backend interface, the QEMU backend (ktstr's own KVM VMM joins it behind
//! the same interface), initramfs construction and the host end of the
//! host/guest channel.
//!
//! It must not depend on the Rhai engine or the CLI: the VMM knows no Rhai.
//! It takes kernel image paths, never builds kernels.
//!
//! The pieces: a [`VmBackend`] starts a VM from a [`VmSpec`] and hands back
//! raw streams ([`LaunchedVm`]); [`session::run`] drives any backend's VM
//! the same way: console to a log file, channel frames checked and decoded
//! (and host requests written the other way, [`to_guest`]), a deadline,
//! and an [`VmOutcome`] that says how the VM ended.

pub mod aarch64;
pub mod backend;
pub mod cmdline;
mod console;
mod error;
pub mod initramfs;
pub mod introspect;
#[cfg(target_arch = "x86_64")]
pub mod kvm;
pub mod numa;
mod outcome;
pub mod probe;
pub mod qemu;
pub mod session;
pub mod snapshot;
pub mod to_guest;

pub use backend::{BackendExit, BackendKind, LaunchedVm, VmBackend, VmProcess, VmSpec};
pub use error::VmError;
pub use outcome::{VmEnd, VmOutcome};

/// The crate's version, recorded with every VM result.
pub const VMM_VERSION: &str = env!("CARGO_PKG_VERSION");
