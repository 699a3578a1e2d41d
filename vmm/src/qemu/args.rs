//! The QEMU command line for a [`VmSpec`].
//!
//! Topology mapping (measured on QEMU 7.2, see docs/ARCHITECTURE.md): the
//! guest's L3 groups follow QEMU *sockets*, not dies, so each LLC becomes a
//! socket (`-smp sockets=LLCs,cores=C,threads=T`); the sockets are spread
//! over NUMA nodes in order with `-numa node,cpus=` and the distances with
//! `-numa dist`. CPU model `max` (TCG) or `host` (KVM) reports cache
//! sharing and SMT in CPUID leaves 4 and 0xB, which the guest reads.

use std::path::Path;

use ktstr_topology::{cpulist, Topology};

use crate::backend::{BackendKind, VmSpec};
use crate::VmError;

/// QEMU's q35 limit without an IOMMU for x2APIC interrupt remapping.
pub const QEMU_MAX_CPUS: u32 = 255;

/// Checks that QEMU can run `spec`.
pub(super) fn check(kind: BackendKind, spec: &VmSpec) -> Result<(), VmError> {
    let unsupported = |reason: String| VmError::Unsupported {
        backend: kind.to_string(),
        reason,
    };
    let t = &spec.topology;
    if t.cpus() > QEMU_MAX_CPUS {
        return Err(unsupported(format!(
            "topology {t} has {} CPUs; QEMU's q35 machine runs at most {QEMU_MAX_CPUS}",
            t.cpus()
        )));
    }
    let min = 64 * t.numa_nodes();
    if spec.memory_mb < min {
        return Err(unsupported(format!(
            "{} MiB is too little memory for {} NUMA nodes (at least {min} MiB)",
            spec.memory_mb,
            t.numa_nodes()
        )));
    }
    for path in [&spec.kernel, &spec.initramfs] {
        if !path.is_file() {
            return Err(unsupported(format!("{} is not a file", path.display())));
        }
    }
    Ok(())
}

/// Guest RAM's guest-physical ranges (start, length) on q35 with `bytes`
/// of RAM: all of it from 0 below 2.75 GiB, else 2 GiB low and the rest
/// from 4 GiB (QEMU's `pc_q35_init`).
pub fn q35_ram_ranges(bytes: u64) -> Vec<(u64, u64)> {
    const LOW_LIMIT: u64 = 0xb000_0000;
    const LOW_SPLIT: u64 = 0x8000_0000;
    if bytes < LOW_LIMIT {
        vec![(0, bytes)]
    } else {
        vec![(0, LOW_SPLIT), (1 << 32, bytes - LOW_SPLIT)]
    }
}

/// The full argument list (without the program name). Guest RAM is one
/// file per NUMA node, `ram_fds` (inherited by QEMU, shared with the host
/// for introspection), in node order.
pub fn qemu_args(
    kind: BackendKind,
    spec: &VmSpec,
    channel_socket: &Path,
    ram_fds: &[i32],
) -> Vec<String> {
    let t = &spec.topology;
    let mut a: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    let (accel, cpu) = match kind {
        BackendKind::QemuKvm => ("kvm", "host"),
        _ => ("tcg,thread=multi", "max"),
    };
    let machine = if t.numa_nodes() < 2 {
        "q35,memory-backend=ktstr-mem0"
    } else {
        "q35"
    };
    push(&["-machine", machine, "-accel", accel, "-cpu", cpu]);
    push(&[
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ]);
    let per_node = spec.memory_mb / t.numa_nodes();
    let memory = (per_node * t.numa_nodes()).to_string();
    push(&["-m", &memory]);
    let smp = format!(
        "cpus={},sockets={},dies=1,cores={},threads={}",
        t.cpus(),
        t.llcs(),
        t.cores_per_llc(),
        t.threads_per_core()
    );
    push(&["-smp", &smp]);
    for (node, fd) in ram_fds.iter().enumerate() {
        a.push("-object".into());
        a.push(format!(
            "memory-backend-file,id=ktstr-mem{node},size={per_node}M,\
             mem-path=/proc/self/fd/{fd},share=on"
        ));
    }
    a.extend(numa_args(t));
    let chardev = format!(
        "socket,id=ktstr-channel,path={},server=off",
        channel_socket.display()
    );
    let mut push = |items: &[&str]| a.extend(items.iter().map(|s| s.to_string()));
    push(&[
        "-serial",
        "stdio",
        "-chardev",
        &chardev,
        "-serial",
        "chardev:ktstr-channel",
    ]);
    push(&["-kernel", &spec.kernel.to_string_lossy()]);
    push(&["-initrd", &spec.initramfs.to_string_lossy()]);
    push(&["-append", &spec.cmdline]);
    a
}

