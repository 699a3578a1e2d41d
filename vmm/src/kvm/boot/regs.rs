//! The boot CPU's state at kernel entry, per protocol:
//!
//! - PVH: 32-bit protected mode, paging off, flat 4 GiB segments, `EBX`
//!   pointing at the start info.
//! - 64-bit boot protocol: long mode with identity-mapped 2 MiB pages
//!   over the first 4 GiB, flat 64-bit segments, `RSI` pointing at the
//!   zero page.
//!
//! Every vCPU also gets the boot MSRs (write-back MTRR default, fast
//! strings) and its LAPIC's LINT0/LINT1 as ExtINT/NMI.

use kvm_bindings::{kvm_fpu, kvm_msr_entry, kvm_regs, kvm_segment, kvm_sregs, Msrs};
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::super::layout::{
    BOOT_STACK_TOP, GDT_ADDRESS, PDPT_ADDRESS, PD_ADDRESS, PML4_ADDRESS, PVH_INFO_ADDRESS,
    ZERO_PAGE_ADDRESS,
};
use crate::error::VmError;

const CR0_PE: u64 = 1;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;
/// Page-table entry bits: present, writable, 2 MiB page.
const PTE_PRESENT_RW: u64 = 0x3;
const PTE_HUGE: u64 = 0x80;

const MSR_IA32_MISC_ENABLE: u32 = 0x1a0;
const MISC_ENABLE_FAST_STRING: u64 = 1;
const MSR_MTRR_DEF_TYPE: u32 = 0x2ff;
const MTRR_ENABLE: u64 = 1 << 11;
const MTRR_TYPE_WB: u64 = 6;

/// The boot protocol a kernel is entered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// PVH at this 32-bit entry point.
    Pvh(u64),
    /// The 64-bit boot protocol at this entry point (`startup_64`).
    Linux64(u64),
}

/// A GDT descriptor from `flags` (access byte and flags nibble as in the
/// kernel's `GDT_ENTRY`), `base` and `limit`.
pub fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    let (flags, base, limit) = (u64::from(flags), u64::from(base), u64::from(limit));
    ((base & 0xff00_0000) << 32)
        | ((flags & 0xf0ff) << 40)
        | ((limit & 0xf_0000) << 32)
        | ((base & 0xff_ffff) << 16)
        | (limit & 0xffff)
}

/// The GDT for `protocol`: null, code, data, TSS.
pub fn gdt(protocol: Protocol) -> [u64; 4] {
    match protocol {
        Protocol::Pvh(_) => [
            0,
            gdt_entry(0xc09b, 0, 0xffff_ffff),
            gdt_entry(0xc093, 0, 0xffff_ffff),
            gdt_entry(0x008b, 0, 0x67),
        ],
        Protocol::Linux64(_) => [
            0,
            gdt_entry(0xa09b, 0, 0xf_ffff),
            gdt_entry(0xc093, 0, 0xf_ffff),
            gdt_entry(0x808b, 0, 0xf_ffff),
        ],
    }
}

/// The KVM segment described by GDT entry `index`.
pub fn segment(entry: u64, index: u8) -> kvm_segment {
    let g = ((entry >> 55) & 1) as u8;
    let raw_limit = ((entry >> 32) & 0xf_0000) as u32 | (entry & 0xffff) as u32;
    let present = ((entry >> 47) & 1) as u8;
    kvm_segment {
        base: ((entry >> 32) & 0xff00_0000) | ((entry >> 16) & 0xff_ffff),
        limit: if g == 1 {
            (raw_limit << 12) | 0xfff
        } else {
            raw_limit
        },
        selector: u16::from(index) * 8,
        type_: ((entry >> 40) & 0xf) as u8,
        present,
        dpl: ((entry >> 45) & 3) as u8,
        db: ((entry >> 54) & 1) as u8,
        s: ((entry >> 44) & 1) as u8,
        l: ((entry >> 53) & 1) as u8,
        g,
        avl: ((entry >> 52) & 1) as u8,
        unusable: u8::from(present == 0),
        padding: 0,
    }
}

