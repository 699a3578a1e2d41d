//! The ACPI tables of an x86_64 guest, built with `acpi_tables`: RSDP,
//! XSDT, FADT (hardware-reduced, with a sleep control port for power-off),
//! DSDT (`\_S5`, the two UARTs), MADT (local APIC entries, x2APIC entries for IDs above
//! 254, the IOAPIC), SRAT (CPU and memory affinity per NUMA node) and SLIT
//! (node distances).
//!
//! `acpi_tables` has no x86 CPU affinity structures in its SRAT: the SRAT
//! is assembled in the crate's generic [`Sdt`] from its `MemoryAffinity`
//! bytes and ours ([`cpu_affinity`]). The MADT's x2APIC entry is our
//! [`X2Apic`], added through the crate's generic `add_structure`.

use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, ProcessorLocalApic, MADT,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::slit::SLIT;
use acpi_tables::srat::MemoryAffinity;
use acpi_tables::xsdt::XSDT;
use acpi_tables::{aml, Aml};
use ktstr_topology::Topology;
use zerocopy::{Immutable, IntoBytes};

use super::apic_ids::ApicIds;
use super::layout::{
    node_ranges, ACPI_END, COM1, COM1_GSI, COM2, COM2_GSI, IOAPIC_ADDRESS, LAPIC_ADDRESS,
    RSDP_ADDRESS, S5_SLEEP_TYPE, SLEEP_CONTROL_PORT,
};
use crate::error::VmError;

/// The OEM ID in every table.
const OEM_ID: [u8; 6] = *b"KTSTR ";
/// The OEM table ID in every table.
const OEM_TABLE_ID: [u8; 8] = *b"KTSTRVMM";
/// Tables start 16-byte aligned.
const ALIGN: u64 = 16;

/// The tables of one guest, each with the guest physical address it must
/// be written to.
#[derive(Debug, Clone)]
pub struct AcpiTables {
    /// `(address, bytes)` per table, RSDP first.
    pub tables: Vec<(u64, Vec<u8>)>,
}

impl AcpiTables {
    /// The RSDP's address (what PVH start info and boot params carry).
    pub fn rsdp_address(&self) -> u64 {
        RSDP_ADDRESS
    }

    /// The bytes of the table with `signature` (`b"RSD "` for the RSDP).
    pub fn table(&self, signature: &[u8; 4]) -> Option<&[u8]> {
        self.tables
            .iter()
            .find(|(_, b)| b.get(..4) == Some(signature.as_slice()))
            .map(|(_, b)| b.as_slice())
    }
}

/// A Processor Local x2APIC structure (MADT type 9).
#[repr(C, packed)]
#[derive(Clone, Copy, Debug, Default, IntoBytes, Immutable)]
pub struct X2Apic {
    kind: u8,
    length: u8,
    reserved: [u8; 2],
    x2apic_id: u32,
    flags: u32,
    processor_uid: u32,
}

impl X2Apic {
    /// An enabled x2APIC with `id` for ACPI processor `uid`.
    pub fn new(uid: u32, id: u32) -> Self {
        X2Apic {
            kind: 9,
            length: 16,
            reserved: [0; 2],
            x2apic_id: id.to_le(),
            flags: 1u32.to_le(),
            processor_uid: uid.to_le(),
        }
    }
}

impl Aml for X2Apic {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        sink.vec(self.as_bytes());
    }
}

/// The SRAT structure binding APIC ID `id` to NUMA node `node`: a
/// Processor Local APIC Affinity (type 0) for IDs below 255, a Processor
/// Local x2APIC Affinity (type 2) otherwise.
pub fn cpu_affinity(id: u32, node: u32) -> Vec<u8> {
    const ENABLED: u32 = 1;
    if id < 255 {
        let mut b = vec![0u8, 16, node as u8, id as u8];
        b.extend_from_slice(&ENABLED.to_le_bytes());
        b.push(0); // local SAPIC EID
        b.extend_from_slice(&(node >> 8).to_le_bytes()[..3]);
        b.extend_from_slice(&0u32.to_le_bytes()); // clock domain
        b
    } else {
        let mut b = vec![2u8, 24, 0, 0];
        b.extend_from_slice(&node.to_le_bytes());
        b.extend_from_slice(&id.to_le_bytes());
        b.extend_from_slice(&ENABLED.to_le_bytes());
        b.extend_from_slice(&0u32.to_le_bytes()); // clock domain
        b.extend_from_slice(&0u32.to_le_bytes());
        b
    }
}

