//! The own VMM's ACPI tables, disassembled by ACPICA's `iasl -d`: each
//! table must parse without errors or checksum complaints and hold the
//! MADT, SRAT and SLIT entries its topology declares.
#![cfg(target_arch = "x86_64")]

use std::path::Path;
use std::process::Command;

use ktstr_topology::Topology;
use ktstr_vmm::kvm::{acpi, ApicIds};

const MEMORY: u64 = 2 << 30;

/// Disassembles every table of `topology`; returns `(signature, text)`.
fn disassemble(topology: &str) -> Vec<(String, String)> {
    let t: Topology = topology.parse().unwrap();
    let tables = acpi::build(&ApicIds::new(t), MEMORY).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut out = Vec::new();
    check_rsdp(&tables);
    for (_, bytes) in &tables.tables[1..] {
        let sig = String::from_utf8_lossy(&bytes[..4]).trim().to_lowercase();
        let file = dir.path().join(format!("{sig}.dat"));
        std::fs::write(&file, bytes).unwrap();
        out.push((sig.clone(), iasl(dir.path(), &file)));
    }
    out
}

/// The RSDP (which `iasl -d` does not take alone): signature, revision 2,
/// both checksums, and the XSDT's address.
fn check_rsdp(tables: &acpi::AcpiTables) {
    let (at, rsdp) = &tables.tables[0];
    assert_eq!(*at, tables.rsdp_address());
    assert_eq!(&rsdp[..8], b"RSD PTR ");
    assert_eq!((rsdp[15], rsdp.len()), (2, 36));
    let sum = |b: &[u8]| b.iter().fold(0u8, |a, x| a.wrapping_add(*x));
    assert_eq!((sum(&rsdp[..20]), sum(rsdp)), (0, 0));
    let xsdt = u64::from_le_bytes(rsdp[24..32].try_into().unwrap());
    let found = tables.tables.iter().find(|(a, _)| *a == xsdt).unwrap();
    assert_eq!(&found.1[..4], b"XSDT");
}

fn iasl(dir: &Path, file: &Path) -> String {
    let run = Command::new("iasl")
        .arg("-d")
        .arg(file)
        .current_dir(dir)
        .output()
        .expect("iasl (apt-get install acpica-tools)");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "iasl -d {}:\n{log}", file.display());
    let dsl = std::fs::read_to_string(file.with_extension("dsl")).unwrap();
    for bad in ["Error", "Incorrect", "Invalid", "Unknown"] {
        assert!(!dsl.contains(bad), "{bad} in {}:\n{dsl}", file.display());
        assert!(!log.contains(&format!("{bad} ")), "{bad}: {log}");
    }
    dsl
}

fn text<'a>(all: &'a [(String, String)], sig: &str) -> &'a str {
    &all.iter()
        .find(|(s, _)| s == sig)
        .unwrap_or_else(|| panic!("no {sig}"))
        .1
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// The values of the lines whose field name is `field`, in order.
fn fields(dsl: &str, field: &str) -> Vec<String> {
    dsl.lines()
        .filter_map(|l| l.split_once(" : "))
        .filter(|(name, _)| name.rsplit(']').next().unwrap_or("").trim() == field)
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

#[test]
fn one_node_two_cpus() {
    let all = disassemble("1n1l2c1t");
    let sigs: Vec<&str> = all.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(sigs, ["dsdt", "facp", "apic", "srat", "xsdt"]);
    let madt = text(&all, "apic");
    assert_eq!(count(madt, "[Processor Local APIC]"), 2);
    assert_eq!(count(madt, "[I/O APIC]"), 1);
    assert_eq!(fields(madt, "Local Apic ID"), ["00", "01"]);
    let srat = text(&all, "srat");
    assert_eq!(count(srat, "[Processor Local APIC/SAPIC Affinity]"), 2);
    assert_eq!(count(srat, "[Memory Affinity]"), 1);
    let fadt = text(&all, "facp");
    assert_eq!(fields(fadt, "Hardware Reduced (V5)"), ["1"]);
    let addresses = fields(fadt, "Address");
    // The last two are the sleep control and status registers.
    assert_eq!(addresses[addresses.len() - 2..], ["00000000000003C0"; 2]);
    let dsdt = text(&all, "dsdt");
    assert!(dsdt.contains("Name (_S5, Package (0x04)"), "{dsdt}");
    // Both UARTs, with their ports and interrupts (hardware-reduced ACPI
    // maps ISA IRQs only for described devices).
    for (name, port, irq) in [
        ("COM1", "0x03F8", "0x00000004"),
        ("COM2", "0x02F8", "0x00000003"),
    ] {
        let at = dsdt.find(&format!("Device (_SB.{name})")).expect(name);
        let device = &dsdt[at..];
        let device = &device[..device[1..].find("Device (").map_or(device.len(), |e| e + 1)];
        assert!(device.contains("EisaId (\"PNP0501\")"), "{device}");
        assert!(
            device.contains(&format!("{port},             // Range Minimum")),
            "{device}"
        );
        assert!(device.contains(&format!("{irq},")), "{device}");
    }
    assert_eq!(count(text(&all, "xsdt"), "ACPI Table Address"), 3);
}

#[test]
fn two_nodes_four_llcs() {
    let all = disassemble("2n4l2c1t");
    let madt = text(&all, "apic");
    assert_eq!(count(madt, "[Processor Local APIC]"), 8);
    // Two cores per LLC: the LLC field starts at bit 1.
    assert_eq!(
        fields(madt, "Local Apic ID"),
        ["00", "01", "02", "03", "04", "05", "06", "07"]
    );
    let srat = text(&all, "srat");
    assert_eq!(
        fields(srat, "Proximity Domain Low(8)"),
        ["00", "00", "00", "00", "01", "01", "01", "01"]
    );
    assert_eq!(count(srat, "[Memory Affinity]"), 2);
    assert_eq!(fields(srat, "Proximity Domain"), ["00000000", "00000001"]);
    assert_eq!(
        fields(srat, "Base Address"),
        ["0000000000000000", "0000000040000000"]
    );
    assert_eq!(fields(srat, "Address Length"), ["0000000040000000"; 2]);
    let slit = text(&all, "slit");
    assert!(slit.contains("Localities : 0000000000000002"), "{slit}");
    assert!(slit.contains("0A 14") && slit.contains("14 0A"), "{slit}");
}

#[test]
fn three_hundred_cpus_use_x2apic() {
    let t: Topology = "2n10l15c2t".parse().unwrap();
    assert_eq!(t.cpus(), 300);
    let ids = ApicIds::new(t);
    let high = ids.all().iter().filter(|&&i| i > 254).count();
    assert!(high > 0);
    let all = disassemble("2n10l15c2t");
    let madt = text(&all, "apic");
    assert_eq!(count(madt, "[Processor Local APIC]"), 300 - high);
    assert_eq!(count(madt, "[Processor Local x2APIC]"), high);
    let srat = text(&all, "srat");
    assert_eq!(
        count(srat, "[Processor Local APIC/SAPIC Affinity]"),
        300 - high
    );
    assert_eq!(count(srat, "[Processor Local x2APIC Affinity]"), high);
    assert!(text(&all, "slit").contains("0A 14"));
}
