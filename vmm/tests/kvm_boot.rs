//! The own VMM's boot paths on this host's KVM, through [`KvmBackend`]
//! itself: tiny kernels (a PVH ELF and a bzImage, assembled with
//! binutils) are loaded by linux-loader, entered with the registers each
//! protocol needs, and print what they were given: the boot CPU's mode,
//! the start info or zero page, the memory map, the initrd, the RSDP,
//! the command line. They read a byte the host sent over COM2, answer on
//! COM2 and power off through the ACPI sleep port. The host checks every
//! printed field.
#![cfg(target_arch = "x86_64")]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use ktstr_vmm::kvm::boot::kernel::initrd_address;
use ktstr_vmm::kvm::layout::e820_map;
use ktstr_vmm::kvm::KvmBackend;
use ktstr_vmm::{cmdline, BackendExit, LaunchedVm, VmBackend, VmSpec};

#[path = "guest/build.rs"]
mod build;

use build::{bz_kernel, pvh_kernel};

const MEMORY_MB: u32 = 256;
const INITRD: &[u8] = b"INITRD-BYTES-of-the-test";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn kvm_here() -> bool {
    if Path::new("/dev/kvm").exists() {
        return true;
    }
    assert!(!in_ci(), "CI=true and /dev/kvm is missing");
    eprintln!("skipped: no /dev/kvm");
    false
}

fn spec(dir: &Path, kernel: PathBuf, cmdline: String) -> VmSpec {
    let initramfs = dir.join("initrd");
    std::fs::write(&initramfs, INITRD).unwrap();
    VmSpec {
        kernel,
        initramfs,
        cmdline,
        topology: "1n2l2c1t".parse().unwrap(),
        memory_mb: MEMORY_MB,
        timeout: Duration::from_secs(30),
        work_dir: dir.to_path_buf(),
        snapshot: Default::default(),
    }
}

/// The tiny PVH kernel with `cmdline`, in a fresh directory; None (skip)
/// without /dev/kvm.
fn pvh_spec(cmdline: &str) -> Option<(tempfile::TempDir, VmSpec)> {
    if !kvm_here() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(dir.path(), pvh_kernel(dir.path()), cmdline.into());
    Some((dir, spec))
}

fn read_all(mut r: Box<dyn Read + Send>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = Vec::new();
        let _ = r.read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    })
}

/// Boots `spec`, sends `Z` on the channel, waits for the guest's end.
fn boot(spec: &VmSpec) -> (BackendExit, String, String) {
    let backend = KvmBackend::new().unwrap();
    backend.check(spec).unwrap();
    let LaunchedVm {
        mut process,
        console,
        channel,
        mut channel_output,
        ..
    } = backend.launch(spec).unwrap();
    channel_output.write_all(b"Z").unwrap();
    let (console, channel) = (read_all(console), read_all(channel));
    let until = Instant::now() + spec.timeout;
    let exit = loop {
        if let Some(exit) = process.try_wait().unwrap() {
            break exit;
        }
        if Instant::now() > until {
            process.kill();
            panic!("the guest did not power off: {}", process.diagnostics());
        }
        thread::sleep(Duration::from_millis(5));
    };
    drop(process);
    (exit, console.join().unwrap(), channel.join().unwrap())
}

/// The first line starting with `tag`, without it.
fn line<'a>(console: &'a str, tag: &str) -> &'a str {
    console
        .lines()
        .find_map(|l| l.strip_prefix(tag))
        .unwrap_or_else(|| panic!("no {tag:?} line in:\n{console}"))
}

fn field<'a>(first: &'a str, name: &str) -> &'a str {
    let at = first.find(&format!("{name}=")).unwrap() + name.len() + 1;
    let rest = &first[at..];
    if name == "cmdline" {
        rest
    } else {
        rest.split(' ').next().unwrap()
    }
}

/// What both tiny kernels print the same way.
fn check_common(console: &str, channel: &str, spec: &VmSpec) {
    assert_eq!(line(console, "RSDP "), "RSD PTR ");
    let want: Vec<String> = e820_map(u64::from(MEMORY_MB) << 20)
        .iter()
        .map(|e| format!("{:08x} {:08x} {:08x}", e.start, e.len, e.kind))
        .collect();
    let got: Vec<&str> = console
        .lines()
        .filter_map(|l| l.strip_prefix("MAP "))
        .collect();
    assert_eq!(got, want, "{console}");
    let initrd = initrd_address(
        INITRD.len() as u64,
        u64::from(MEMORY_MB) << 20,
        0x10_0000,
        0x7fff_ffff,
    )
    .unwrap();
    assert_eq!(
        line(console, "MOD "),
        format!("{initrd:08x} {:08x} INITRD-B", INITRD.len())
    );
    assert_eq!(
        line(console, "IN "),
        "Z",
        "the channel byte reached the guest"
    );
    assert_eq!(channel, "CHANNEL\n");
    assert!(spec.cmdline.len() > 40);
}

#[test]
fn pvh_kernel_gets_its_start_info() {
    if !kvm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        pvh_kernel(dir.path()),
        cmdline::guest_cmdline(""),
    );
    let (exit, console, channel) = boot(&spec);
    assert_eq!(
        exit,
        BackendExit {
            success: true,
            status: "powered off".into()
        },
        "{console}"
    );
    let first = line(&console, "PVH ");
    assert_eq!(field(first, "magic"), "336ec578");
    assert_eq!(
        field(first, "cr0"),
        "00000011",
        "protected mode, paging off"
    );
    assert_eq!(field(first, "cs"), "00000008");
    assert_eq!(field(first, "cmdline"), spec.cmdline);
    check_common(&console, &channel, &spec);
}

