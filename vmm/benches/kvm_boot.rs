//! `cargo bench -p ktstr-vmm --bench kvm_boot`: what the own KVM VMM
//! itself costs per VM, measured with the tiny PVH and bzImage kernels
//! (which print their boot info and power off at once): VM and memory
//! creation, ACPI tables, kernel and initrd loading, vCPU setup, the boot
//! to power-off, and teardown. Prints min / median / max over 20 runs of
//! 1n2l2c1t (4 vCPUs, 256 MiB). Linux boot times on this backend come
//! from `ktstr bench boot --backend kvm` on hosts where it boots Linux.

#![cfg_attr(not(target_arch = "x86_64"), allow(unused))]

#[cfg(target_arch = "x86_64")]
#[path = "../tests/guest/build.rs"]
mod build;

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
        times.sort_by(f64::total_cmp);
        println!(
            "kvm_boot: {name}, 4 vCPUs, launch to power-off and teardown: min {:.2} ms, median {:.2} ms, max {:.2} ms",
            times[0],
            times[times.len() / 2],
            times[times.len() - 1]
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("kvm_boot: the own VMM runs x86_64 guests only");
}
