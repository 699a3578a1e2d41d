//! What the guest kernel is told at entry: the 64-bit boot protocol's
//! `boot_params` (zero page) or PVH's `hvm_start_info` with its memory map
//! and module list. Built as plain values (tested field by field), then
//! written with linux-loader's boot configurators.

use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::super::layout::{E820Entry, CMDLINE_ADDRESS, PVH_INFO_ADDRESS, ZERO_PAGE_ADDRESS};
use crate::error::VmError;

/// `hvm_start_info.magic`.
pub const PVH_MAGIC: u32 = 0x336e_c578;
/// Where the PVH module list (the initrd) goes.
pub const PVH_MODLIST_ADDRESS: u64 = PVH_INFO_ADDRESS + 0x40;
/// Where the PVH memory map goes.
pub const PVH_MEMMAP_ADDRESS: u64 = PVH_INFO_ADDRESS + 0x100;
/// `type_of_loader`: "undefined" loader.
const LOADER_UNDEFINED: u8 = 0xff;
/// `boot_flag`.
const BOOT_FLAG: u16 = 0xaa55;
/// `header`: "HdrS".
const HDRS: u32 = 0x5372_6448;
/// The most e820 entries the zero page holds.
const ZERO_PAGE_E820_MAX: usize = 128;

/// Where the initrd lies, if there is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Initrd {
    /// Guest physical address.
    pub address: u64,
    /// Size in bytes.
    pub size: u64,
}

/// What both protocols pass: command line length, initrd, RSDP, e820.
#[derive(Debug, Clone)]
pub struct BootInfo {
    /// Command line bytes without the NUL (it lies at [`CMDLINE_ADDRESS`]).
    pub cmdline_len: usize,
    /// The initrd.
    pub initrd: Option<Initrd>,
    /// The RSDP's address.
    pub rsdp: u64,
    /// The memory map.
    pub e820: Vec<E820Entry>,
}

/// The zero page for a bzImage whose setup header is `hdr`.
pub fn zero_page(hdr: setup_header, info: &BootInfo) -> Result<boot_params, VmError> {
    if info.e820.len() > ZERO_PAGE_E820_MAX {
        return Err(VmError::Launch(format!(
            "{} e820 entries do not fit the zero page",
            info.e820.len()
        )));
    }
    let mut p = boot_params {
        hdr,
        ..Default::default()
    };
    p.hdr.type_of_loader = LOADER_UNDEFINED;
    p.hdr.boot_flag = BOOT_FLAG;
    p.hdr.header = HDRS;
    p.hdr.cmd_line_ptr = CMDLINE_ADDRESS as u32;
    p.hdr.cmdline_size = info.cmdline_len as u32;
    if let Some(initrd) = info.initrd {
        p.hdr.ramdisk_image = initrd.address as u32;
        p.hdr.ramdisk_size = initrd.size as u32;
    }
    p.acpi_rsdp_addr = info.rsdp;
    for (slot, e) in p.e820_table.iter_mut().zip(&info.e820) {
        *slot = boot_e820_entry {
            addr: e.start,
            size: e.len,
            r#type: e.kind,
        };
    }
    p.e820_entries = info.e820.len() as u8;
    Ok(p)
}

/// PVH start info, memory map and module list.
pub fn pvh_start_info(
    info: &BootInfo,
) -> (
    hvm_start_info,
    Vec<hvm_memmap_table_entry>,
    Vec<hvm_modlist_entry>,
) {
    let memmap: Vec<_> = info
        .e820
        .iter()
        .map(|e| hvm_memmap_table_entry {
            addr: e.start,
            size: e.len,
            type_: e.kind,
            reserved: 0,
        })
        .collect();
    let modules: Vec<_> = info
        .initrd
        .iter()
        .map(|i| hvm_modlist_entry {
            paddr: i.address,
            size: i.size,
            ..Default::default()
        })
        .collect();
    let start = hvm_start_info {
        magic: PVH_MAGIC,
        version: 1,
        nr_modules: modules.len() as u32,
        modlist_paddr: if modules.is_empty() {
            0
        } else {
            PVH_MODLIST_ADDRESS
        },
        cmdline_paddr: CMDLINE_ADDRESS,
        rsdp_paddr: info.rsdp,
        memmap_paddr: PVH_MEMMAP_ADDRESS,
        memmap_entries: memmap.len() as u32,
        ..Default::default()
    };
    (start, memmap, modules)
}

