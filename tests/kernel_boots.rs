//! The built kernel boots: QEMU (TCG) runs the cache entry's bzImage with a
//! busybox initramfs whose /init reports what the guest sees, then powers
//! off. Proves the pipeline's output is a working sched_ext kernel, before
//! ktstr's own VM layer exists to do more.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{built_kernel, in_ci};

const BUSYBOX: &str = "/bin/busybox";

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo "KTSTR-BOOT nproc=$(/bin/busybox nproc) scx=$(/bin/busybox cat /sys/kernel/sched_ext/state) btf=$(/bin/busybox test -s /sys/kernel/btf/vmlinux && echo yes) release=$(/bin/busybox uname -r)"
/bin/busybox poweroff -f
"#;

/// A gzip'd newc cpio holding busybox and the init script above.
fn busybox_initramfs(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
    std::fs::write(root.join("init"), INIT).unwrap();
    let st = Command::new("chmod")
        .arg("755")
        .arg(root.join("init"))
        .status()
        .unwrap();
    assert!(st.success());
    let out = dir.join("initramfs.cpio.gz");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && find . | cpio -o -H newc --quiet | gzip -1 > {}",
            root.display(),
            out.display()
        ))
        .status()
        .unwrap();
    assert!(st.success(), "cpio failed");
    out
}

/// Boots `bzimage` with `initrd` under QEMU TCG (4 vCPUs, 2 per core);
/// returns QEMU's status (None after 120 s) and the console.
fn boot(bzimage: &str, initrd: &Path) -> (Option<std::process::ExitStatus>, String) {
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35",
            "-accel",
            "tcg,thread=multi",
            "-cpu",
            "max",
            "-m",
            "512",
        ])
        .args(["-smp", "4,sockets=1,cores=2,threads=2"])
        .args([
            "-nographic",
            "-nodefaults",
            "-no-user-config",
            "-serial",
            "stdio",
            "-no-reboot",
        ])
        .args(["-kernel", bzimage, "-initrd", initrd.to_str().unwrap()])
        .args(["-append", "console=ttyS0 panic=-1 rdinit=/init quiet"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64 runs (apt-get install qemu-system-x86)");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut console = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut console)
        .unwrap();
    (status, console)
}

#[test]
fn built_kernel_boots_to_init_with_sched_ext() {
    let Some(entry) = built_kernel() else { return };
    if !Path::new(BUSYBOX).is_file() {
        assert!(
            !in_ci(),
            "CI=true and {BUSYBOX} is missing (apt-get install busybox-static)"
        );
        eprintln!("SKIP: {BUSYBOX} missing");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let initrd = busybox_initramfs(tmp.path());
    let (status, console) = boot(entry["bzimage"].as_str().unwrap(), &initrd);
    let tail: String = console
        .lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        status.is_some(),
        "guest did not power off within 120 s; console tail:\n{tail}"
    );
    let line = console
        .lines()
        .find(|l| l.contains("KTSTR-BOOT"))
        .unwrap_or_else(|| panic!("/init never reported; console tail:\n{tail}"));
    let report = &line[line.find("KTSTR-BOOT").expect("marker")..];
    println!("guest reported: {}", report.trim());
    let version = entry["version"].as_str().unwrap();
    assert!(line.contains("nproc=4"), "{line}");
    assert!(
        line.contains("scx=disabled"),
        "sched_ext missing or wrong state: {line}"
    );
    assert!(line.contains("btf=yes"), "{line}");
    assert!(line.contains(&format!("release={version}")), "{line}");
}
