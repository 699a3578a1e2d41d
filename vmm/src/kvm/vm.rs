//! A KVM virtual machine: guest memory (vm-memory), the in-kernel
//! interrupt controllers, and one vCPU per CPU of the topology with its
//! APIC ID as KVM vCPU ID and its own CPUID table.

use ktstr_topology::Topology;
use kvm_bindings::{
    kvm_enable_cap, kvm_pit_config, kvm_userspace_memory_region, CpuId, KVM_CAP_X2APIC_API,
    KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY, KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK,
    KVM_X2APIC_API_USE_32BIT_IDS,
};
use kvm_ioctls::{Kvm, VcpuFd, VmFd};
use vm_memory::{FileOffset, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

use super::apic_ids::ApicIds;
use super::cpuid::vcpu_cpuid;
use super::layout::ram_ranges;
use crate::error::VmError;
use crate::introspect::{ram_memfd, GuestMemory, RamBacking};

/// Where KVM keeps the TSS real-mode emulation needs (three pages).
const TSS_ADDRESS: usize = 0xfffb_d000;

/// A VM with memory, interrupt controllers and a PIT, before its vCPUs
/// run.
pub struct KvmVm {
    kvm: Kvm,
    fd: VmFd,
    memory: GuestMemoryMmap,
    ram: std::fs::File,
    ids: ApicIds,
}

/// Whether `kvm` can run a VM with `ids`' topology: every APIC ID a valid
/// vCPU ID, no more vCPUs than it allows per VM.
pub fn check_fits(kvm: &Kvm, ids: &ApicIds) -> Result<(), VmError> {
    let topology = ids.topology();
    let unsupported = |reason: String| VmError::Unsupported {
        backend: "kvm".into(),
        reason,
    };
    let max_id = kvm.get_max_vcpu_id() as u64;
    if u64::from(ids.max_apic_id()) >= max_id {
        return Err(unsupported(format!(
            "{topology} needs APIC ID {}, and this KVM allows vCPU IDs below {max_id}",
            ids.max_apic_id()
        )));
    }
    let max_vcpus = kvm.get_max_vcpus();
    if topology.cpus() as usize > max_vcpus {
        return Err(unsupported(format!(
            "{topology} has {} CPUs, and this KVM runs at most {max_vcpus} vCPUs per VM",
            topology.cpus()
        )));
    }
    Ok(())
}

impl KvmVm {
    /// Opens /dev/kvm and creates a VM of `topology` with `memory_bytes`.
    pub fn new(topology: Topology, memory_bytes: u64) -> Result<Self, VmError> {
        let ram = ram_memfd("ktstr-kvm-ram", memory_bytes)
            .map_err(|e| VmError::kvm("allocate guest memory", e))?;
        Self::with_ram(topology, ram)
    }

    /// Creates a VM of `topology` whose RAM is the memfd `ram` (its
    /// length is the VM's memory), e.g. loaded from a snapshot.
    pub fn with_ram(topology: Topology, ram: std::fs::File) -> Result<Self, VmError> {
        let memory_bytes = ram
            .metadata()
            .map_err(|e| VmError::kvm("guest memory", e))?
            .len();
        let kvm = Kvm::new().map_err(|e| VmError::kvm("open /dev/kvm", e))?;
        let ids = ApicIds::new(topology);
        check_fits(&kvm, &ids)?;
        let fd = kvm.create_vm().map_err(|e| VmError::kvm("create VM", e))?;
        fd.set_tss_address(TSS_ADDRESS)
            .map_err(|e| VmError::kvm("set TSS address", e))?;
        if ids.needs_x2apic() {
            enable_x2apic_ids(&fd)?;
        }
        fd.create_irq_chip()
            .map_err(|e| VmError::kvm("create irqchip", e))?;
        let pit = kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        };
        fd.create_pit2(pit)
            .map_err(|e| VmError::kvm("create PIT", e))?;
        // RAM is one sealed memfd, mapped shared at each range's place,
        // so the host can map it again read-only to introspect the guest.
        let mut file_offset = 0u64;
        let mut ranges = Vec::new();
        for (start, len) in ram_ranges(memory_bytes) {
            let file = ram
                .try_clone()
                .map_err(|e| VmError::kvm("allocate guest memory", e))?;
            ranges.push((start, len, Some(FileOffset::new(file, file_offset))));
            file_offset += len as u64;
        }
        let memory = GuestMemoryMmap::<()>::from_ranges_with_files(ranges)
            .map_err(|e| VmError::kvm("allocate guest memory", e))?;
        for (slot, region) in memory.iter().enumerate() {
            let r = kvm_userspace_memory_region {
                slot: slot as u32,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
                flags: 0,
            };
            // SAFETY: the region is a live mmap owned by `memory`, which
            // this struct keeps (and so outlives the VM fd's use of it);
            // slots do not overlap (one per disjoint range).
            unsafe { fd.set_user_memory_region(r) }
                .map_err(|e| VmError::kvm("set memory region", e))?;
        }
        Ok(KvmVm {
            kvm,
            fd,
            memory,
            ram,
            ids,
        })
    }

    /// The KVM system handle.
    pub fn kvm(&self) -> &Kvm {
        &self.kvm
    }

    /// Guest RAM's memfd.
    pub fn ram(&self) -> &std::fs::File {
        &self.ram
    }

    /// The VM's file descriptor.
    pub fn fd(&self) -> &VmFd {
        &self.fd
    }

    /// Guest memory.
    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    /// A second, read-only view of guest RAM for host-side introspection.
    pub fn introspection_view(&self) -> Result<GuestMemory, VmError> {
        let file = self
            .ram
            .try_clone()
            .map_err(|e| VmError::kvm("share guest memory", e))?;
        let len = file
            .metadata()
            .map_err(|e| VmError::kvm("share guest memory", e))?
            .len();
        let ranges: Vec<(u64, u64)> = ram_ranges(len)
            .into_iter()
            .map(|(a, l)| (a.0, l as u64))
            .collect();
        GuestMemory::map(&[RamBacking { file, len }], &ranges)
            .map_err(|e| VmError::kvm("share guest memory", e))
    }

    /// The APIC ID scheme.
    pub fn ids(&self) -> &ApicIds {
        &self.ids
    }

    /// Creates every vCPU (KVM vCPU ID = APIC ID) with its CPUID table.
    pub fn create_vcpus(&self) -> Result<Vec<VcpuFd>, VmError> {
        let base = self
            .kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(|e| VmError::kvm("get supported CPUID", e))?;
        let topology = self.ids.topology();
        (0..topology.cpus())
            .map(|cpu| {
                let vcpu = self
                    .fd
                    .create_vcpu(u64::from(self.ids.apic_id(cpu)))
                    .map_err(|e| VmError::kvm("create vCPU", e))?;
                let table = vcpu_cpuid(base.as_slice(), &self.ids, cpu);
                let cpuid = CpuId::from_entries(&table)
                    .map_err(|e| VmError::kvm("build CPUID", format!("{e:?}")))?;
                vcpu.set_cpuid2(&cpuid)
                    .map_err(|e| VmError::kvm("set CPUID", e))?;
                Ok(vcpu)
            })
            .collect()
    }
}

