//! Booting Linux on the own VMM: ACPI tables, kernel (PVH `vmlinux` or
//! bzImage), command line, initrd, and the boot protocol's parameters in
//! guest memory; then the boot CPU's registers ([`regs`]).

pub mod kernel;
pub mod params;
pub mod regs;

use std::path::Path;

use linux_loader::cmdline::Cmdline;
use linux_loader::loader::load_cmdline;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::acpi;
use super::apic_ids::ApicIds;
use super::layout::{e820_map, CMDLINE_ADDRESS, CMDLINE_MAX};
use crate::error::VmError;
use params::BootInfo;
pub use regs::Protocol;

/// What to boot.
#[derive(Debug, Clone, Copy)]
pub struct BootSpec<'a> {
    /// `vmlinux` (PVH) or bzImage.
    pub kernel: &'a Path,
    /// The initramfs, if any.
    pub initrd: Option<&'a Path>,
    /// The kernel command line.
    pub cmdline: &'a str,
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// The CPUs' APIC IDs (for the MADT and SRAT).
    pub ids: &'a ApicIds,
}

/// Writes everything the kernel needs into `mem`; returns how to enter
/// it.
pub fn prepare(mem: &GuestMemoryMmap, spec: &BootSpec) -> Result<Protocol, VmError> {
    let tables = acpi::build(spec.ids, spec.memory_bytes)?;
    for (address, bytes) in &tables.tables {
        mem.write_slice(bytes, GuestAddress(*address))
            .map_err(|e| VmError::Launch(format!("writing ACPI tables: {e}")))?;
    }
    let kernel = kernel::load_kernel(mem, spec.kernel)?;
    let bad_cmdline = |e: &dyn std::fmt::Display| {
        VmError::Launch(format!(
            "kernel command line ({} bytes): {e}",
            spec.cmdline.len()
        ))
    };
    let mut cmdline = Cmdline::new(CMDLINE_MAX).map_err(|e| bad_cmdline(&e))?;
    cmdline
        .insert_str(spec.cmdline)
        .map_err(|e| bad_cmdline(&e))?;
    load_cmdline(mem, GuestAddress(CMDLINE_ADDRESS), &cmdline).map_err(|e| bad_cmdline(&e))?;
    let initrd = spec
        .initrd
        .map(|p| kernel::load_initrd(mem, p, spec.memory_bytes, &kernel))
        .transpose()?;
    let info = BootInfo {
        cmdline_len: spec.cmdline.len(),
        initrd,
        rsdp: tables.rsdp_address(),
        e820: e820_map(spec.memory_bytes),
    };
    match (kernel.protocol, kernel.header) {
        (Protocol::Linux64(_), Some(header)) => {
            params::write_zero_page(mem, &params::zero_page(header, &info)?)?
        }
        _ => params::write_pvh(mem, &info)?,
    }
    Ok(kernel.protocol)
}
