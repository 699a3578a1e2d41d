//! Saving and restoring the own VMM's VM state: every vCPU's registers,
//! special registers, MSRs, FPU/XSAVE state, extended control and debug
//! registers, LAPIC, pending events and MP state; the in-kernel irqchip
//! (both PICs and the IOAPIC), the PIT and the KVM clock; and the UARTs.
//! Guest memory is saved and loaded by [`crate::snapshot::ram`]. The
//! state serializes to JSON (kvm-bindings' `serde` feature gives each
//! KVM structure its bytes), versioned by [`KVM_STATE_FORMAT`].

use kvm_bindings::{
    kvm_clock_data, kvm_debugregs, kvm_irqchip, kvm_lapic_state, kvm_mp_state, kvm_msr_entry,
    kvm_pit_state2, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave, Msrs,
    KVM_IRQCHIP_IOAPIC, KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE,
};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use serde::{Deserialize, Serialize};
use vm_superio::serial::SerialState;

use crate::error::VmError;

/// The layout of [`KvmState`]; another is refused.
pub const KVM_STATE_FORMAT: u32 = 1;

/// One vCPU's architectural state.
#[derive(Serialize, Deserialize)]
pub struct VcpuState {
    regs: kvm_regs,
    sregs: kvm_sregs,
    xsave: kvm_xsave,
    xcrs: kvm_xcrs,
    debugregs: kvm_debugregs,
    lapic: kvm_lapic_state,
    events: kvm_vcpu_events,
    mp_state: kvm_mp_state,
    /// Every MSR KVM lets the VMM read, as (index, value).
    msrs: Vec<(u32, u64)>,
}

/// The VM-wide in-kernel devices and clock.
#[derive(Clone, Serialize, Deserialize)]
pub struct VmDevicesState {
    pic_master: kvm_irqchip,
    pic_slave: kvm_irqchip,
    ioapic: kvm_irqchip,
    pit: kvm_pit_state2,
    clock: kvm_clock_data,
}

/// A UART's registers and receive FIFO (vm-superio's `SerialState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UartState {
    divisor: [u8; 2],
    interrupt_enable: u8,
    interrupt_identification: u8,
    line_control: u8,
    line_status: u8,
    modem_control: u8,
    modem_status: u8,
    scratch: u8,
    fifo: Vec<u8>,
}

impl From<&SerialState> for UartState {
    fn from(s: &SerialState) -> Self {
        UartState {
            divisor: [s.baud_divisor_low, s.baud_divisor_high],
            interrupt_enable: s.interrupt_enable,
            interrupt_identification: s.interrupt_identification,
            line_control: s.line_control,
            line_status: s.line_status,
            modem_control: s.modem_control,
            modem_status: s.modem_status,
            scratch: s.scratch,
            fifo: s.in_buffer.clone(),
        }
    }
}

impl From<&UartState> for SerialState {
    fn from(s: &UartState) -> Self {
        SerialState {
            baud_divisor_low: s.divisor[0],
            baud_divisor_high: s.divisor[1],
            interrupt_enable: s.interrupt_enable,
            interrupt_identification: s.interrupt_identification,
            line_control: s.line_control,
            line_status: s.line_status,
            modem_control: s.modem_control,
            modem_status: s.modem_status,
            scratch: s.scratch,
            in_buffer: s.fifo.clone(),
        }
    }
}

/// A whole paused VM but its memory.
#[derive(Serialize, Deserialize)]
pub struct KvmState {
    /// [`KVM_STATE_FORMAT`].
    pub format: u32,
    /// The topology it was created with.
    pub topology: ktstr_topology::Topology,
    /// Guest RAM in bytes.
    pub memory_bytes: u64,
    /// Each vCPU, in CPU order.
    pub vcpus: Vec<VcpuState>,
    /// The in-kernel devices and clock.
    pub devices: VmDevicesState,
    /// COM1 and COM2.
    pub uarts: [UartState; 2],
}

fn kvm(op: &'static str) -> impl Fn(kvm_ioctls::Error) -> VmError {
    move |e| VmError::kvm(op, e)
}

/// The MSRs this KVM lets a VMM save: its index list, less those that
/// cannot be read one by one.
pub fn saveable_msrs(kvm_fd: &Kvm, vcpu: &VcpuFd) -> Result<Vec<u32>, VmError> {
    let list = kvm_fd
        .get_msr_index_list()
        .map_err(kvm("get MSR index list"))?;
    Ok(list
        .as_slice()
        .iter()
        .copied()
        .filter(|&index| read_msrs(vcpu, &[index]).is_ok_and(|v| v.len() == 1))
        .collect())
}

fn read_msrs(vcpu: &VcpuFd, indices: &[u32]) -> Result<Vec<(u32, u64)>, VmError> {
    let entries: Vec<kvm_msr_entry> = indices
        .iter()
        .map(|&index| kvm_msr_entry {
            index,
            ..Default::default()
        })
        .collect();
    let mut msrs =
        Msrs::from_entries(&entries).map_err(|e| VmError::kvm("MSRs", format!("{e:?}")))?;
    let n = vcpu.get_msrs(&mut msrs).map_err(kvm("get MSRs"))?;
    Ok(msrs.as_slice()[..n]
        .iter()
        .map(|e| (e.index, e.data))
        .collect())
}

