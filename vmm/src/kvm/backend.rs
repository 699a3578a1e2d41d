//! ktstr's own VMM behind the [`VmBackend`] interface: a VM of the spec's
//! topology, the kernel booted through PVH or the 64-bit boot protocol,
//! COM1/COM2 on pipes with interrupts through irqfds (GSI 4 and 3), one
//! thread per vCPU. The session layer drives it like any backend;
//! [`KvmVmProcess::kill`] stops every vCPU (kicking it out of KVM_RUN)
//! and joins its thread, and dropping the VM releases KVM and guest
//! memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_ioctls::{Kvm, VcpuFd};
use vmm_sys_util::eventfd::EventFd;

use super::apic_ids::ApicIds;
use super::boot::{self, regs, BootSpec};
use super::kick;
use super::layout::{COM1_GSI, COM2_GSI};
use super::serial::{IrqTrigger, PortBus};
use super::streams::{pipe, spawn_feeder, Port};
use super::vcpu::{self, VcpuEnd};
use super::vm::{check_fits, KvmVm};
use crate::backend::{BackendExit, BackendKind, LaunchedVm, VmBackend, VmProcess, VmSpec};
use crate::error::VmError;

/// How long stopping may take before a vCPU thread is given up on.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// The own KVM VMM.
#[derive(Debug, Clone, Default)]
pub struct KvmBackend;

impl KvmBackend {
    /// The backend, if `/dev/kvm` opens.
    pub fn new() -> Result<Self, VmError> {
        Kvm::new().map_err(|e| VmError::Unsupported {
            backend: "kvm".into(),
            reason: format!("/dev/kvm: {e}"),
        })?;
        Ok(KvmBackend)
    }
}

impl VmBackend for KvmBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Kvm
    }

    fn check(&self, spec: &VmSpec) -> Result<(), VmError> {
        let kvm = Kvm::new().map_err(|e| VmError::kvm("open /dev/kvm", e))?;
        check_fits(&kvm, &ApicIds::new(spec.topology))?;
        if !matches!(spec.snapshot, crate::snapshot::SnapshotRole::None) {
            return Err(VmError::Unsupported {
                backend: "kvm".into(),
                reason: "Linux guests on the own VMM are not saved or restored yet".into(),
            });
        }
        if spec.memory_mb < 64 {
            return Err(VmError::Unsupported {
                backend: "kvm".into(),
                reason: format!(
                    "{} MiB of memory is too little (64 MiB at least)",
                    spec.memory_mb
                ),
            });
        }
        Ok(())
    }

    fn launch(&self, spec: &VmSpec) -> Result<LaunchedVm, VmError> {
        kick::install();
        let memory_bytes = u64::from(spec.memory_mb) << 20;
        let vm = KvmVm::new(spec.topology, memory_bytes)?;
        let protocol = boot::prepare(
            vm.memory(),
            &BootSpec {
                kernel: &spec.kernel,
                initrd: Some(&spec.initramfs),
                cmdline: &spec.cmdline,
                memory_bytes,
                ids: vm.ids(),
            },
        )?;
        let (console, console_out) = pipe()?;
        let (channel, channel_out) = pipe()?;
        let (console_in, console_input) = pipe()?;
        let (channel_in, channel_output) = pipe()?;
        let bus = Arc::new(PortBus::new(
            Box::new(console_out),
            Box::new(channel_out),
            (irq(&vm, COM1_GSI)?, irq(&vm, COM2_GSI)?),
        ));
        spawn_feeder(console_in, Arc::downgrade(&bus), Port::Console);
        spawn_feeder(channel_in, Arc::downgrade(&bus), Port::Channel);
        let vcpus = vm.create_vcpus()?;
        for (i, vcpu) in vcpus.iter().enumerate() {
            regs::setup_any_cpu(vcpu)?;
            if i == 0 {
                regs::setup_boot_cpu(vcpu, vm.memory(), protocol)?;
            }
        }
        let memory = vm.introspection_view().map_err(|e| e.to_string());
        let process = KvmVmProcess::start(vm, vcpus, bus)?;
        Ok(LaunchedVm {
            process: Box::new(process),
            console: Box::new(console),
            console_input: Box::new(console_input),
            channel: Box::new(channel),
            channel_output: Box::new(channel_output),
            memory,
        })
    }
}

/// An irqfd raising `gsi`.
fn irq(vm: &KvmVm, gsi: u32) -> Result<IrqTrigger, VmError> {
    let fd = EventFd::new(nix::libc::EFD_NONBLOCK).map_err(|e| VmError::kvm("eventfd", e))?;
    vm.fd()
        .register_irqfd(&fd, gsi)
        .map_err(|e| VmError::kvm("register irqfd", e))?;
    Ok(IrqTrigger(Some(fd)))
}

