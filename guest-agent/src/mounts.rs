//! The filesystems every guest gets.

use std::fs;

use nix::mount::{mount, MsFlags};

/// (source, target, fstype) in mount order.
const MOUNTS: [(&str, &str, &str); 6] = [
    ("proc", "/proc", "proc"),
    ("sysfs", "/sys", "sysfs"),
    ("devtmpfs", "/dev", "devtmpfs"),
    ("tmpfs", "/tmp", "tmpfs"),
    ("cgroup2", "/sys/fs/cgroup", "cgroup2"),
    ("debugfs", "/sys/kernel/debug", "debugfs"),
];

/// Mounts proc, sysfs, devtmpfs, tmpfs, cgroup2 and debugfs. Returns one
/// line per mount that failed; the rest are still attempted.
pub fn mount_all() -> Vec<String> {
    let mut failed = Vec::new();
    for (source, target, fstype) in MOUNTS {
        if let Err(e) = fs::create_dir_all(target) {
            failed.push(format!("mkdir {target}: {e}"));
            continue;
        }
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        let flags = if fstype == "devtmpfs" {
            MsFlags::MS_NOSUID
        } else {
            flags
        };
        if let Err(e) = mount(Some(source), target, Some(fstype), flags, None::<&str>) {
            failed.push(format!("mount {fstype} on {target}: {e}"));
        }
    }
    failed
}
