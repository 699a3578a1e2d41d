//! ktstr-vmm: virtual machines with a declared CPU topology. Owns the VM
//! backend interface, the QEMU backend, ktstr's own KVM VMM, initramfs
//! construction and the host side of the host/guest channel.
//!
//! It must not depend on the Rhai engine or the CLI: the VMM knows no Rhai.
//! It takes kernel image paths, never builds kernels.

/// The crate's version, recorded with every VM result.
pub const VMM_VERSION: &str = env!("CARGO_PKG_VERSION");
