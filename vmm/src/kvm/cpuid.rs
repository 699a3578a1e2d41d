//! CPUID for each vCPU, so the guest sees the declared topology.
//!
//! The host's supported leaves (KVM_GET_SUPPORTED_CPUID) pass through,
//! except: leaf 1 gets the vCPU's APIC ID, the logical-processor count and
//! the hypervisor bit (and loses MONITOR/MWAIT); the cache leaf 4 (and
//! AMD's 0x8000001D) is synthesized with fixed sizes, L1/L2 shared by the
//! SMT threads of a core and L3 by the whole LLC; the extended topology
//! leaves 0xB and 0x1F describe the SMT and core levels; on AMD 0x8000001E
//! and 0x80000008 carry the APIC ID, core and node, and TopoExt is set;
//! the power-management leaf 6 is zeroed. Every value comes from
//! [`ApicIds`], so the same topology looks the same on every host.

use kvm_bindings::{kvm_cpuid_entry2, KVM_CPUID_FLAG_SIGNIFCANT_INDEX};

use super::apic_ids::{bits_for, ApicIds};

/// The CPU vendor, from leaf 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// GenuineIntel (and anything not AMD).
    Intel,
    /// AuthenticAMD or HygonGenuine.
    Amd,
}

/// The vendor named by leaf 0 of `base`.
pub fn vendor(base: &[kvm_cpuid_entry2]) -> Vendor {
    let leaf0 = base.iter().find(|e| e.function == 0);
    match leaf0.map(|e| e.ebx) {
        Some(0x6874_7541) | Some(0x6f67_7948) => Vendor::Amd, // "Auth", "Hygo"
        _ => Vendor::Intel,
    }
}

/// Leaves this module writes itself (any host entries for them go).
const SYNTHESIZED: [u32; 5] = [0x4, 0xB, 0x1F, 0x8000_001D, 0x8000_001E];

/// The cache levels of leaf 4: (type, level, size KiB, ways).
const CACHES: [(u32, u32, u32, u32); 4] = [
    (1, 1, 48, 12),        // L1 data
    (2, 1, 32, 8),         // L1 instruction
    (3, 2, 2048, 16),      // L2 unified
    (3, 3, 32 * 1024, 16), // L3 unified, one per LLC
];

/// Cache line size, bytes.
const LINE: u32 = 64;

fn entry(function: u32, index: u32, regs: [u32; 4], indexed: bool) -> kvm_cpuid_entry2 {
    kvm_cpuid_entry2 {
        function,
        index,
        flags: if indexed {
            KVM_CPUID_FLAG_SIGNIFCANT_INDEX
        } else {
            0
        },
        eax: regs[0],
        ebx: regs[1],
        ecx: regs[2],
        edx: regs[3],
        ..Default::default()
    }
}

/// The CPUID table of vCPU `cpu` of `ids`' topology, from the host's
/// supported entries `base`.
pub fn vcpu_cpuid(base: &[kvm_cpuid_entry2], ids: &ApicIds, cpu: u32) -> Vec<kvm_cpuid_entry2> {
    let vendor = vendor(base);
    let apic = ids.apic_id(cpu);
    let mut out: Vec<kvm_cpuid_entry2> = base
        .iter()
        .filter(|e| !SYNTHESIZED.contains(&e.function))
        .copied()
        .collect();
    for e in &mut out {
        patch(e, vendor, ids, apic);
    }
    out.extend(cache_leaf(0x4, ids, true));
    out.extend(topology_leaf(0xB, ids, apic));
    out.extend(topology_leaf(0x1F, ids, apic));
    if vendor == Vendor::Amd {
        out.extend(cache_leaf(0x8000_001D, ids, false));
        out.push(amd_topology(ids, cpu, apic));
    }
    out
}

/// Adjusts one passed-through leaf.
fn patch(e: &mut kvm_cpuid_entry2, vendor: Vendor, ids: &ApicIds, apic: u32) {
    let per_package = 1u32 << ids.package_shift();
    match e.function {
        0 => e.eax = e.eax.max(0x1F),
        1 => {
            e.ebx = (e.ebx & 0xffff) | ((apic & 0xff) << 24) | (per_package.min(255) << 16);
            e.edx |= 1 << 28; // HTT: the package field above is valid
            e.ecx |= 1 << 31; // running under a hypervisor
            e.ecx &= !(1 << 3); // no MONITOR/MWAIT
        }
        6 => (e.eax, e.ebx, e.ecx, e.edx) = (0, 0, 0, 0),
        0x8000_0000 if vendor == Vendor::Amd => e.eax = e.eax.max(0x8000_001E),
        0x8000_0001 if vendor == Vendor::Amd => e.ecx |= 1 << 22, // TopoExt
        0x8000_0008 if vendor == Vendor::Amd => {
            let threads = ids.topology().cpus_per_llc();
            e.ecx = (e.ecx & !0xf0ff) | (ids.package_shift() << 12) | (threads - 1).min(255);
        }
        _ => {}
    }
}