/// Writes the zero page at [`ZERO_PAGE_ADDRESS`].
pub fn write_zero_page(mem: &GuestMemoryMmap, p: &boot_params) -> Result<(), VmError> {
    let params = BootParams::new(p, GuestAddress(ZERO_PAGE_ADDRESS));
    LinuxBootConfigurator::write_bootparams(&params, mem)
        .map_err(|e| VmError::Launch(format!("writing boot params: {e}")))
}

/// Writes the PVH start info at [`PVH_INFO_ADDRESS`], its memory map and
/// module list.
pub fn write_pvh(mem: &GuestMemoryMmap, info: &BootInfo) -> Result<(), VmError> {
    let (start, memmap, modules) = pvh_start_info(info);
    let mut params = BootParams::new(&start, GuestAddress(PVH_INFO_ADDRESS));
    params.set_sections(&memmap, GuestAddress(PVH_MEMMAP_ADDRESS));
    if !modules.is_empty() {
        params.set_modules(&modules, GuestAddress(PVH_MODLIST_ADDRESS));
    }
    PvhBootConfigurator::write_bootparams(&params, mem)
        .map_err(|e| VmError::Launch(format!("writing PVH start info: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kvm::layout::e820_map;
    use vm_memory::Bytes;

    fn info() -> BootInfo {
        BootInfo {
            cmdline_len: 42,
            initrd: Some(Initrd {
                address: 0x1f00_0000,
                size: 0x80_0000,
            }),
            rsdp: 0xe_0000,
            e820: e820_map(512 << 20),
        }
    }

    #[test]
    fn zero_page_fields() {
        let hdr = setup_header {
            setup_sects: 27,
            version: 0x020f,
            loadflags: 1,
            initrd_addr_max: 0x7fff_ffff,
            ..Default::default()
        };
        let p = zero_page(hdr, &info()).unwrap();
        // Kept from the image's header.
        assert_eq!(
            (p.hdr.setup_sects, { p.hdr.version }, p.hdr.loadflags),
            (27, 0x020f, 1)
        );
        assert_eq!(p.hdr.type_of_loader, 0xff);
        assert_eq!({ p.hdr.boot_flag }, 0xaa55);
        assert_eq!({ p.hdr.header }, 0x5372_6448);
        assert_eq!({ p.hdr.cmd_line_ptr }, 0x2_0000);
        assert_eq!({ p.hdr.cmdline_size }, 42);
        assert_eq!({ p.hdr.ramdisk_image }, 0x1f00_0000);
        assert_eq!({ p.hdr.ramdisk_size }, 0x80_0000);
        assert_eq!({ p.acpi_rsdp_addr }, 0xe_0000);
        assert_eq!(p.e820_entries, 3);
        let e = |i: usize| {
            let x = p.e820_table[i];
            ({ x.addr }, { x.size }, { x.r#type })
        };
        assert_eq!(e(0), (0, 0x9_fc00, 1));
        assert_eq!(e(1), (0xe_0000, 0x2_0000, 2));
        assert_eq!(e(2), (0x10_0000, (512 << 20) - 0x10_0000, 1));
        assert_eq!(e(3), (0, 0, 0));
    }

    #[test]
    fn pvh_start_info_fields_and_memory() {
        let (s, memmap, modules) = pvh_start_info(&info());
        assert_eq!((s.magic, s.version, s.flags), (0x336e_c578, 1, 0));
        assert_eq!((s.nr_modules, s.modlist_paddr), (1, 0x6040));
        assert_eq!((s.cmdline_paddr, s.rsdp_paddr), (0x2_0000, 0xe_0000));
        assert_eq!((s.memmap_paddr, s.memmap_entries), (0x6100, 3));
        assert_eq!(
            (memmap[1].addr, memmap[1].size, memmap[1].type_),
            (0xe_0000, 0x2_0000, 2)
        );
        assert_eq!(
            (modules[0].paddr, modules[0].size),
            (0x1f00_0000, 0x80_0000)
        );
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        write_pvh(&mem, &info()).unwrap();
        let magic: u32 = mem.read_obj(GuestAddress(PVH_INFO_ADDRESS)).unwrap();
        let entry2_type: u32 = mem
            .read_obj(GuestAddress(PVH_MEMMAP_ADDRESS + 2 * 24 + 16))
            .unwrap();
        let module_size: u64 = mem.read_obj(GuestAddress(PVH_MODLIST_ADDRESS + 8)).unwrap();
        assert_eq!((magic, entry2_type, module_size), (PVH_MAGIC, 1, 0x80_0000));
        let no_initrd = BootInfo {
            initrd: None,
            ..info()
        };
        assert_eq!(pvh_start_info(&no_initrd).0.modlist_paddr, 0);
    }
}
