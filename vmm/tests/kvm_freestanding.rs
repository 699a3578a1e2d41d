//! ktstr's own KVM VMM on this host: a freestanding real-mode guest runs
//! on every vCPU (the VMM's VM setup, CPUID tables and exit loop), reads
//! its LAPIC ID register and CPUID topology leaves and prints them on
//! COM1; the host checks them against the declared topology.
#![cfg(target_arch = "x86_64")]

use std::path::Path;
use std::time::Duration;

use ktstr_topology::Topology;
use ktstr_vmm::kvm::apic_ids::ApicIds;
use ktstr_vmm::kvm::cpuid::{groups, TopologyLeaves};
use ktstr_vmm::kvm::freestanding;
use ktstr_vmm::kvm::vcpu::VcpuEnd;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

#[path = "guest/real_mode.rs"]
mod real_mode;

/// `tests/guest/topology.S`, assembled.
fn program() -> Vec<u8> {
    real_mode::assemble("topology.S")
}

/// One printed line, decoded.
#[derive(Debug)]
struct Line {
    lapic_id: u32,
    leaf1_ebx: u32,
    b0: [u32; 3],
    b1: [u32; 2],
    l3_eax: u32,
}

fn hex(s: &str) -> u32 {
    u32::from_str_radix(s, 16).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn parse(line: &str) -> Line {
    let field = |name: &str| -> Vec<u32> {
        let rest = line
            .split(' ')
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name} in {line:?}"));
        rest.split(',').map(hex).collect()
    };
    let (b0, b1) = (field("B0"), field("B1"));
    Line {
        lapic_id: field("L")[0] >> 24,
        leaf1_ebx: field("A")[0],
        b0: [b0[0], b0[1], b0[2]],
        b1: [b1[0], b1[1]],
        l3_eax: field("C3")[0],
    }
}

fn check(topology: &str) {
    if !Path::new("/dev/kvm").exists() {
        assert!(!in_ci(), "CI=true and /dev/kvm is missing");
        eprintln!("SKIP: no /dev/kvm");
        return;
    }
    let t: Topology = topology.parse().unwrap();
    let ids = ApicIds::new(t);
    let run = freestanding::run(t, &program(), Duration::from_secs(60)).expect("VM runs");
    assert!(
        run.ends.iter().all(|e| *e == VcpuEnd::Done),
        "{:?}\n{}",
        run.ends,
        run.console
    );
    let mut lines: Vec<Line> = run.console.lines().map(parse).collect();
    assert_eq!(lines.len() as u32, t.cpus(), "{}", run.console);
    // vCPUs print in whatever order they take the lock: order by APIC ID.
    lines.sort_by_key(|l| l.lapic_id);
    let want = ids.all();
    let mut sorted_want = want.clone();
    sorted_want.sort_unstable();
    let leaves: Vec<TopologyLeaves> = want
        .iter()
        .map(|apic| {
            let i = sorted_want.binary_search(apic).unwrap();
            let l = &lines[i];
            assert_eq!(l.lapic_id, *apic, "LAPIC ID register");
            assert_eq!(l.leaf1_ebx >> 24, *apic, "CPUID.1 EBX[31:24]");
            assert_eq!(l.b0[2], *apic, "CPUID.0xB EDX (x2APIC ID)");
            assert_eq!(l.b0[0], ids.smt_shift(), "SMT shift");
            assert_eq!(l.b0[1], t.threads_per_core(), "threads per core");
            assert_eq!(l.b1[0], ids.package_shift(), "package shift");
            assert_eq!(l.b1[1], t.cpus_per_llc(), "CPUs per package");
            TopologyLeaves {
                x2apic_id: l.b0[2],
                smt_shift: l.b0[0],
                package_shift: l.b1[0],
                l3_sharing: ((l.l3_eax >> 14) & 0xfff) + 1,
            }
        })
        .collect();
    let (smt, llc) = groups(&leaves);
    let layout = t.expected_layout();
    assert_eq!(smt, layout.smt_siblings, "{topology}: SMT groups");
    assert_eq!(llc, layout.llcs, "{topology}: LLC groups");
}

#[test]
fn each_vcpu_of_1n2l2c2t_reports_its_declared_topology() {
    check("1n2l2c2t");
}

#[test]
fn each_vcpu_of_2n4l2c1t_reports_its_declared_topology() {
    check("2n4l2c1t");
}

#[test]
fn each_vcpu_of_1n2l3c2t_with_apic_id_holes_reports_its_topology() {
    check("1n2l3c2t");
}
