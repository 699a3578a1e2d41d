//! The flattened device tree of an aarch64 guest, built with vm-fdt: the
//! declared topology as cpu nodes (MPIDR in `reg`, `numa-node-id`), a
//! `cpu-map` (socket per NUMA node, cluster per LLC, core, thread), cache
//! nodes (an L2 per core shared by its threads, an L3 per LLC), memory
//! nodes per NUMA node, and the `numa-distance-map-v1` matrix; plus what
//! Linux needs to boot: chosen, PSCI, GICv3, the architected timer and two
//! 16550 UARTs (console and channel).
//!
//! Pure data: it is compiled and tested on every host, whether or not an
//! aarch64 KVM exists to run it.

use ktstr_topology::Topology;
use vm_fdt::{FdtWriter, FdtWriterResult};

use crate::error::VmError;

/// Start of guest RAM.
pub const RAM_START: u64 = 0x4000_0000;
/// The console UART (16550, MMIO).
pub const CONSOLE_UART: u64 = 0x0100_0000;
/// The channel UART.
pub const CHANNEL_UART: u64 = 0x0100_1000;
/// The GICv3 distributor.
pub const GIC_DIST: u64 = 0x0800_0000;
/// Size of the distributor.
pub const GIC_DIST_SIZE: u64 = 0x1_0000;
/// The GICv3 redistributors, one 128 KiB frame per CPU.
pub const GIC_REDIST: u64 = GIC_DIST + GIC_DIST_SIZE;
/// One redistributor frame.
pub const GIC_REDIST_FRAME: u64 = 0x2_0000;
/// Shared interrupt numbers (SPIs) of the two UARTs.
pub const UART_SPIS: [u32; 2] = [1, 2];

const GIC_PHANDLE: u32 = 1;
const CPU_PHANDLE: u32 = 0x1_0000;
const L2_PHANDLE: u32 = 0x2_0000;
const L3_PHANDLE: u32 = 0x3_0000;
/// GIC interrupt types and flags.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
const IRQ_LEVEL_HIGH: u32 = 4;
const PPI_ALL_CPUS_LEVEL_LOW: u32 = 0xf08;

/// What the device tree describes.
#[derive(Debug, Clone)]
pub struct FdtSpec {
    /// The CPU topology.
    pub topology: Topology,
    /// Guest RAM in bytes, from [`RAM_START`].
    pub memory_bytes: u64,
    /// The kernel command line.
    pub cmdline: String,
    /// The initrd's `(start, end)` guest addresses, if any.
    pub initrd: Option<(u64, u64)>,
}

/// CPU `cpu`'s MPIDR affinity: thread in Aff0, core in Aff1, LLC in
/// Aff2 (each field 8 bits).
pub fn mpidr(topology: &Topology, cpu: u32) -> Result<u64, VmError> {
    let p = topology.cpu_position(cpu);
    let fields = [p.thread, p.core, p.llc];
    if fields.iter().any(|&f| f > 255) {
        return Err(VmError::Unsupported {
            backend: "kvm (aarch64)".into(),
            reason: format!("CPU {cpu} of {topology} needs an MPIDR field above 255"),
        });
    }
    Ok(u64::from(fields[0]) | u64::from(fields[1]) << 8 | u64::from(fields[2]) << 16)
}

/// The device tree blob for `spec`.
pub fn build(spec: &FdtSpec) -> Result<Vec<u8>, VmError> {
    let t = spec.topology;
    let mpidrs = (0..t.cpus())
        .map(|cpu| mpidr(&t, cpu))
        .collect::<Result<Vec<_>, _>>()?;
    write(spec, &mpidrs).map_err(|e| VmError::Launch(format!("device tree: {e}")))
}

fn write(spec: &FdtSpec, mpidrs: &[u64]) -> FdtWriterResult<Vec<u8>> {
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "linux,dummy-virt")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;
    chosen(&mut fdt, spec)?;
    memory(&mut fdt, spec)?;
    cpus(&mut fdt, &spec.topology, mpidrs)?;
    devices(&mut fdt, spec.topology.cpus())?;
    distance_map(&mut fdt, &spec.topology)?;
    fdt.end_node(root)?;
    fdt.finish()
}