/// Identity page tables for the first 4 GiB (2 MiB pages): one PML4
/// entry, four PDPT entries, 2048 PD entries.
pub fn write_page_tables(mem: &GuestMemoryMmap) -> Result<(), VmError> {
    let w = |v: u64, at: u64| {
        mem.write_obj(v, GuestAddress(at))
            .map_err(|e| VmError::Launch(format!("writing page tables: {e}")))
    };
    w(PDPT_ADDRESS | PTE_PRESENT_RW, PML4_ADDRESS)?;
    for gib in 0..4u64 {
        w(
            (PD_ADDRESS + gib * 0x1000) | PTE_PRESENT_RW,
            PDPT_ADDRESS + gib * 8,
        )?;
    }
    for i in 0..2048u64 {
        w((i << 21) | PTE_PRESENT_RW | PTE_HUGE, PD_ADDRESS + i * 8)?;
    }
    Ok(())
}

/// The boot CPU's special registers for `protocol`, on top of `sregs`.
pub fn boot_sregs(mut sregs: kvm_sregs, protocol: Protocol) -> kvm_sregs {
    let table = gdt(protocol);
    let (code, data, tss) = (
        segment(table[1], 1),
        segment(table[2], 2),
        segment(table[3], 3),
    );
    sregs.gdt.base = GDT_ADDRESS;
    sregs.gdt.limit = (size_of_val(&table) - 1) as u16;
    sregs.idt.base = 0;
    sregs.idt.limit = 0;
    sregs.cs = code;
    for s in [
        &mut sregs.ds,
        &mut sregs.es,
        &mut sregs.fs,
        &mut sregs.gs,
        &mut sregs.ss,
    ] {
        *s = data;
    }
    sregs.tr = tss;
    match protocol {
        Protocol::Pvh(_) => {
            sregs.cr0 = CR0_PE | CR0_ET;
            sregs.cr4 = 0;
            sregs.efer = 0;
        }
        Protocol::Linux64(_) => {
            sregs.cr3 = PML4_ADDRESS;
            sregs.cr4 = CR4_PAE;
            // Caches on (the reset value has CD and NW set).
            sregs.cr0 = CR0_PE | CR0_PG | CR0_ET;
            sregs.efer |= EFER_LME | EFER_LMA;
        }
    }
    sregs
}

/// The boot CPU's general registers for `protocol`.
pub fn boot_regs(protocol: Protocol) -> kvm_regs {
    match protocol {
        Protocol::Pvh(entry) => kvm_regs {
            rip: entry,
            rbx: PVH_INFO_ADDRESS,
            rflags: 2,
            ..Default::default()
        },
        Protocol::Linux64(entry) => kvm_regs {
            rip: entry,
            rsi: ZERO_PAGE_ADDRESS,
            rsp: BOOT_STACK_TOP,
            rbp: BOOT_STACK_TOP,
            rflags: 2,
            ..Default::default()
        },
    }
}

/// Puts the boot CPU at the kernel's entry: GDT and page tables in
/// memory, then its registers.
pub fn setup_boot_cpu(
    vcpu: &VcpuFd,
    mem: &GuestMemoryMmap,
    protocol: Protocol,
) -> Result<(), VmError> {
    let table = gdt(protocol);
    for (i, e) in table.iter().enumerate() {
        mem.write_obj(*e, GuestAddress(GDT_ADDRESS + i as u64 * 8))
            .map_err(|e| VmError::Launch(format!("writing the GDT: {e}")))?;
    }
    if let Protocol::Linux64(_) = protocol {
        write_page_tables(mem)?;
    }
    let sregs = vcpu.get_sregs().map_err(|e| VmError::kvm("get sregs", e))?;
    vcpu.set_sregs(&boot_sregs(sregs, protocol))
        .map_err(|e| VmError::kvm("set sregs", e))?;
    vcpu.set_regs(&boot_regs(protocol))
        .map_err(|e| VmError::kvm("set regs", e))
}

/// What every vCPU needs before the guest runs: x87/SSE defaults, boot
/// MSRs, LINT0 as ExtINT and LINT1 as NMI.
pub fn setup_any_cpu(vcpu: &VcpuFd) -> Result<(), VmError> {
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(|e| VmError::kvm("set FPU", e))?;
    let entries = [
        (MSR_IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING),
        (MSR_MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WB),
    ]
    .map(|(index, data)| kvm_msr_entry {
        index,
        data,
        ..Default::default()
    });
    let msrs =
        Msrs::from_entries(&entries).map_err(|e| VmError::kvm("build MSRs", format!("{e:?}")))?;
    let set = vcpu
        .set_msrs(&msrs)
        .map_err(|e| VmError::kvm("set MSRs", e))?;
    if set != entries.len() {
        return Err(VmError::kvm(
            "set MSRs",
            format!("KVM took {set} of {} boot MSRs", entries.len()),
        ));
    }
    set_lint(vcpu)
}