/// Lets interrupts address APIC IDs above 255 (32-bit x2APIC IDs in
/// MSIs and the in-kernel IOAPIC routes).
fn enable_x2apic_ids(fd: &VmFd) -> Result<(), VmError> {
    let mut cap = kvm_enable_cap {
        cap: KVM_CAP_X2APIC_API,
        ..Default::default()
    };
    cap.args[0] = u64::from(KVM_X2APIC_API_USE_32BIT_IDS | KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK);
    fd.enable_cap(&cap)
        .map_err(|e| VmError::kvm("enable the x2APIC API", e))
}

#[cfg(test)]
mod tests {
    use vm_memory::{Bytes, GuestAddress};

    use super::*;

    #[test]
    fn the_introspection_view_sees_the_guests_ram_around_the_hole() {
        if !std::path::Path::new("/dev/kvm").exists() {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "CI=true and /dev/kvm is missing");
            return;
        }
        // 3.5 GiB: RAM below the MMIO hole and above 4 GiB (untouched
        // pages cost nothing).
        let bytes = 7u64 << 29;
        let vm = KvmVm::new("1n1l2c1t".parse().unwrap(), bytes).unwrap();
        let view = vm.introspection_view().unwrap();
        assert_eq!(view.size(), bytes);
        for at in [0x2000u64, (1 << 32) + 0x40] {
            vm.memory()
                .write_obj(0xfeed_f00d_u32, GuestAddress(at))
                .unwrap();
            assert_eq!(view.read_u32(at).unwrap(), 0xfeed_f00d, "{at:#x}");
        }
        // Nothing in the hole.
        assert!(view.read_u32(0xf000_0000).is_err());
    }
}
