//! Snapshots of ktstr's own KVM VMM on this host: a freestanding guest
//! counting on every vCPU is paused mid-run, saved (vCPUs, in-kernel
//! irqchip, PIT, clock, UARTs, RAM), and restored into a new VM, where
//! every vCPU finishes its count with the right totals.
#![cfg(target_arch = "x86_64")]

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Duration;

use ktstr_topology::Topology;
use ktstr_vmm::kvm::freestanding;
use ktstr_vmm::kvm::vcpu::VcpuEnd;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

#[path = "guest/real_mode.rs"]
mod real_mode;

/// `COUNT` in `tests/guest/counter.S`.
const COUNT: u32 = 0x0004_0000;
/// Where vCPU `i` keeps its counter.
const COUNTERS: u64 = 0x800;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn counters_in(memory: &GuestMemoryMmap, n: u32) -> Vec<u32> {
    (0..n)
        .map(|i| {
            memory
                .read_obj::<u32>(GuestAddress(COUNTERS + 4 * u64::from(i)))
                .unwrap()
        })
        .collect()
}

fn counters_saved(dir: &Path, n: u32) -> Vec<u32> {
    let f = std::fs::File::open(dir.join("ram0")).unwrap();
    (0..n)
        .map(|i| {
            let mut b = [0u8; 4];
            f.read_exact_at(&mut b, COUNTERS + 4 * u64::from(i))
                .unwrap();
            u32::from_le_bytes(b)
        })
        .collect()
}

fn save_and_restore(topology: &str) {
    if !Path::new("/dev/kvm").exists() {
        assert!(!in_ci(), "CI=true and /dev/kvm is missing");
        return;
    }
    let t: Topology = topology.parse().unwrap();
    let n = t.cpus();
    let program = real_mode::assemble("counter.S");
    let dir = tempfile::tempdir().unwrap();
    // Pause once every vCPU is counting.
    let t0 = std::time::Instant::now();
    let pause = |m: &GuestMemoryMmap| counters_in(m, n).iter().all(|&c| c > 0);
    let before =
        freestanding::run_and_save(t, &program, &pause, dir.path(), Duration::from_secs(60))
            .unwrap();
    assert!(
        before.ends.iter().all(|e| *e == VcpuEnd::Stopped),
        "{:?}",
        before.ends
    );
    assert_eq!(before.console, "", "a vCPU finished before the pause");
    let saved = counters_saved(dir.path(), n);
    eprintln!("saved counters {saved:x?} after {:?}", t0.elapsed());
    assert!(
        saved.iter().all(|&c| c > 0 && c < COUNT),
        "the snapshot is not mid-run: {saved:x?}"
    );
    let after = freestanding::restore_and_run(dir.path(), Duration::from_secs(60)).unwrap();
    assert!(
        after.ends.iter().all(|e| *e == VcpuEnd::Done),
        "{:?}\n{}",
        after.ends,
        after.console
    );
    let sum = ((u64::from(COUNT) * (u64::from(COUNT) + 1) / 2) & 0xffff_ffff) as u32;
    let mut cpus: Vec<u32> = after
        .console
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 3, "{l:?}");
            let hex =
                |p: &str, s: &str| u32::from_str_radix(s.strip_prefix(p).unwrap(), 16).unwrap();
            assert_eq!(hex("n=", f[1]), COUNT, "{l}");
            assert_eq!(hex("s=", f[2]), sum, "{l}");
            hex("cpu=", f[0])
        })
        .collect();
    cpus.sort_unstable();
    assert_eq!(cpus, (0..n).collect::<Vec<_>>(), "{}", after.console);
}

#[test]
fn one_vcpu_saved_mid_run_finishes_after_a_restore() {
    save_and_restore("1n1l1c1t");
}

#[test]
fn four_vcpus_saved_mid_run_finish_after_a_restore() {
    save_and_restore("1n2l2c1t");
}
