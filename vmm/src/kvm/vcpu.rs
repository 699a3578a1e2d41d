//! The exit loop of one vCPU thread.
//!
//! Port I/O goes to the [`PortBus`]; MMIO outside RAM reads as all-ones
//! and ignores writes (the LAPIC and IOAPIC are in the kernel); HLT
//! without an in-kernel LAPIC, a triple fault, an i8042 reset, ACPI S5
//! and KVM's system events end the VM. A shared flag stops every thread;
//! nothing the guest does (port numbers, sizes, addresses) can panic here.

use std::sync::atomic::{AtomicBool, Ordering};

use kvm_ioctls::{VcpuExit, VcpuFd};

use super::serial::{PortAction, PortBus};

/// Why a vCPU thread stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VcpuEnd {
    /// The guest powered off (ACPI S5, or KVM's shutdown event).
    PowerOff,
    /// The guest reset the machine (i8042, or KVM's reset event).
    Reset,
    /// Triple fault.
    TripleFault,
    /// HLT with no interrupt controller to wake it.
    Halted,
    /// The vCPU wrote to the debug-exit port.
    Done,
    /// Another thread (or the host) asked every vCPU to stop.
    Stopped,
    /// KVM could not run the vCPU or reported an error.
    Failed(String),
}

/// Runs `vcpu` until it ends or `stop` is set; sets `stop` when the
/// whole VM must end (power-off, reset, failure).
pub fn run(vcpu: &mut VcpuFd, bus: &PortBus, stop: &AtomicBool) -> VcpuEnd {
    loop {
        if stop.load(Ordering::SeqCst) {
            return VcpuEnd::Stopped;
        }
        let end = match vcpu.run() {
            Ok(VcpuExit::InternalError) => Some(internal_error(vcpu)),
            Ok(exit) => handle(exit, bus),
            Err(e) if e.errno() == nix::libc::EINTR || e.errno() == nix::libc::EAGAIN => None,
            Err(e) => Some(VcpuEnd::Failed(format!("KVM_RUN: {e}"))),
        };
        if let Some(end) = end {
            if end != VcpuEnd::Done {
                stop.store(true, Ordering::SeqCst);
            }
            return end;
        }
    }
}

/// Handles one exit; Some when the vCPU is finished.
fn handle(exit: VcpuExit, bus: &PortBus) -> Option<VcpuEnd> {
    match exit {
        VcpuExit::IoOut(port, data) => match bus.write(port, data) {
            PortAction::None => None,
            PortAction::Reset => Some(VcpuEnd::Reset),
            PortAction::PowerOff => Some(VcpuEnd::PowerOff),
            PortAction::VcpuDone => Some(VcpuEnd::Done),
        },
        VcpuExit::IoIn(port, data) => {
            bus.read(port, data);
            None
        }
        VcpuExit::MmioRead(_, data) => {
            data.fill(0xff);
            None
        }
        VcpuExit::MmioWrite(..) => None,
        VcpuExit::Hlt => Some(VcpuEnd::Halted),
        VcpuExit::Shutdown => Some(VcpuEnd::TripleFault),
        VcpuExit::SystemEvent(kind, _) => Some(match kind {
            kvm_bindings::KVM_SYSTEM_EVENT_RESET => VcpuEnd::Reset,
            _ => VcpuEnd::PowerOff,
        }),
        VcpuExit::FailEntry(reason, cpu) => Some(VcpuEnd::Failed(format!(
            "VM entry failed (hardware reason {reason:#x}) on CPU {cpu}"
        ))),
        other => Some(VcpuEnd::Failed(format!("unexpected exit {other:?}"))),
    }
}

/// A KVM internal error with its suberror and where the guest was.
fn internal_error(vcpu: &mut VcpuFd) -> VcpuEnd {
    // SAFETY: reading a plain-data union member of the kvm_run page KVM
    // filled for this exit (exit reason KVM_EXIT_INTERNAL_ERROR selects
    // `internal`).
    let suberror = unsafe { vcpu.get_kvm_run().__bindgen_anon_1.internal.suberror };
    let what = match suberror {
        1 => "emulation failure",
        2 => "simultaneous exceptions",
        3 => "delivery event failed",
        _ => "other",
    };
    let rip = vcpu
        .get_regs()
        .map(|r| format!(" at RIP {:#x}", r.rip))
        .unwrap_or_default();
    VcpuEnd::Failed(format!("KVM internal error {suberror} ({what}){rip}"))
}