fn bytes_of(t: &dyn Aml) -> Vec<u8> {
    let mut v = Vec::new();
    t.to_aml_bytes(&mut v);
    v
}

/// The MADT: every CPU's local APIC (x2APIC above 254), the IOAPIC.
pub fn madt(ids: &ApicIds) -> Vec<u8> {
    let mut madt = MADT::new(
        OEM_ID,
        OEM_TABLE_ID,
        1,
        LocalInterruptController::Address(LAPIC_ADDRESS),
    );
    for (cpu, id) in ids.all().into_iter().enumerate() {
        if id < 255 {
            madt.add_structure(ProcessorLocalApic::new(
                cpu as u8,
                id as u8,
                EnabledStatus::Enabled,
            ));
        } else {
            madt.add_structure(X2Apic::new(cpu as u32, id));
        }
    }
    madt.add_structure(IoApic::new(0, IOAPIC_ADDRESS, 0));
    bytes_of(&madt)
}

/// The SRAT: each CPU's node and each node's memory.
pub fn srat(ids: &ApicIds, memory_bytes: u64) -> Vec<u8> {
    let t = ids.topology();
    let mut srat = Sdt::new(*b"SRAT", 48, 3, OEM_ID, OEM_TABLE_ID, 1);
    srat.write_u32(36, 1); // reserved, 1 for compatibility
    for (cpu, id) in ids.all().into_iter().enumerate() {
        srat.append_slice(&cpu_affinity(id, t.node_of_cpu(cpu as u32)));
    }
    for (node, start, len) in node_ranges(memory_bytes, t.numa_nodes()) {
        let m = MemoryAffinity::new(node, start, len).enabled();
        srat.append_slice(&bytes_of(&m));
    }
    bytes_of(&srat)
}

/// The SLIT: the declared distance between every two nodes.
pub fn slit(t: &Topology) -> Vec<u8> {
    let n = t.numa_nodes();
    let mut slit = SLIT::new(OEM_ID, OEM_TABLE_ID, 1, n);
    for a in 0..n {
        for b in 0..n {
            if a != b {
                let d = t.distance(a, b).min(254) as u8;
                slit.set_distance(a as usize, b as usize, d);
            }
        }
    }
    bytes_of(&slit)
}

/// A 16550 (`PNP0501`) at `port` raising `gsi`, as `\_SB.name`.
fn uart_device(name: &str, uid: u8, port: u16, gsi: u32) -> Vec<u8> {
    let hid = aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0501"));
    let uid = aml::Name::new("_UID".into(), &uid);
    let io = aml::IO::new(port, port, 1, 8);
    let irq = aml::Interrupt::new(true, true, false, false, gsi);
    let crs = aml::Name::new("_CRS".into(), &aml::ResourceTemplate::new(vec![&io, &irq]));
    bytes_of(&aml::Device::new(
        format!("_SB_.{name}").as_str().into(),
        vec![&hid, &uid, &crs],
    ))
}

/// The DSDT: `\_S5` (what the guest's ACPI power-off needs) and the two
/// UARTs. Hardware-reduced ACPI has no legacy PIC, so Linux maps ISA
/// IRQs only for devices the DSDT describes: without these, the 8250s
/// would have no interrupt and `/dev/ttyS1` would not open.
pub fn dsdt() -> Vec<u8> {
    let mut dsdt = Sdt::new(*b"DSDT", 36, 2, OEM_ID, OEM_TABLE_ID, 1);
    let s5 = aml::Name::new(
        "_S5_".into(),
        &aml::Package::new(vec![&S5_SLEEP_TYPE, &0u8, &0u8, &0u8]),
    );
    dsdt.append_slice(&bytes_of(&s5));
    dsdt.append_slice(&uart_device("COM1", 1, COM1, COM1_GSI));
    dsdt.append_slice(&uart_device("COM2", 2, COM2, COM2_GSI));
    bytes_of(&dsdt)
}

/// The FADT: hardware-reduced ACPI (no PM timer, no SCI, no legacy PIC
/// setup), power-off through [`SLEEP_CONTROL_PORT`], the DSDT's address.
pub fn fadt(dsdt_address: u64) -> Vec<u8> {
    let port = GAS::new(
        AddressSpace::SystemIo,
        8,
        0,
        AccessSize::ByteAccess,
        u64::from(SLEEP_CONTROL_PORT),
    );
    let mut b = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, 1)
        .dsdt_64(dsdt_address)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::PwrButton)
        .flag(Flags::SlpButton);
    b.sleep_control_reg = port;
    b.sleep_status_reg = port;
    bytes_of(&b.finalize())
}

