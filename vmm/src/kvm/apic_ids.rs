//! APIC IDs for a declared topology, packed the way x86 hardware does:
//! `[package | core | thread]`, each field as wide as the next power of
//! two of its count.
//!
//! ktstr's own VMM makes each LLC a package (as the QEMU backend makes
//! each LLC a socket): Linux then groups CPUs by LLC from CPUID leaf 4's
//! "logical processors sharing this cache" and by package from leaf 0xB,
//! and both give the declared LLC groups. NUMA nodes come from SRAT.

use ktstr_topology::Topology;

/// Bits needed to number `n` things (0 for one).
pub fn bits_for(n: u32) -> u32 {
    if n <= 1 {
        0
    } else {
        32 - (n - 1).leading_zeros()
    }
}

/// The APIC ID scheme of one topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApicIds {
    topology: Topology,
    thread_bits: u32,
    core_bits: u32,
}

impl ApicIds {
    /// The scheme for `topology`.
    pub fn new(topology: Topology) -> Self {
        ApicIds {
            topology,
            thread_bits: bits_for(topology.threads_per_core()),
            core_bits: bits_for(topology.cores_per_llc()),
        }
    }

    /// The topology.
    pub fn topology(&self) -> Topology {
        self.topology
    }

    /// Shift from an APIC ID to its core (CPUID 0xB level 0 `EAX`).
    pub fn smt_shift(&self) -> u32 {
        self.thread_bits
    }

    /// Shift from an APIC ID to its package, i.e. its LLC (CPUID 0xB
    /// level 1 `EAX`).
    pub fn package_shift(&self) -> u32 {
        self.thread_bits + self.core_bits
    }

    /// The APIC ID of CPU `cpu` (CPUs numbered as [`Topology`] numbers
    /// them: thread fastest, then core, then LLC).
    pub fn apic_id(&self, cpu: u32) -> u32 {
        let p = self.topology.cpu_position(cpu);
        (p.llc << self.package_shift()) | (p.core << self.thread_bits) | p.thread
    }

    /// Every CPU's APIC ID, in CPU order.
    pub fn all(&self) -> Vec<u32> {
        (0..self.topology.cpus()).map(|c| self.apic_id(c)).collect()
    }

    /// The largest APIC ID.
    pub fn max_apic_id(&self) -> u32 {
        self.apic_id(self.topology.cpus() - 1)
    }

    /// Whether some ID does not fit xAPIC's 8 bits (255 is broadcast):
    /// the MADT then needs x2APIC entries and the guest x2APIC mode.
    pub fn needs_x2apic(&self) -> bool {
        self.max_apic_id() > 254
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_pack_thread_core_and_llc_fields() {
        let t: Topology = "2n4l3c2t".parse().unwrap();
        let ids = ApicIds::new(t);
        assert_eq!((ids.smt_shift(), ids.package_shift()), (1, 3));
        // CPU 7: thread 1 of core 0 of LLC 1.
        assert_eq!(ids.apic_id(7), (1 << 3) | 1);
        // Core 2 of LLC 0 leaves a hole at core 3 (IDs 6, 7 unused).
        assert_eq!(ids.all()[..6], [0, 1, 2, 3, 4, 5]);
        assert_eq!(ids.all()[6], 8);
        assert!(!ids.needs_x2apic());
        assert_eq!(bits_for(1), 0);
        assert_eq!(bits_for(5), 3);
    }

    #[test]
    fn big_topologies_need_x2apic() {
        let t: Topology = "2n10l15c2t".parse().unwrap();
        assert_eq!(t.cpus(), 300);
        assert!(ApicIds::new(t).needs_x2apic());
    }
}