/// Leaf 4 (Intel) or 0x8000001D (AMD): one subleaf per cache, then a
/// null one.
fn cache_leaf(function: u32, ids: &ApicIds, intel: bool) -> Vec<kvm_cpuid_entry2> {
    let core_ids = 1u32 << (ids.package_shift() - ids.smt_shift());
    let mut v: Vec<kvm_cpuid_entry2> = CACHES
        .iter()
        .enumerate()
        .map(|(i, &(kind, level, kib, ways))| {
            let shift = if level >= 3 {
                ids.package_shift()
            } else {
                ids.smt_shift()
            };
            let sharing = ((1u32 << shift) - 1).min(0xfff);
            let mut eax = kind | (level << 5) | (1 << 8) | (sharing << 14);
            if intel {
                eax |= (core_ids - 1).min(63) << 26;
            }
            let sets = kib * 1024 / (ways * LINE);
            let ebx = ((ways - 1) << 22) | (LINE - 1);
            entry(function, i as u32, [eax, ebx, sets - 1, 0], true)
        })
        .collect();
    v.push(entry(function, CACHES.len() as u32, [0; 4], true));
    v
}

/// Leaf 0xB or 0x1F: the SMT level, the core level, then the invalid
/// level that ends the list. `EDX` is the x2APIC ID in every subleaf.
fn topology_leaf(function: u32, ids: &ApicIds, apic: u32) -> Vec<kvm_cpuid_entry2> {
    let t = ids.topology();
    vec![
        entry(
            function,
            0,
            [ids.smt_shift(), t.threads_per_core(), 1 << 8, apic],
            true,
        ),
        entry(
            function,
            1,
            [ids.package_shift(), t.cpus_per_llc(), (2 << 8) | 1, apic],
            true,
        ),
        entry(function, 2, [0, 0, 2, apic], true),
    ]
}

/// AMD's 0x8000001E: extended APIC ID, core ID and threads per core, node
/// ID and nodes per package (one: a package is one LLC).
fn amd_topology(ids: &ApicIds, cpu: u32, apic: u32) -> kvm_cpuid_entry2 {
    let t = ids.topology();
    let core_id = (apic >> ids.smt_shift()) & 0xff;
    let node = t.node_of_cpu(cpu);
    let ebx = ((t.threads_per_core() - 1) << 8) | core_id;
    entry(0x8000_001E, 0, [apic, ebx, node & 0xff, 0], false)
}

/// What the guest needs from CPUID to group CPUs, as Linux reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopologyLeaves {
    /// x2APIC ID (leaf 0xB `EDX`).
    pub x2apic_id: u32,
    /// Leaf 0xB level 0 `EAX`: APIC ID bits below the core.
    pub smt_shift: u32,
    /// Leaf 0xB level 1 `EAX`: APIC ID bits below the package.
    pub package_shift: u32,
    /// Leaf 4 L3 `EAX[25:14]` + 1: logical processors sharing the L3.
    pub l3_sharing: u32,
}

impl TopologyLeaves {
    /// Reads the leaves from one vCPU's table.
    pub fn from_table(table: &[kvm_cpuid_entry2]) -> Option<Self> {
        let find = |f: u32, i: u32| table.iter().find(|e| e.function == f && e.index == i);
        let l3 = table
            .iter()
            .find(|e| e.function == 4 && (e.eax >> 5) & 7 == 3)?;
        Some(TopologyLeaves {
            x2apic_id: find(0xB, 0)?.edx,
            smt_shift: find(0xB, 0)?.eax & 0x1f,
            package_shift: find(0xB, 1)?.eax & 0x1f,
            l3_sharing: ((l3.eax >> 14) & 0xfff) + 1,
        })
    }
}

