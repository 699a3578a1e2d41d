//! Where everything lies in an x86_64 guest's physical memory, the e820
//! map the guest is given, and how RAM is divided between NUMA nodes.
//!
//! ```text
//! 0x0000_0500  GDT (4 entries)            0x0000_9000  PML4
//! 0x0000_6000  PVH start info + memmap    0x0000_a000  PDPT
//! 0x0000_7000  boot_params (zero page)    0x0000_b000  4 page directories
//! 0x0000_8ff0  boot stack top             0x0002_0000  command line
//! 0x000e_0000  RSDP, then the other ACPI tables up to 1 MiB
//! 0x0010_0000  kernel (bzImage protected-mode part; vmlinux at its own
//!              physical addresses), initrd at the top of low RAM
//! 0xc000_0000  MMIO hole (IOAPIC, LAPIC) up to 4 GiB; RAM continues above
//! ```

use vm_memory::GuestAddress;

/// The GDT.
pub const GDT_ADDRESS: u64 = 0x500;
/// The PVH `hvm_start_info`, followed by its memory map.
pub const PVH_INFO_ADDRESS: u64 = 0x6000;
/// The `boot_params` ("zero page") of the 64-bit boot protocol.
pub const ZERO_PAGE_ADDRESS: u64 = 0x7000;
/// The boot stack's top.
pub const BOOT_STACK_TOP: u64 = 0x8ff0;
/// The top-level page table.
pub const PML4_ADDRESS: u64 = 0x9000;
/// The page-directory-pointer table.
pub const PDPT_ADDRESS: u64 = 0xa000;
/// The first of four page directories (2 MiB pages up to 4 GiB).
pub const PD_ADDRESS: u64 = 0xb000;
/// The kernel command line.
pub const CMDLINE_ADDRESS: u64 = 0x2_0000;
/// The most command-line bytes, NUL included (x86 `COMMAND_LINE_SIZE`).
pub const CMDLINE_MAX: usize = 2048;
/// The end of usable RAM below 1 MiB (the EBDA starts here).
pub const EBDA_START: u64 = 0x9_fc00;
/// The RSDP, where Linux also scans for it.
pub const RSDP_ADDRESS: u64 = 0xe_0000;
/// End of the area ACPI tables may fill.
pub const ACPI_END: u64 = 0x10_0000;
/// Start of RAM above the legacy area: kernels load here or above.
pub const HIGH_RAM_START: u64 = 0x10_0000;
/// Start of the 32-bit MMIO hole (IOAPIC, LAPIC) below 4 GiB.
pub const MMIO_HOLE_START: u64 = 0xC000_0000;
/// End of the hole.
pub const MMIO_HOLE_END: u64 = 0x1_0000_0000;
/// The IOAPIC's MMIO base.
pub const IOAPIC_ADDRESS: u32 = 0xfec0_0000;
/// The local APICs' MMIO base.
pub const LAPIC_ADDRESS: u32 = 0xfee0_0000;

/// COM1 (console).
pub const COM1: u16 = 0x3f8;
/// COM2 (the host/guest channel).
pub const COM2: u16 = 0x2f8;
/// COM1's interrupt (GSI, the ISA IRQ).
pub const COM1_GSI: u32 = 4;
/// COM2's interrupt.
pub const COM2_GSI: u32 = 3;
/// i8042 command port (writing 0xFE resets the machine).
pub const I8042_COMMAND: u16 = 0x64;
/// The I/O port of the hardware-reduced FADT's sleep control and status
/// registers: writing `SLP_EN` (bit 5) with `SLP_TYP` 5 (bits 2-4), 0x34,
/// powers the guest off.
pub const SLEEP_CONTROL_PORT: u16 = 0x3c0;
/// The `\_S5` sleep type the DSDT declares.
pub const S5_SLEEP_TYPE: u8 = 5;
/// A write here ends the writing vCPU (freestanding guests only).
pub const DEBUG_EXIT: u16 = 0x501;

/// e820 type of usable RAM.
pub const E820_RAM: u32 = 1;
/// e820 type of reserved memory.
pub const E820_RESERVED: u32 = 2;

/// One e820 entry: `(start, length, type)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// [`E820_RAM`] or [`E820_RESERVED`].
    pub kind: u32,
}