/// Every table for `ids`' topology with `memory_bytes` of RAM, laid out
/// from [`RSDP_ADDRESS`]. Fails when they do not fit below 1 MiB (tens of
/// thousands of CPUs).
pub fn build(ids: &ApicIds, memory_bytes: u64) -> Result<AcpiTables, VmError> {
    let t = ids.topology();
    let mut at = RSDP_ADDRESS + Rsdp::len() as u64;
    let mut place = |bytes: Vec<u8>, tables: &mut Vec<(u64, Vec<u8>)>| {
        at = at.div_ceil(ALIGN) * ALIGN;
        let address = at;
        at += bytes.len() as u64;
        tables.push((address, bytes));
        address
    };
    let mut tables = Vec::new();
    let dsdt_at = place(dsdt(), &mut tables);
    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, 1);
    xsdt.add_entry(place(fadt(dsdt_at), &mut tables));
    xsdt.add_entry(place(madt(ids), &mut tables));
    xsdt.add_entry(place(srat(ids, memory_bytes), &mut tables));
    if t.numa_nodes() > 1 {
        xsdt.add_entry(place(slit(&t), &mut tables));
    }
    let xsdt_at = place(bytes_of(&xsdt), &mut tables);
    tables.insert(0, (RSDP_ADDRESS, bytes_of(&Rsdp::new(OEM_ID, xsdt_at))));
    let end = tables.last().map_or(at, |(a, b)| a + b.len() as u64);
    if end > ACPI_END {
        return Err(VmError::Unsupported {
            backend: "kvm".into(),
            reason: format!(
                "the ACPI tables of {} CPUs need {} bytes, more than the {} below 1 MiB",
                t.cpus(),
                end - RSDP_ADDRESS,
                ACPI_END - RSDP_ADDRESS
            ),
        });
    }
    Ok(AcpiTables { tables })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum_ok(b: &[u8]) -> bool {
        b.iter().fold(0u8, |a, x| a.wrapping_add(*x)) == 0
    }

    fn tables(topology: &str) -> AcpiTables {
        build(&ApicIds::new(topology.parse().unwrap()), 1 << 30).unwrap()
    }

    #[test]
    fn every_table_sums_to_zero_and_has_its_length() {
        let t = tables("2n4l2c1t");
        for (_, b) in &t.tables[1..] {
            assert!(checksum_ok(b), "{:?}", &b[..4]);
            let len = u32::from_le_bytes(b[4..8].try_into().unwrap());
            assert_eq!(len as usize, b.len(), "{:?}", &b[..4]);
        }
        let rsdp = t.table(b"RSD ").unwrap();
        assert!(checksum_ok(&rsdp[..20]) && checksum_ok(rsdp));
        assert!(t.table(b"SLIT").is_some());
        assert!(tables("1n1l2c1t").table(b"SLIT").is_none());
    }

    #[test]
    fn madt_switches_to_x2apic_above_254() {
        let ids = ApicIds::new("2n10l15c2t".parse().unwrap());
        let m = madt(&ids);
        let mut at = 44;
        let (mut lapic, mut x2apic, mut ioapic) = (0, 0, 0);
        while at < m.len() {
            match m[at] {
                0 => lapic += 1,
                9 => {
                    let id = u32::from_le_bytes(m[at + 4..at + 8].try_into().unwrap());
                    assert!(id > 254);
                    x2apic += 1;
                }
                1 => ioapic += 1,
                k => panic!("unexpected MADT entry type {k}"),
            }
            at += m[at + 1] as usize;
        }
        let below = ids.all().iter().filter(|&&i| i < 255).count();
        assert_eq!((lapic, x2apic, ioapic), (below, 300 - below, 1));
    }

    #[test]
    fn cpu_affinity_entries() {
        let low = cpu_affinity(7, 1);
        assert_eq!(low.len(), 16);
        assert_eq!((low[0], low[2], low[3]), (0, 1, 7));
        let high = cpu_affinity(300, 1);
        assert_eq!(high.len(), 24);
        assert_eq!(high[0], 2);
        assert_eq!(u32::from_le_bytes(high[8..12].try_into().unwrap()), 300);
    }
}
