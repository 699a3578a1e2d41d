//! The aarch64 device tree, decompiled by `dtc`: no warnings, and the
//! declared topology in its cpu nodes, cpu-map, caches, memory nodes and
//! distance map.

use std::process::Command;

use ktstr_vmm::aarch64::fdt::{build, FdtSpec};

fn decompile(topology: &str) -> String {
    let blob = build(&FdtSpec {
        topology: topology.parse().unwrap(),
        memory_bytes: 2 << 30,
        cmdline: "console=ttyS0 rdinit=/init".into(),
        initrd: Some((0x4800_0000, 0x4820_0000)),
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("guest.dtb");
    std::fs::write(&file, blob).unwrap();
    let out = Command::new("dtc")
        .args(["-I", "dtb", "-O", "dts"])
        .arg(&file)
        .output()
        .expect("dtc (apt-get install device-tree-compiler)");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && warnings.trim().is_empty(),
        "{warnings}"
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The text of the node whose line starts with `name {`.
fn node<'a>(dts: &'a str, name: &str) -> &'a str {
    let start = dts
        .find(&format!("\t{name} {{"))
        .unwrap_or_else(|| panic!("no {name}"));
    let rest = &dts[start..];
    let end = rest
        .find("\n\t\t};")
        .or_else(|| rest.find("\n\t};"))
        .unwrap();
    &rest[..end]
}

#[test]
fn two_nodes_four_llcs_with_smt() {
    let dts = decompile("2n4l2c2t");
    assert_eq!(dts.matches("device_type = \"cpu\"").count(), 16);
    // CPU 13: thread 1 of core 0 of LLC 3: MPIDR 0x30001, node 1, L2 of core 6.
    let cpu = node(&dts, "cpu@30001");
    assert!(cpu.contains("reg = <0x00 0x30001>"), "{cpu}");
    assert!(cpu.contains("numa-node-id = <0x01>"), "{cpu}");
    assert!(cpu.contains("next-level-cache = <0x20006>"), "{cpu}");
    // Core 6's L2 leads to LLC 3's L3.
    let l2 = node(&dts, "l2-cache-6");
    assert!(l2.contains("cache-level = <0x02>") && l2.contains("next-level-cache = <0x30003>"));
    assert_eq!(dts.matches("cache-level = <0x03>").count(), 4);
    // cpu-map: socket per node, cluster per LLC, threads.
    assert_eq!(dts.matches("socket").count(), 2);
    assert_eq!(dts.matches("cluster").count(), 4);
    assert_eq!(dts.matches("thread1 {").count(), 8);
    let mem = node(&dts, "memory@80000000");
    assert!(
        mem.contains("reg = <0x00 0x80000000 0x00 0x40000000>")
            && mem.contains("numa-node-id = <0x01>")
    );
    assert!(dts.contains(
        "distance-matrix = <0x00 0x00 0x0a 0x00 0x01 0x14 0x01 0x00 0x14 0x01 0x01 0x0a>"
    ));
    assert!(dts.contains("bootargs = \"console=ttyS0 rdinit=/init\""));
    assert!(dts.contains("linux,initrd-start = <0x00 0x48000000>"));
}

#[test]
fn one_node_without_smt_has_no_distance_map() {
    let dts = decompile("1n1l2c1t");
    assert_eq!(dts.matches("device_type = \"cpu\"").count(), 2);
    assert!(!dts.contains("distance-map") && !dts.contains("thread0"));
    assert!(node(&dts, "core1").contains("cpu = <0x10001>"));
}
