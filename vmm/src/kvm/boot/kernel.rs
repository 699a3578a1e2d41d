//! Loading a kernel with linux-loader: an ELF `vmlinux` must carry a PVH
//! entry note (CONFIG_PVH) and is entered there, uncompressed; a bzImage
//! is loaded at its `code32_start` and entered at `startup_64`
//! (load address + 0x200). Then the initrd, as high in low RAM as the
//! kernel allows.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use linux_loader::loader::bootparam::setup_header;
use linux_loader::loader::elf::{Elf, PvhBootCapability};
use linux_loader::loader::{BzImage, KernelLoader};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::params::Initrd;
use super::regs::Protocol;
use crate::error::{IoAt, VmError};
use crate::kvm::layout::{HIGH_RAM_START, MMIO_HOLE_START};

/// Offset of `startup_64` in a bzImage's protected-mode part.
const STARTUP_64_OFFSET: u64 = 0x200;
/// The initrd's alignment.
const PAGE: u64 = 4096;

/// A kernel in guest memory.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    /// How to enter it.
    pub protocol: Protocol,
    /// The bzImage's setup header (for the zero page); None for PVH.
    pub header: Option<setup_header>,
    /// The first byte after the kernel.
    pub end: u64,
}

fn is_elf(file: &mut File, path: &Path) -> Result<bool, VmError> {
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic).at(path)?;
    file.seek(SeekFrom::Start(0)).at(path)?;
    Ok(n == 4 && magic == *b"\x7fELF")
}

/// Loads the kernel at `path` into `mem`.
pub fn load_kernel(mem: &GuestMemoryMmap, path: &Path) -> Result<LoadedKernel, VmError> {
    let mut file = File::open(path).at(path)?;
    let bad = |e: &dyn std::fmt::Display| {
        VmError::Launch(format!("cannot load kernel {}: {e}", path.display()))
    };
    if is_elf(&mut file, path)? {
        let r = Elf::load(mem, None, &mut file, Some(GuestAddress(HIGH_RAM_START)))
            .map_err(|e| bad(&e))?;
        let PvhBootCapability::PvhEntryPresent(entry) = r.pvh_boot_cap else {
            return Err(bad(
                &"the ELF kernel has no PVH entry note (build it with CONFIG_PVH=y, or boot the bzImage)",
            ));
        };
        return Ok(LoadedKernel {
            protocol: Protocol::Pvh(entry.0),
            header: None,
            end: r.kernel_end,
        });
    }
    let r = BzImage::load(mem, None, &mut file, Some(GuestAddress(HIGH_RAM_START)))
        .map_err(|e| bad(&e))?;
    let header = r.setup_header.ok_or_else(|| bad(&"no setup header"))?;
    if header.version < 0x0206 {
        return Err(bad(&format!("boot protocol {:#x} is older than 2.06", {
            header.version
        })));
    }
    Ok(LoadedKernel {
        protocol: Protocol::Linux64(r.kernel_load.0 + STARTUP_64_OFFSET),
        header: Some(header),
        end: r.kernel_end,
    })
}

/// Where an initrd of `size` bytes goes: page-aligned, as high as fits
/// below both the end of low RAM and `addr_max`, above the kernel.
pub fn initrd_address(size: u64, memory_bytes: u64, kernel_end: u64, addr_max: u64) -> Option<u64> {
    let top = memory_bytes
        .min(MMIO_HOLE_START)
        .min(addr_max.saturating_add(1));
    let address = top.checked_sub(size)? / PAGE * PAGE;
    (address >= kernel_end.div_ceil(PAGE) * PAGE).then_some(address)
}

/// Loads the initrd at `path` for a kernel ending at `kernel_end`.
pub fn load_initrd(
    mem: &GuestMemoryMmap,
    path: &Path,
    memory_bytes: u64,
    kernel: &LoadedKernel,
) -> Result<Initrd, VmError> {
    let bytes = std::fs::read(path).at(path)?;
    let size = bytes.len() as u64;
    let addr_max = kernel
        .header
        .map_or(u64::from(u32::MAX), |h| u64::from(h.initrd_addr_max));
    let address = initrd_address(size, memory_bytes, kernel.end, addr_max).ok_or_else(|| {
        VmError::Launch(format!(
            "the initramfs {} ({} MiB) does not fit in guest memory beside the kernel; give the VM more memory",
            path.display(),
            size >> 20
        ))
    })?;
    mem.write_slice(&bytes, GuestAddress(address))
        .map_err(|e| VmError::Launch(format!("writing the initramfs: {e}")))?;
    Ok(Initrd { address, size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initrd_goes_high_and_aligned() {
        let mem = 512 << 20;
        assert_eq!(
            initrd_address(0x1234, mem, 0x200_0000, u64::from(u32::MAX)),
            Some(mem - 0x2000)
        );
        // The kernel's limit wins over the end of RAM.
        assert_eq!(initrd_address(4096, mem, 0, 0xff_ffff), Some(0xff_f000));
        // Too big: it would overlap the kernel.
        assert_eq!(
            initrd_address(mem, mem, 0x200_0000, u64::from(u32::MAX)),
            None
        );
        // Above the hole, RAM is not used for the initrd.
        assert_eq!(
            initrd_address(4096, 8 << 30, 0, u64::from(u32::MAX)),
            Some(MMIO_HOLE_START - 4096)
        );
    }

    #[test]
    fn refuses_what_is_not_a_kernel() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 16 << 20)]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk");
        std::fs::write(&junk, vec![0u8; 8192]).unwrap();
        let e = load_kernel(&mem, &junk).unwrap_err().to_string();
        assert!(
            e.contains("cannot load kernel") && e.contains("junk"),
            "{e}"
        );
        let missing = load_kernel(&mem, &dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}