/// `-numa node` (each node's memory is backend `ktstr-mem{node}`) and
/// `-numa dist` arguments; none for a single node (the guest then sees one
/// node of everything).
fn numa_args(t: &Topology) -> Vec<String> {
    let mut a = Vec::new();
    if t.numa_nodes() < 2 {
        return a;
    }
    for node in 0..t.numa_nodes() {
        let cpus = t.node_cpus(node);
        let (first, last) = (cpus[0], cpus[cpus.len() - 1]);
        debug_assert_eq!(cpulist::format(&cpus), format!("{first}-{last}"));
        a.push("-numa".into());
        a.push(format!(
            "node,nodeid={node},cpus={first}-{last},memdev=ktstr-mem{node}"
        ));
    }
    for from in 0..t.numa_nodes() {
        for to in 0..t.numa_nodes() {
            if from != to {
                a.push("-numa".into());
                a.push(format!(
                    "dist,src={from},dst={to},val={}",
                    t.distance(from, to)
                ));
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn spec(topology: &str, memory_mb: u32) -> VmSpec {
        VmSpec {
            kernel: PathBuf::from("/k"),
            initramfs: PathBuf::from("/i"),
            cmdline: "console=ttyS0".into(),
            topology: topology.parse().unwrap(),
            memory_mb,
            timeout: Duration::from_secs(1),
            work_dir: PathBuf::from("/w"),
            snapshot: Default::default(),
        }
    }

    fn after<'a>(args: &'a [String], flag: &str) -> Vec<&'a str> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn one_socket_per_llc_and_numa_nodes_with_distances() {
        let a = qemu_args(
            BackendKind::QemuTcg,
            &spec("2n4l2c1t", 1001),
            Path::new("/s"),
            &[7, 9],
        );
        assert_eq!(
            after(&a, "-smp"),
            ["cpus=8,sockets=4,dies=1,cores=2,threads=1"]
        );
        assert_eq!(after(&a, "-m"), ["1000"]);
        assert_eq!(
            after(&a, "-numa"),
            [
                "node,nodeid=0,cpus=0-3,memdev=ktstr-mem0",
                "node,nodeid=1,cpus=4-7,memdev=ktstr-mem1",
                "dist,src=0,dst=1,val=20",
                "dist,src=1,dst=0,val=20",
            ]
        );
        assert_eq!(
            after(&a, "-object"),
            [
                "memory-backend-file,id=ktstr-mem0,size=500M,mem-path=/proc/self/fd/7,share=on",
                "memory-backend-file,id=ktstr-mem1,size=500M,mem-path=/proc/self/fd/9,share=on",
            ]
        );
        assert_eq!(after(&a, "-machine"), ["q35"]);
        assert_eq!(after(&a, "-accel"), ["tcg,thread=multi"]);
        assert_eq!(after(&a, "-serial"), ["stdio", "chardev:ktstr-channel"]);
    }

    #[test]
    fn single_node_has_no_numa_and_kvm_uses_host_cpu() {
        let a = qemu_args(
            BackendKind::QemuKvm,
            &spec("1n2l2c2t", 512),
            Path::new("/s"),
            &[5],
        );
        assert!(after(&a, "-numa").is_empty());
        assert_eq!(after(&a, "-machine"), ["q35,memory-backend=ktstr-mem0"]);
        assert_eq!(after(&a, "-cpu"), ["host"]);
        assert_eq!(
            after(&a, "-smp"),
            ["cpus=8,sockets=2,dies=1,cores=2,threads=2"]
        );
    }

    #[test]
    fn ram_above_2_75_gib_is_split_around_the_pci_hole() {
        assert_eq!(q35_ram_ranges(1 << 30), [(0, 1 << 30)]);
        assert_eq!(q35_ram_ranges(4 << 30), [(0, 2 << 30), (4 << 30, 2 << 30)]);
    }

    #[test]
    fn check_rejects_what_qemu_cannot_run() {
        let e = check(BackendKind::QemuTcg, &spec("1n16l8c2t", 4096)).unwrap_err();
        assert!(e.to_string().contains("at most 255"), "{e}");
        let e = check(BackendKind::QemuTcg, &spec("4n4l1c1t", 128)).unwrap_err();
        assert!(e.to_string().contains("too little memory"), "{e}");
    }
}