/// CPUs grouped as Linux groups them from CPUID: (SMT sibling groups, LLC
/// groups), each group's CPUs ascending, groups in order of first CPU.
pub fn groups(cpus: &[TopologyLeaves]) -> (Vec<Vec<u32>>, Vec<Vec<u32>>) {
    let group_by = |key: &dyn Fn(&TopologyLeaves) -> u32| {
        let mut out: Vec<(u32, Vec<u32>)> = Vec::new();
        for (i, l) in cpus.iter().enumerate() {
            let k = key(l);
            match out.iter_mut().find(|(g, _)| *g == k) {
                Some((_, v)) => v.push(i as u32),
                None => out.push((k, vec![i as u32])),
            }
        }
        out.into_iter().map(|(_, v)| v).collect::<Vec<_>>()
    };
    let smt = group_by(&|l| l.x2apic_id >> l.smt_shift);
    let llc = group_by(&|l| l.x2apic_id >> bits_for(l.l3_sharing));
    (smt, llc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ktstr_topology::presets::presets;
    use ktstr_topology::Topology;

    fn host(vendor_ebx: u32) -> Vec<kvm_cpuid_entry2> {
        vec![
            entry(0, 0, [0xd, vendor_ebx, 0, 0], false),
            entry(1, 0, [0x806f8, 0x0010_0800, 0x8, 0], false),
            entry(4, 0, [0x121, 0, 0, 0], true), // the host's: replaced
            entry(6, 0, [0x77, 0, 1, 0], false),
            entry(0x8000_0000, 0, [0x8000_0008, 0, 0, 0], false),
            entry(0x8000_0001, 0, [0; 4], false),
            entry(0x8000_0008, 0, [0x3030, 0, 0, 0], false),
        ]
    }

    const INTEL: u32 = 0x756e_6547; // "Genu"
    const AMD: u32 = 0x6874_7541; // "Auth"

    fn check_topology(t: Topology, vendor_ebx: u32) {
        let ids = ApicIds::new(t);
        let base = host(vendor_ebx);
        let tables: Vec<_> = (0..t.cpus()).map(|c| vcpu_cpuid(&base, &ids, c)).collect();
        let leaves: Vec<_> = tables
            .iter()
            .map(|tb| TopologyLeaves::from_table(tb).expect("leaves"))
            .collect();
        let (smt, llc) = groups(&leaves);
        let want = t.expected_layout();
        assert_eq!(smt, want.smt_siblings, "{t}");
        assert_eq!(llc, want.llcs, "{t}");
        for (c, tb) in tables.iter().enumerate() {
            let apic = ids.apic_id(c as u32);
            let l1 = tb.iter().find(|e| e.function == 1).unwrap();
            assert_eq!(l1.ebx >> 24, apic & 0xff, "{t} cpu {c}");
            assert_ne!(l1.ecx & (1 << 31), 0);
            assert_eq!(tb.iter().filter(|e| e.function == 4).count(), 5);
            let l0x1f: Vec<_> = tb.iter().filter(|e| e.function == 0x1F).collect();
            assert_eq!(l0x1f[1].edx, apic);
            if vendor_ebx == AMD {
                let e = tb.iter().find(|e| e.function == 0x8000_001E).unwrap();
                assert_eq!(e.eax, apic);
                let node = t.node_of_cpu(c as u32);
                assert_eq!(e.ecx, node, "{t} cpu {c}");
                let ext = tb.iter().find(|e| e.function == 0x8000_0001).unwrap();
                assert_ne!(ext.ecx & (1 << 22), 0);
            }
        }
    }

    #[test]
    fn every_gauntlet_preset_decodes_to_its_topology_on_intel_and_amd() {
        for (name, t) in presets() {
            check_topology(t, INTEL);
            check_topology(t, AMD);
            let _ = name;
        }
        check_topology("1n2l3c2t".parse().unwrap(), INTEL);
    }

    #[test]
    fn host_leaves_pass_through_with_the_guest_masks() {
        let t: Topology = "1n1l2c2t".parse().unwrap();
        let tb = vcpu_cpuid(&host(INTEL), &ApicIds::new(t), 3);
        let l1 = tb.iter().find(|e| e.function == 1).unwrap();
        assert_eq!(l1.eax, 0x806f8);
        assert_eq!(l1.ecx & 0x8, 0, "MONITOR masked");
        assert_eq!(l1.ebx >> 24, 3);
        assert_eq!((l1.ebx >> 16) & 0xff, 4);
        let l6 = tb.iter().find(|e| e.function == 6).unwrap();
        assert_eq!((l6.eax, l6.ecx), (0, 0));
        let l0 = tb.iter().find(|e| e.function == 0).unwrap();
        assert_eq!(l0.eax, 0x1F);
        assert_eq!(vendor(&host(AMD)), Vendor::Amd);
    }
}
