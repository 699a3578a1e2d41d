//! Running a small freestanding real-mode program on every vCPU of a
//! topology, through the same VM setup, CPUID tables and exit loop Linux
//! guests use. Hosts whose KVM cannot boot Linux still run these, so the
//! VMM's own path is tested everywhere.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ktstr_topology::Topology;
use kvm_ioctls::VcpuFd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::kick;
use super::serial::{Captured, IrqTrigger, PortBus};
use super::snapshot::{self, KvmState, UartState};
use super::vcpu::{self, VcpuEnd};
use super::vm::KvmVm;
use crate::error::{IoAt, VmError};
use crate::introspect::RamBacking;
use crate::snapshot::{ram, ram_file, RamDigest};

/// Where the program is loaded and starts.
pub const LOAD_ADDRESS: u64 = 0x1000;
/// Guest memory of a freestanding VM.
const MEMORY: u64 = 1 << 20;
/// The saved state's file name in a snapshot directory.
pub const STATE_FILE: &str = "kvm-state.json";
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
    let (vm, vcpus) = load(topology, program)?;
    let console = Captured::default();
    let bus = Arc::new(bus(&console, None)?);
    let (ends, _) = drive(&vm, vcpus, &bus, timeout, &|_| false);
    Ok(finish(&console, ends))
}

/// Like [`run`], but once `pause` (shown guest memory every millisecond)
/// says so, stops every vCPU, saves the VM into `dir` (its state as
/// [`STATE_FILE`], its RAM as `ram0`) and ends it. Returns the run so
/// far; [`restore_and_run`] continues it.
pub fn run_and_save(
    topology: Topology,
    program: &[u8],
    pause: &dyn Fn(&GuestMemoryMmap) -> bool,
    dir: &Path,
    timeout: Duration,
) -> Result<FreestandingRun, VmError> {
    let (vm, vcpus) = load(topology, program)?;
    let console = Captured::default();
    let bus = Arc::new(bus(&console, None)?);
    let (ends, vcpus) = drive(&vm, vcpus, &bus, timeout, pause);
    if vcpus.len() != topology.cpus() as usize {
        return Err(VmError::Snapshot(format!(
            "vCPUs ended before the pause: {ends:?}"
        )));
    }
    let msrs = snapshot::saveable_msrs(vm.kvm(), &vcpus[0])?;
    let vcpu_states = vcpus
        .iter()
        .map(|v| snapshot::save_vcpu(v, &msrs))
        .collect::<Result<Vec<_>, _>>()?;
    let ram = RamBacking {
        file: vm.ram().try_clone().at(dir)?,
        len: MEMORY,
    };
    let saved = Saved {
        state: KvmState {
            format: snapshot::KVM_STATE_FORMAT,
            topology,
            memory_bytes: MEMORY,
            vcpus: vcpu_states,
            devices: snapshot::save_devices(vm.fd())?,
            uarts: bus.uart_states(),
        },
        ram: ram::save(&ram, &dir.join(ram_file(0))).at(dir)?,
    };
    let path = dir.join(STATE_FILE);
    let json = serde_json::to_vec(&saved).map_err(|e| VmError::Snapshot(e.to_string()))?;
    std::fs::write(&path, json).at(&path)?;
    Ok(finish(&console, ends))
}

/// Restores the VM [`run_and_save`] saved in `dir` into a new VM and
/// runs it until every vCPU is done (or fails), or `timeout` passes.
pub fn restore_and_run(dir: &Path, timeout: Duration) -> Result<FreestandingRun, VmError> {
    kick::install();
    let path = dir.join(STATE_FILE);
    let text = std::fs::read(&path).at(&path)?;
    let saved: Saved = serde_json::from_slice(&text)
        .map_err(|e| VmError::Snapshot(format!("{}: {e}", path.display())))?;
    let state = &saved.state;
    if state.format != snapshot::KVM_STATE_FORMAT {
        return Err(VmError::Snapshot(format!(
            "{}: state format {}, this ktstr restores {}",
            path.display(),
            state.format,
            snapshot::KVM_STATE_FORMAT
        )));
    }
    let ram = ram::load(&dir.join(ram_file(0)), &saved.ram, "ktstr-kvm-ram")
        .map_err(VmError::Snapshot)?;
    let vm = KvmVm::with_ram(state.topology, ram.file)?;
    let vcpus = vm.create_vcpus()?;
    if vcpus.len() != state.vcpus.len() {
        return Err(VmError::Snapshot(
            "the saved vCPUs do not match the topology".into(),
        ));
    }
    snapshot::restore_devices(vm.fd(), &state.devices)?;
    for (vcpu, s) in vcpus.iter().zip(&state.vcpus) {
        snapshot::restore_vcpu(vcpu, s)?;
    }
    let console = Captured::default();
    let bus = Arc::new(bus(&console, Some(&state.uarts))?);
    let (ends, _) = drive(&vm, vcpus, &bus, timeout, &|_| false);
    Ok(finish(&console, ends))
}

