//! ktstr's own KVM VMM (x86_64): the fast path on hosts with hardware
//! virtualization.
//!
//! - [`apic_ids`]: APIC IDs packed from the declared topology.
//! - [`layout`]: guest physical memory, e820, NUMA ranges.
//! - [`acpi`]: RSDP, XSDT, FADT, DSDT, MADT, SRAT, SLIT.
//! - [`boot`]: kernel, initrd, command line, boot params or PVH start
//!   info, the boot CPU's registers.
//! - [`cpuid`]: each vCPU's CPUID table (topology leaves, masks).
//! - [`vcpu`]: vCPU threads and their exit loop (port I/O to the devices,
//!   HLT, shutdown), with no panic on any guest-controlled value.
//! - [`serial`]: the 8250 UARTs (vm-superio) and other ports.
//! - [`backend`]: the VM interface ([`KvmBackend`]): boot, UART pipes,
//!   vCPU threads, teardown.
//! - [`streams`]: the UARTs' host ends.
//! - [`vm`]: the VM: memory, irqchip, vCPUs with their CPUID.
//! - [`kick`]: getting vCPU threads out of KVM_RUN.
//! - [`snapshot`]: saving and restoring vCPUs, the in-kernel devices,
//!   the clock and the UARTs.
//! - [`freestanding`]: small real-mode programs on every vCPU (the
//!   VMM's own test where Linux cannot boot), saved mid-run and restored.

pub mod acpi;
pub mod apic_ids;
pub mod backend;
pub mod boot;
pub mod cpuid;
pub mod freestanding;
pub mod kick;
pub mod layout;
pub mod serial;
pub mod snapshot;
pub mod streams;
pub mod vcpu;
pub mod vm;

pub use apic_ids::ApicIds;
pub use backend::KvmBackend;