/// Guest RAM ranges for `bytes` of memory, around the MMIO hole.
pub fn ram_ranges(bytes: u64) -> Vec<(GuestAddress, usize)> {
    if bytes <= MMIO_HOLE_START {
        return vec![(GuestAddress(0), bytes as usize)];
    }
    vec![
        (GuestAddress(0), MMIO_HOLE_START as usize),
        (
            GuestAddress(MMIO_HOLE_END),
            (bytes - MMIO_HOLE_START) as usize,
        ),
    ]
}

/// The guest physical address of RAM byte `offset` (RAM counted without
/// the hole).
fn ram_address(offset: u64) -> u64 {
    if offset < MMIO_HOLE_START {
        offset
    } else {
        offset - MMIO_HOLE_START + MMIO_HOLE_END
    }
}

/// The e820 map of a guest with `bytes` of RAM: low RAM up to the EBDA,
/// the BIOS area reserved (the ACPI tables live there), RAM from 1 MiB,
/// and RAM above the hole when there is any.
pub fn e820_map(bytes: u64) -> Vec<E820Entry> {
    let mut map = vec![
        E820Entry {
            start: 0,
            len: EBDA_START,
            kind: E820_RAM,
        },
        E820Entry {
            start: RSDP_ADDRESS,
            len: ACPI_END - RSDP_ADDRESS,
            kind: E820_RESERVED,
        },
    ];
    let low_end = bytes.min(MMIO_HOLE_START);
    map.push(E820Entry {
        start: HIGH_RAM_START,
        len: low_end - HIGH_RAM_START,
        kind: E820_RAM,
    });
    if bytes > MMIO_HOLE_START {
        map.push(E820Entry {
            start: MMIO_HOLE_END,
            len: bytes - MMIO_HOLE_START,
            kind: E820_RAM,
        });
    }
    map
}

/// Each NUMA node's RAM as `(node, start, length)`: the node's slice
/// ([`crate::numa::node_slices`]), and a slice that spans the hole
/// becomes two ranges.
pub fn node_ranges(bytes: u64, nodes: u32) -> Vec<(u32, u64, u64)> {
    let mut out = Vec::new();
    for (node, first, len) in crate::numa::node_slices(bytes, nodes) {
        let (mut at, end) = (first, first + len);
        if at < MMIO_HOLE_START && end > MMIO_HOLE_START {
            out.push((node, at, MMIO_HOLE_START - at));
            at = MMIO_HOLE_START;
        }
        if end > at {
            out.push((node, ram_address(at), end - at));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_goes_around_the_mmio_hole() {
        assert_eq!(ram_ranges(1 << 20), vec![(GuestAddress(0), 1 << 20)]);
        let r = ram_ranges(4 << 30);
        assert_eq!(r[0], (GuestAddress(0), MMIO_HOLE_START as usize));
        assert_eq!(r[1].0, GuestAddress(MMIO_HOLE_END));
        assert_eq!(r[0].1 + r[1].1, 4 << 30);
    }

    #[test]
    fn e820_of_small_and_large_guests() {
        let small = e820_map(512 << 20);
        assert_eq!(small.len(), 3);
        assert_eq!(
            small[0],
            E820Entry {
                start: 0,
                len: 0x9fc00,
                kind: 1
            }
        );
        assert_eq!(
            small[1],
            E820Entry {
                start: 0xe0000,
                len: 0x20000,
                kind: 2
            }
        );
        assert_eq!(
            small[2],
            E820Entry {
                start: 0x100000,
                len: (512 << 20) - 0x100000,
                kind: 1
            }
        );
        let large = e820_map(6 << 30);
        assert_eq!(large[2].start + large[2].len, MMIO_HOLE_START);
        assert_eq!(
            large[3],
            E820Entry {
                start: 1 << 32,
                len: (6 << 30) - MMIO_HOLE_START,
                kind: 1
            }
        );
    }

    #[test]
    fn nodes_split_ram_and_the_hole() {
        let two = node_ranges(1 << 30, 2);
        assert_eq!(two, vec![(0, 0, 512 << 20), (1, 512 << 20, 512 << 20)]);
        // 4 GiB over two nodes: node 1's slice crosses the hole.
        let big = node_ranges(4 << 30, 2);
        assert_eq!(
            big,
            vec![
                (0, 0, 2 << 30),
                (1, 2 << 30, MMIO_HOLE_START - (2 << 30)),
                (1, MMIO_HOLE_END, (4 << 30) - MMIO_HOLE_START),
            ]
        );
        let total: u64 = node_ranges(1000 << 20, 3).iter().map(|r| r.2).sum();
        assert_eq!(total, 1000 << 20);
    }
}