fn chosen(fdt: &mut FdtWriter, spec: &FdtSpec) -> FdtWriterResult<()> {
    let node = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", &spec.cmdline)?;
    fdt.property_string("stdout-path", &format!("/uart@{CONSOLE_UART:x}"))?;
    if let Some((start, end)) = spec.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.end_node(node)
}

/// One memory node per NUMA node ([`crate::numa::node_slices`]).
fn memory(fdt: &mut FdtWriter, spec: &FdtSpec) -> FdtWriterResult<()> {
    let slices = crate::numa::node_slices(spec.memory_bytes, spec.topology.numa_nodes());
    for (node, offset, len) in slices {
        let start = RAM_START + offset;
        let n = fdt.begin_node(&format!("memory@{start:x}"))?;
        fdt.property_string("device_type", "memory")?;
        fdt.property_array_u64("reg", &[start, len])?;
        fdt.property_u32("numa-node-id", node)?;
        fdt.end_node(n)?;
    }
    Ok(())
}

fn cpus(fdt: &mut FdtWriter, t: &Topology, mpidrs: &[u64]) -> FdtWriterResult<()> {
    let node = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 0)?;
    let tpc = t.threads_per_core();
    for (cpu, &id) in mpidrs.iter().enumerate() {
        let cpu = cpu as u32;
        let n = fdt.begin_node(&format!("cpu@{id:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,arm-v8")?;
        fdt.property_string("enable-method", "psci")?;
        fdt.property_array_u32("reg", &[(id >> 32) as u32, id as u32])?;
        fdt.property_u32("numa-node-id", t.node_of_cpu(cpu))?;
        fdt.property_u32("next-level-cache", L2_PHANDLE + cpu / tpc)?;
        fdt.property_phandle(CPU_PHANDLE + cpu)?;
        fdt.end_node(n)?;
    }
    for core in 0..t.cpus() / tpc {
        let n = fdt.begin_node(&format!("l2-cache-{core}"))?;
        cache(fdt, 2, L2_PHANDLE + core)?;
        fdt.property_u32("next-level-cache", L3_PHANDLE + core / t.cores_per_llc())?;
        fdt.end_node(n)?;
    }
    for llc in 0..t.llcs() {
        let n = fdt.begin_node(&format!("l3-cache-{llc}"))?;
        cache(fdt, 3, L3_PHANDLE + llc)?;
        fdt.end_node(n)?;
    }
    cpu_map(fdt, t)?;
    fdt.end_node(node)
}

fn cache(fdt: &mut FdtWriter, level: u32, phandle: u32) -> FdtWriterResult<()> {
    fdt.property_string("compatible", "cache")?;
    fdt.property_null("cache-unified")?;
    fdt.property_u32("cache-level", level)?;
    fdt.property_phandle(phandle)
}

/// `cpu-map`: socket per NUMA node, cluster per LLC, then cores and
/// (with SMT) threads.
fn cpu_map(fdt: &mut FdtWriter, t: &Topology) -> FdtWriterResult<()> {
    let map = fdt.begin_node("cpu-map")?;
    let (tpc, cpl) = (t.threads_per_core(), t.cores_per_llc());
    for node in 0..t.numa_nodes() {
        let socket = fdt.begin_node(&format!("socket{node}"))?;
        for (i, llc) in t.llcs_on_node(node).into_iter().enumerate() {
            let cluster = fdt.begin_node(&format!("cluster{i}"))?;
            for core in 0..cpl {
                let c = fdt.begin_node(&format!("core{core}"))?;
                let first = (llc * cpl + core) * tpc;
                if tpc == 1 {
                    fdt.property_u32("cpu", CPU_PHANDLE + first)?;
                } else {
                    for thread in 0..tpc {
                        let th = fdt.begin_node(&format!("thread{thread}"))?;
                        fdt.property_u32("cpu", CPU_PHANDLE + first + thread)?;
                        fdt.end_node(th)?;
                    }
                }
                fdt.end_node(c)?;
            }
            fdt.end_node(cluster)?;
        }
        fdt.end_node(socket)?;
    }
    fdt.end_node(map)
}

