//! `cargo bench -p ktstr-vmm --bench kvm_boot`: what the own KVM VMM
//! itself costs per VM, measured with the tiny PVH and bzImage kernels
//! (which print their boot info and power off at once): VM and memory
//! creation, ACPI tables, kernel and initrd loading, vCPU setup, the boot
//! to power-off, and teardown. Prints min / median / max over 20 runs of
//! 1n2l2c1t (4 vCPUs, 256 MiB). With `KTSTR_BENCH_KERNEL_DIR` set to a
//! kernel cache entry (holding `vmlinux` and `bzImage`), it also times
//! what the VMM does before a real Linux runs: VM creation, ACPI tables
//! and loading that kernel (PVH `vmlinux`, and the bzImage) with a 4 MiB
//! initrd. Linux boot times on this backend come from `ktstr bench boot
//! --backend kvm` on hosts where it boots Linux.

#![cfg_attr(not(target_arch = "x86_64"), allow(unused))]

#[cfg(target_arch = "x86_64")]
#[path = "../tests/guest/build.rs"]
mod build;

/// min, median and max of `times` (ms), sorted in place.
#[cfg(target_arch = "x86_64")]
fn figures(times: &mut [f64]) -> String {
    times.sort_by(f64::total_cmp);
    format!(
        "min {:.2} ms, median {:.2} ms, max {:.2} ms",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    )
}

/// VM creation plus `boot::prepare` of a real kernel, 10 times each.
#[cfg(target_arch = "x86_64")]
fn real_kernel_setup(dir: &std::path::Path) {
    use ktstr_vmm::kvm::boot::{self, BootSpec};
    use ktstr_vmm::kvm::vm::KvmVm;
    use ktstr_vmm::kvm::ApicIds;
    use std::time::Instant;

    let Some(entry) = std::env::var_os("KTSTR_BENCH_KERNEL_DIR") else {
        println!("kvm_boot: set KTSTR_BENCH_KERNEL_DIR to a kernel cache entry to time real kernel setup");
        return;
    };
    let entry = std::path::PathBuf::from(entry);
    let initrd = dir.join("initrd-4m");
    std::fs::write(&initrd, vec![0u8; 4 << 20]).expect("initrd");
    let topology: ktstr_topology::Topology = "1n2l2c1t".parse().expect("topology");
    for image in ["vmlinux", "bzImage"] {
        let kernel = entry.join(image);
        let mut times = Vec::new();
        for _ in 0..10 {
            let start = Instant::now();
            let vm = KvmVm::new(topology, 256 << 20).expect("vm");
            let spec = BootSpec {
                kernel: &kernel,
                initrd: Some(&initrd),
                cmdline: &ktstr_vmm::cmdline::guest_cmdline(""),
                memory_bytes: 256 << 20,
                ids: &ApicIds::new(topology),
            };
            boot::prepare(vm.memory(), &spec).expect("prepare");
            vm.create_vcpus().expect("vcpus");
            drop(vm);
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "kvm_boot: real {image}: VM, ACPI, kernel + 4 MiB initrd loaded, 4 vCPUs, teardown: {}",
            figures(&mut times)
        );
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    use ktstr_vmm::kvm::KvmBackend;
    use ktstr_vmm::{cmdline, VmBackend, VmSpec};

    let Ok(backend) = KvmBackend::new() else {
        println!("kvm_boot: /dev/kvm cannot be opened; nothing to measure");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let initramfs = dir.path().join("initrd");
    std::fs::write(&initramfs, vec![0u8; 1 << 20]).expect("initrd");
    for (name, kernel) in [
        ("PVH ELF", build::pvh_kernel(dir.path())),
        ("bzImage", build::bz_kernel(dir.path())),
    ] {
        let spec = VmSpec {
            kernel,
            initramfs: initramfs.clone(),
            cmdline: cmdline::guest_cmdline(""),
            topology: "1n2l2c1t".parse().expect("topology"),
            memory_mb: 256,
            timeout: Duration::from_secs(30),
            work_dir: dir.path().to_path_buf(),
            snapshot: Default::default(),
        };
        let mut times = Vec::new();
        for _ in 0..20 {
            let start = Instant::now();
            let mut vm = backend.launch(&spec).expect("launch");
            // The byte the tiny kernels wait for on COM2.
            vm.channel_output.write_all(b"Z").expect("channel");
            // The tiny kernels print a few hundred bytes: the pipe holds
            // them until the VM has ended.
            let exit = loop {
                if let Some(exit) = vm.process.try_wait().expect("wait") {
                    break exit;
                }
                std::thread::sleep(Duration::from_micros(200));
            };
            let mut console = Vec::new();
            vm.console.read_to_end(&mut console).expect("console");
            let console = String::from_utf8_lossy(&console);
            assert!(
                exit.success && console.contains("IN Z"),
                "{exit:?}: {console}"
            );
            drop(vm);
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
        println!(
            "kvm_boot: tiny {name}, 4 vCPUs, launch to power-off and teardown: {}",
            figures(&mut times)
        );
    }
    real_kernel_setup(dir.path());
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("kvm_boot: the own VMM runs x86_64 guests only");
}