#[test]
fn bzimage_gets_its_zero_page_in_long_mode() {
    if !kvm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = spec(
        dir.path(),
        bz_kernel(dir.path()),
        cmdline::guest_cmdline("extra=1"),
    );
    let (exit, console, channel) = boot(&spec);
    assert!(exit.success, "{exit:?}\n{console}");
    let first = line(&console, "BZ ");
    assert_eq!(field(first, "loader"), "000000ff");
    assert_eq!(field(first, "cr0"), "80000011", "paging and protection on");
    let cr4 = u32::from_str_radix(field(first, "cr4"), 16).unwrap();
    assert_ne!(cr4 & 0x20, 0, "PAE");
    let efer = u32::from_str_radix(field(first, "efer"), 16).unwrap();
    assert_eq!(efer & 0x500, 0x500, "long mode enabled and active");
    assert_eq!(field(first, "cs"), "00000008");
    assert_eq!(field(first, "cmdline"), spec.cmdline);
    check_common(&console, &channel, &spec);
}

#[test]
fn kill_stops_a_spinning_guest_and_closes_its_streams() {
    let Some((_dir, spec)) = pvh_spec("wait") else {
        return;
    };
    let backend = KvmBackend::new().unwrap();
    let mut vm = backend.launch(&spec).unwrap();
    let mut console = String::new();
    let mut buf = [0u8; 256];
    while !console.contains("cmdline=wait") {
        let n = vm.console.read(&mut buf).unwrap();
        assert!(n > 0, "console closed early: {console}");
        console.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    thread::sleep(Duration::from_millis(200));
    assert_eq!(vm.process.try_wait().unwrap(), None, "still spinning");
    let start = Instant::now();
    vm.process.kill();
    assert!(start.elapsed() < Duration::from_secs(5));
    let exit = vm.process.try_wait().unwrap().unwrap();
    assert_eq!(exit.status, "stopped by the host");
    assert!(!exit.success);
    drop(vm.process);
    let mut rest = Vec::new();
    vm.console.read_to_end(&mut rest).unwrap();
    let mut ch = Vec::new();
    vm.channel.read_to_end(&mut ch).unwrap();
    assert!(ch.is_empty());
}

#[test]
fn non_kernels_are_refused_before_any_vcpu_runs() {
    if !kvm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, vec![0x90u8; 4096]).unwrap();
    let spec = spec(dir.path(), junk, "x".into());
    let err = KvmBackend::new()
        .unwrap()
        .launch(&spec)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("cannot load kernel") && err.contains("junk"),
        "{err}"
    );
}

#[test]
fn the_session_times_out_a_hung_guest() {
    let Some((dir, mut spec)) = pvh_spec("wait") else {
        return;
    };
    spec.timeout = Duration::from_secs(2);
    let log = dir.path().join("console.log");
    let io = ktstr_vmm::session::SessionIo::logged(log.clone());
    let start = Instant::now();
    let outcome =
        ktstr_vmm::session::run(&KvmBackend::new().unwrap(), &spec, io, &mut |_| {}).unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert!(
        matches!(
            outcome.end,
            ktstr_vmm::VmEnd::Timeout {
                agent_ready: false,
                ..
            }
        ),
        "{:?}",
        outcome.end
    );
    assert_eq!(outcome.backend.name(), "kvm");
    let console = std::fs::read_to_string(log).unwrap();
    assert!(console.contains("cmdline=wait"), "{console}");
}

#[test]
fn check_refuses_what_this_kvm_cannot_run() {
    if !kvm_here() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut spec = spec(dir.path(), dir.path().join("none"), "x".into());
    let backend = KvmBackend::new().unwrap();
    spec.memory_mb = 16;
    let err = backend.check(&spec).unwrap_err().to_string();
    assert!(
        err.contains("16 MiB") && err.contains("kvm backend"),
        "{err}"
    );
    spec.memory_mb = 256;
    // 4096 CPUs with SMT holes need APIC IDs beyond any KVM's limit.
    spec.topology = "1n16l255c1t".parse().unwrap();
    let err = backend.check(&spec).unwrap_err().to_string();
    assert!(err.contains("1n16l255c1t"), "{err}");
}

/// Whether a thread of this process sleeps in a pipe write (its kernel
/// wait channel, `/proc/self/task/*/wchan`).
fn a_thread_blocks_in_a_pipe_write() -> bool {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks.flatten().any(|t| {
                std::fs::read_to_string(t.path().join("wchan"))
                    .is_ok_and(|w| w.contains("pipe_write"))
            })
        })
        .unwrap_or(false)
}

#[test]
fn a_guest_flooding_an_undrained_console_cannot_hang_teardown() {
    let Some((_dir, spec)) = pvh_spec("flood") else {
        return;
    };
    let mut vm = KvmBackend::new().unwrap().launch(&spec).unwrap();
    // Nobody reads the console: the pipe fills and the vCPU blocks in it
    // (waited for, not guessed: a loaded host fills it later).
    let waiting = Instant::now();
    while !a_thread_blocks_in_a_pipe_write() && waiting.elapsed() < Duration::from_secs(60) {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        a_thread_blocks_in_a_pipe_write(),
        "the flooding vCPU never blocked on the console pipe"
    );
    let start = Instant::now();
    vm.process.kill();
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    let exit = vm.process.try_wait().unwrap().unwrap();
    assert!(!exit.success);
    let diagnostics = vm.process.diagnostics();
    assert!(diagnostics.contains("did not stop"), "{diagnostics}");
    // Once the console is gone the blocked write fails and the thread ends.
    drop(vm.console);
}