/// LVT LINT0 = ExtINT, LINT1 = NMI (what firmware leaves for Linux).
fn set_lint(vcpu: &VcpuFd) -> Result<(), VmError> {
    const LVT_LINT0: usize = 0x350;
    const LVT_LINT1: usize = 0x360;
    const MODE_EXTINT: u32 = 7 << 8;
    const MODE_NMI: u32 = 4 << 8;
    let mut lapic = vcpu.get_lapic().map_err(|e| VmError::kvm("get LAPIC", e))?;
    for (offset, mode) in [(LVT_LINT0, MODE_EXTINT), (LVT_LINT1, MODE_NMI)] {
        let mut raw = [0u8; 4];
        for (i, b) in raw.iter_mut().enumerate() {
            *b = lapic.regs[offset + i] as u8;
        }
        let v = (u32::from_le_bytes(raw) & !0x700) | mode;
        for (i, b) in v.to_le_bytes().into_iter().enumerate() {
            lapic.regs[offset + i] = b as _;
        }
    }
    vcpu.set_lapic(&lapic)
        .map_err(|e| VmError::kvm("set LAPIC", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_entries_match_the_kernels() {
        // The kernel's GDT_ENTRY_INIT(0xa09b, 0, 0xfffff) for __KERNEL_CS.
        assert_eq!(gdt_entry(0xa09b, 0, 0xf_ffff), 0x00af_9b00_0000_ffff);
        assert_eq!(gdt_entry(0xc093, 0, 0xf_ffff), 0x00cf_9300_0000_ffff);
        assert_eq!(gdt_entry(0x808b, 0, 0xf_ffff), 0x008f_8b00_0000_ffff);
        assert_eq!(gdt_entry(0xc09b, 0x1234_5678, 0xf_ffff) >> 56, 0x12);
    }

    #[test]
    fn segments_decode_their_descriptors() {
        let code64 = segment(gdt(Protocol::Linux64(0))[1], 1);
        assert_eq!(
            (code64.selector, code64.l, code64.db, code64.g),
            (8, 1, 0, 1)
        );
        assert_eq!((code64.type_, code64.s, code64.present), (0xb, 1, 1));
        assert_eq!(code64.limit, 0xffff_ffff);
        let code32 = segment(gdt(Protocol::Pvh(0))[1], 1);
        assert_eq!((code32.l, code32.db, code32.limit), (0, 1, 0xffff_ffff));
        let tss = segment(gdt(Protocol::Pvh(0))[3], 3);
        assert_eq!(
            (tss.selector, tss.type_, tss.s, tss.limit),
            (0x18, 0xb, 0, 0x67)
        );
        assert_eq!(segment(0, 0).unusable, 1);
    }

    #[test]
    fn registers_per_protocol() {
        let s = boot_sregs(kvm_sregs::default(), Protocol::Linux64(0x100200));
        assert_eq!(
            (s.cr0 & CR0_PG, s.cr4 & CR4_PAE, s.cr3),
            (CR0_PG, CR4_PAE, 0x9000)
        );
        assert_eq!(s.efer & (EFER_LME | EFER_LMA), EFER_LME | EFER_LMA);
        assert_eq!((s.cs.l, s.ds.selector, s.tr.selector), (1, 0x10, 0x18));
        let r = boot_regs(Protocol::Linux64(0x100200));
        assert_eq!(
            (r.rip, r.rsi, r.rsp, r.rflags),
            (0x100200, 0x7000, 0x8ff0, 2)
        );
        let s = boot_sregs(kvm_sregs::default(), Protocol::Pvh(0x1000000));
        assert_eq!((s.cr0, s.cr4, s.efer, s.cs.db), (CR0_PE | CR0_ET, 0, 0, 1));
        let r = boot_regs(Protocol::Pvh(0x1000000));
        assert_eq!((r.rip, r.rbx), (0x1000000, 0x6000));
    }

    #[test]
    fn page_tables_map_four_gib_identity() {
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 1 << 20)]).unwrap();
        write_page_tables(&mem).unwrap();
        let r = |a: u64| mem.read_obj::<u64>(GuestAddress(a)).unwrap();
        assert_eq!(r(PML4_ADDRESS), 0xa003);
        assert_eq!(r(PDPT_ADDRESS + 3 * 8), 0xe003);
        assert_eq!(r(PD_ADDRESS), 0x83);
        // The last 2 MiB page below 4 GiB.
        assert_eq!(r(PD_ADDRESS + 2047 * 8), (2047 << 21) | 0x83);
    }
}