/// PSCI, the GICv3, the architected timer and the two UARTs.
fn devices(fdt: &mut FdtWriter, cpus: u32) -> FdtWriterResult<()> {
    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,psci-1.0".into(), "arm,psci-0.2".into()],
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)?;

    let gic = fdt.begin_node(&format!("intc@{GIC_DIST:x}"))?;
    fdt.property_string("compatible", "arm,gic-v3")?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    let redist = u64::from(cpus) * GIC_REDIST_FRAME;
    fdt.property_array_u64("reg", &[GIC_DIST, GIC_DIST_SIZE, GIC_REDIST, redist])?;
    fdt.property_phandle(GIC_PHANDLE)?;
    fdt.end_node(gic)?;

    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    fdt.property_null("always-on")?;
    let mut irqs = Vec::new();
    for ppi in [13, 14, 11, 10] {
        irqs.extend_from_slice(&[GIC_PPI, ppi, PPI_ALL_CPUS_LEVEL_LOW]);
    }
    fdt.property_array_u32("interrupts", &irqs)?;
    fdt.end_node(timer)?;

    for (base, spi) in [CONSOLE_UART, CHANNEL_UART].into_iter().zip(UART_SPIS) {
        let uart = fdt.begin_node(&format!("uart@{base:x}"))?;
        fdt.property_string("compatible", "ns16550a")?;
        fdt.property_array_u64("reg", &[base, 0x1000])?;
        fdt.property_u32("clock-frequency", 1_843_200)?;
        fdt.property_array_u32("interrupts", &[GIC_SPI, spi, IRQ_LEVEL_HIGH])?;
        fdt.end_node(uart)?;
    }
    Ok(())
}

/// `numa-distance-map-v1`: every pair of nodes with its distance (only
/// with more than one node).
fn distance_map(fdt: &mut FdtWriter, t: &Topology) -> FdtWriterResult<()> {
    if t.numa_nodes() < 2 {
        return Ok(());
    }
    let node = fdt.begin_node("distance-map")?;
    fdt.property_string("compatible", "numa-distance-map-v1")?;
    let mut matrix = Vec::new();
    for a in 0..t.numa_nodes() {
        for b in 0..t.numa_nodes() {
            matrix.extend_from_slice(&[a, b, t.distance(a, b)]);
        }
    }
    fdt.property_array_u32("distance-matrix", &matrix)?;
    fdt.end_node(node)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(topology: &str) -> FdtSpec {
        FdtSpec {
            topology: topology.parse().unwrap(),
            memory_bytes: 1 << 30,
            cmdline: "console=ttyS0".into(),
            initrd: Some((0x4800_0000, 0x4810_0000)),
        }
    }

    #[test]
    fn mpidr_packs_thread_core_and_llc() {
        let t: Topology = "2n4l3c2t".parse().unwrap();
        // CPU 7: thread 1 of core 0 of LLC 1.
        assert_eq!(mpidr(&t, 7).unwrap(), 0x01_00_01);
        assert_eq!(mpidr(&t, 5).unwrap(), 0x00_02_01);
        let wide: Topology = "1n1l300c1t".parse().unwrap();
        assert!(mpidr(&wide, 299).is_err());
    }

    #[test]
    fn blob_has_the_fdt_magic_and_every_cpu() {
        let blob = build(&spec("2n4l2c2t")).unwrap();
        assert_eq!(&blob[..4], &0xd00d_feedu32.to_be_bytes());
        let text = String::from_utf8_lossy(&blob);
        for cpu in ["cpu@0", "cpu@1", "cpu@101", "cpu@30101"] {
            assert!(text.contains(cpu), "{cpu}");
        }
        assert!(text.contains("numa-distance-map-v1"));
        assert!(
            !String::from_utf8_lossy(&build(&spec("1n1l2c1t")).unwrap()).contains("distance-map")
        );
    }
}