/// Reads `vcpu`'s state; it must not be running.
pub fn save_vcpu(vcpu: &VcpuFd, msr_indices: &[u32]) -> Result<VcpuState, VmError> {
    let msrs = read_msrs(vcpu, msr_indices)?;
    if msrs.len() != msr_indices.len() {
        return Err(VmError::kvm(
            "get MSRs",
            format!("read {} of {}", msrs.len(), msr_indices.len()),
        ));
    }
    Ok(VcpuState {
        regs: vcpu.get_regs().map_err(kvm("get regs"))?,
        sregs: vcpu.get_sregs().map_err(kvm("get sregs"))?,
        xsave: vcpu.get_xsave().map_err(kvm("get XSAVE"))?,
        xcrs: vcpu.get_xcrs().map_err(kvm("get XCRs"))?,
        debugregs: vcpu.get_debug_regs().map_err(kvm("get debug regs"))?,
        lapic: vcpu.get_lapic().map_err(kvm("get LAPIC"))?,
        events: vcpu.get_vcpu_events().map_err(kvm("get vCPU events"))?,
        mp_state: vcpu.get_mp_state().map_err(kvm("get MP state"))?,
        msrs,
    })
}

/// Sets `vcpu` (created with its CPUID, not yet run) to `s`, in the order
/// KVM needs: MSRs and registers first, the LAPIC before the events that
/// may refer to it, the MP state last.
pub fn restore_vcpu(vcpu: &VcpuFd, s: &VcpuState) -> Result<(), VmError> {
    let entries: Vec<kvm_msr_entry> = s
        .msrs
        .iter()
        .map(|&(index, data)| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        })
        .collect();
    let msrs = Msrs::from_entries(&entries).map_err(|e| VmError::kvm("MSRs", format!("{e:?}")))?;
    let n = vcpu.set_msrs(&msrs).map_err(kvm("set MSRs"))?;
    if n != entries.len() {
        return Err(VmError::kvm(
            "set MSRs",
            format!("KVM refused MSR {:#x}", entries[n].index),
        ));
    }
    vcpu.set_sregs(&s.sregs).map_err(kvm("set sregs"))?;
    vcpu.set_regs(&s.regs).map_err(kvm("set regs"))?;
    // SAFETY: `s.xsave` is a whole kvm_xsave as KVM_GET_XSAVE wrote it;
    // without KVM_CAP_XSAVE2 enabled KVM reads exactly that structure.
    unsafe { vcpu.set_xsave(&s.xsave) }.map_err(kvm("set XSAVE"))?;
    vcpu.set_xcrs(&s.xcrs).map_err(kvm("set XCRs"))?;
    vcpu.set_debug_regs(&s.debugregs)
        .map_err(kvm("set debug regs"))?;
    vcpu.set_lapic(&s.lapic).map_err(kvm("set LAPIC"))?;
    vcpu.set_vcpu_events(&s.events)
        .map_err(kvm("set vCPU events"))?;
    vcpu.set_mp_state(s.mp_state).map_err(kvm("set MP state"))
}

fn irqchip(fd: &VmFd, chip_id: u32) -> Result<kvm_irqchip, VmError> {
    let mut chip = kvm_irqchip {
        chip_id,
        ..Default::default()
    };
    fd.get_irqchip(&mut chip).map_err(kvm("get irqchip"))?;
    Ok(chip)
}

/// Reads the in-kernel irqchip, PIT and clock.
pub fn save_devices(fd: &VmFd) -> Result<VmDevicesState, VmError> {
    Ok(VmDevicesState {
        pic_master: irqchip(fd, KVM_IRQCHIP_PIC_MASTER)?,
        pic_slave: irqchip(fd, KVM_IRQCHIP_PIC_SLAVE)?,
        ioapic: irqchip(fd, KVM_IRQCHIP_IOAPIC)?,
        pit: fd.get_pit2().map_err(kvm("get PIT"))?,
        clock: fd.get_clock().map_err(kvm("get clock"))?,
    })
}

/// Sets the in-kernel irqchip, PIT and clock of a fresh VM to `s`.
pub fn restore_devices(fd: &VmFd, s: &VmDevicesState) -> Result<(), VmError> {
    for chip in [&s.pic_master, &s.pic_slave, &s.ioapic] {
        fd.set_irqchip(chip).map_err(kvm("set irqchip"))?;
    }
    fd.set_pit2(&s.pit).map_err(kvm("set PIT"))?;
    // Only the clock value can be set back (flags say what KVM measured).
    let clock = kvm_clock_data {
        clock: s.clock.clock,
        ..Default::default()
    };
    fd.set_clock(&clock).map_err(kvm("set clock"))
}