/// The saved state of a freestanding VM and its RAM image's digest.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    state: KvmState,
    ram: RamDigest,
}

/// A VM of `topology` with `program` loaded and every vCPU in real mode
/// at its start.
fn load(topology: Topology, program: &[u8]) -> Result<(KvmVm, Vec<VcpuFd>), VmError> {
    kick::install();
    let vm = KvmVm::new(topology, MEMORY)?;
    vm.memory()
        .write_slice(program, GuestAddress(LOAD_ADDRESS))
        .map_err(|e| VmError::kvm("load program", e))?;
    let vcpus = vm.create_vcpus()?;
    for (i, vcpu) in vcpus.iter().enumerate() {
        real_mode(vcpu, i as u64)?;
    }
    Ok((vm, vcpus))
}

/// COM1 into `console`; restored UARTs when `states` are given.
fn bus(console: &Captured, states: Option<&[UartState; 2]>) -> Result<PortBus, VmError> {
    let console: Box<dyn std::io::Write + Send> = Box::new(console.clone());
    let channel = Box::new(std::io::sink());
    let irqs = (IrqTrigger(None), IrqTrigger(None));
    Ok(match states {
        Some(s) => PortBus::with_states(console, channel, irqs, s)?,
        None => PortBus::new(console, channel, irqs),
    })
}

/// Runs every vCPU on a thread of its own until each ends, `timeout`
/// passes, or `pause` says to stop them all; returns how each ended and,
/// when every thread stopped cleanly, the vCPUs with any port I/O they
/// were in completed (so their state can be saved).
fn drive(
    vm: &KvmVm,
    vcpus: Vec<VcpuFd>,
    bus: &Arc<PortBus>,
    timeout: Duration,
    pause: &dyn Fn(&GuestMemoryMmap) -> bool,
) -> (Vec<VcpuEnd>, Vec<VcpuFd>) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = vcpus
        .into_iter()
        .map(|mut vcpu| {
            let (bus, stop) = (Arc::clone(bus), Arc::clone(&stop));
            std::thread::spawn(move || {
                let end = vcpu::run(&mut vcpu, &bus, &stop);
                (vcpu, end)
            })
        })
        .collect();
    let deadline = Instant::now() + timeout;
    while threads.iter().any(|t| !t.is_finished()) {
        if Instant::now() > deadline || pause(vm.memory()) {
            stop.store(true, Ordering::SeqCst);
            threads.iter().for_each(kick::kick);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut ends = Vec::new();
    let mut stopped = Vec::new();
    for t in threads {
        match t.join() {
            Ok((mut vcpu, end)) => {
                if end == VcpuEnd::Stopped {
                    complete_pending_io(&mut vcpu);
                    stopped.push(vcpu);
                }
                ends.push(end);
            }
            Err(_) => ends.push(VcpuEnd::Failed("vCPU thread panicked".into())),
        }
    }
    (ends, stopped)
}

/// Re-enters a stopped vCPU once with `immediate_exit` set, so that KVM
/// completes the port I/O it last exited for (a saved vCPU must not be
/// caught halfway through an instruction).
fn complete_pending_io(vcpu: &mut VcpuFd) {
    vcpu.set_kvm_immediate_exit(1);
    let _ = vcpu.run();
    vcpu.set_kvm_immediate_exit(0);
}

fn finish(console: &Captured, ends: Vec<VcpuEnd>) -> FreestandingRun {
    let text = console.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    FreestandingRun {
        console: String::from_utf8_lossy(&text).into_owned(),
        ends,
    }
}