/// A running own-VMM VM: its vCPU threads and what keeps the VM alive.
pub struct KvmVmProcess {
    threads: Vec<JoinHandle<VcpuEnd>>,
    stop: Arc<AtomicBool>,
    ends: Option<Vec<VcpuEnd>>,
    vm: Option<KvmVm>,
    bus: Option<Arc<PortBus>>,
    notes: Mutex<String>,
}

impl KvmVmProcess {
    /// Starts a thread per vCPU. If a thread cannot be started, the ones
    /// already running are stopped (by the drop of the half-built
    /// process).
    fn start(vm: KvmVm, vcpus: Vec<VcpuFd>, bus: Arc<PortBus>) -> Result<Self, VmError> {
        let mut process = KvmVmProcess {
            threads: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
            ends: None,
            vm: Some(vm),
            bus: Some(Arc::clone(&bus)),
            notes: Mutex::new(String::new()),
        };
        for (i, mut vcpu) in vcpus.into_iter().enumerate() {
            let (bus, stop) = (Arc::clone(&bus), Arc::clone(&process.stop));
            let thread = std::thread::Builder::new()
                .name(format!("ktstr-vcpu{i}"))
                .spawn(move || vcpu::run(&mut vcpu, &bus, &stop))
                .map_err(|e| VmError::Launch(format!("starting vCPU thread {i}: {e}")))?;
            process.threads.push(thread);
        }
        Ok(process)
    }

    /// Stops and joins every vCPU thread, then releases the VM (and with
    /// the bus, the UART pipes: the readers see end-of-file).
    fn finish(&mut self) {
        if self.ends.is_some() {
            return;
        }
        self.stop.store(true, Ordering::SeqCst);
        let until = Instant::now() + STOP_GRACE;
        let mut ends = Vec::new();
        let mut stuck = false;
        for t in self.threads.drain(..) {
            while !t.is_finished() && Instant::now() < until {
                kick::kick(&t);
                std::thread::sleep(Duration::from_millis(1));
            }
            if t.is_finished() {
                ends.push(
                    t.join()
                        .unwrap_or_else(|_| VcpuEnd::Failed("vCPU thread panicked".into())),
                );
            } else {
                // Blocked outside KVM_RUN (a UART write nobody drains):
                // left detached rather than hanging the host.
                stuck = true;
                ends.push(VcpuEnd::Failed(format!(
                    "vCPU thread did not stop within {} s",
                    STOP_GRACE.as_secs()
                )));
            }
        }
        if stuck {
            // A detached vCPU may still touch guest memory: never unmap it.
            std::mem::forget(self.vm.take());
        }
        let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
        for (i, end) in ends.iter().enumerate() {
            if let VcpuEnd::Failed(why) = end {
                notes.push_str(&format!("vCPU {i}: {why}\n"));
            }
        }
        self.ends = Some(ends);
        self.bus = None;
        self.vm = None;
    }

    /// How the VM ended, from its vCPUs' ends.
    fn exit(ends: &[VcpuEnd]) -> BackendExit {
        let decisive = ends
            .iter()
            .find(|e| !matches!(e, VcpuEnd::Stopped | VcpuEnd::Done))
            .unwrap_or(&VcpuEnd::Stopped);
        let (success, status) = match decisive {
            VcpuEnd::PowerOff => (true, "powered off".to_string()),
            VcpuEnd::Reset => (true, "reset".to_string()),
            VcpuEnd::Stopped | VcpuEnd::Done => (false, "stopped by the host".to_string()),
            VcpuEnd::TripleFault => (false, "triple fault".to_string()),
            VcpuEnd::Halted => (false, "halted with interrupts off".to_string()),
            VcpuEnd::Failed(why) => (false, why.clone()),
        };
        BackendExit { success, status }
    }
}

impl VmProcess for KvmVmProcess {
    fn try_wait(&mut self) -> Result<Option<BackendExit>, VmError> {
        if self.ends.is_none()
            && (self.stop.load(Ordering::SeqCst) || self.threads.iter().all(|t| t.is_finished()))
        {
            self.finish();
        }
        Ok(self.ends.as_deref().map(Self::exit))
    }

    fn kill(&mut self) {
        self.finish();
    }

    fn diagnostics(&self) -> String {
        self.notes.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for KvmVmProcess {
    fn drop(&mut self) {
        self.finish();
    }
}
