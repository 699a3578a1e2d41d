//! Running a small freestanding real-mode program on every vCPU of a
//! topology, through the same VM setup, CPUID tables and exit loop Linux
//! guests use. Hosts whose KVM cannot boot Linux still run these, so the
//! VMM's own path is tested everywhere.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ktstr_topology::Topology;
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress};

use super::kick;
use super::serial::{Captured, IrqTrigger, PortBus};
use super::vcpu::{self, VcpuEnd};
use super::vm::KvmVm;
use crate::error::VmError;

/// Where the program is loaded and starts.
pub const LOAD_ADDRESS: u64 = 0x1000;
/// Guest memory of a freestanding VM.
const MEMORY: u64 = 1 << 20;
/// Stack top of vCPU 0; each next vCPU's is 256 bytes lower.
const STACK_TOP: u64 = 0x8_0000;

/// What a freestanding run produced.
#[derive(Debug, Clone)]
pub struct FreestandingRun {
    /// Everything written to COM1.
    pub console: String,
    /// How each vCPU ended, in CPU order.
    pub ends: Vec<VcpuEnd>,
}

/// Real mode at [`LOAD_ADDRESS`], CS/DS/ES/SS = 0 with 4 GiB data limits
/// (so the program can reach the LAPIC), a private stack per vCPU.
fn real_mode(vcpu: &VcpuFd, index: u64) -> Result<(), VmError> {
    let mut sregs = vcpu.get_sregs().map_err(|e| VmError::kvm("get sregs", e))?;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    for seg in [&mut sregs.ds, &mut sregs.es, &mut sregs.ss] {
        seg.base = 0;
        seg.selector = 0;
        seg.limit = 0xffff_ffff;
        seg.g = 1;
    }
    vcpu.set_sregs(&sregs)
        .map_err(|e| VmError::kvm("set sregs", e))?;
    let mut regs = vcpu.get_regs().map_err(|e| VmError::kvm("get regs", e))?;
    regs.rip = LOAD_ADDRESS;
    regs.rsp = STACK_TOP - index * 0x100;
    regs.rflags = 2;
    vcpu.set_regs(&regs)
        .map_err(|e| VmError::kvm("set regs", e))?;
    // With the in-kernel LAPIC, application processors wait for INIT/SIPI
    // (what Linux sends); freestanding programs start on all at once.
    let runnable = kvm_bindings::kvm_mp_state {
        mp_state: kvm_bindings::KVM_MP_STATE_RUNNABLE,
    };
    vcpu.set_mp_state(runnable)
        .map_err(|e| VmError::kvm("set MP state", e))
}

/// Runs `program` on every vCPU of `topology` until each writes the
/// debug-exit port (or halts, or fails), or `timeout` passes.
pub fn run(
    topology: Topology,
    program: &[u8],
    timeout: Duration,
) -> Result<FreestandingRun, VmError> {
    kick::install();
    let vm = KvmVm::new(topology, MEMORY)?;
    vm.memory()
        .write_slice(program, GuestAddress(LOAD_ADDRESS))
        .map_err(|e| VmError::kvm("load program", e))?;
    let console = Captured::default();
    let bus = Arc::new(PortBus::new(
        Box::new(console.clone()),
        Box::new(std::io::sink()),
        (IrqTrigger(None), IrqTrigger(None)),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (i, mut vcpu) in vm.create_vcpus()?.into_iter().enumerate() {
        real_mode(&vcpu, i as u64)?;
        let (bus, stop) = (Arc::clone(&bus), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            vcpu::run(&mut vcpu, &bus, &stop)
        }));
    }
    let deadline = Instant::now() + timeout;
    while threads.iter().any(|t| !t.is_finished()) {
        if Instant::now() > deadline {
            stop.store(true, Ordering::SeqCst);
            threads.iter().for_each(kick::kick);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let ends = threads
        .into_iter()
        .map(|t| {
            t.join()
                .unwrap_or_else(|_| VcpuEnd::Failed("vCPU thread panicked".into()))
        })
        .collect();
    let text = console.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(FreestandingRun {
        console: String::from_utf8_lossy(&text).into_owned(),
        ends,
    })
}
