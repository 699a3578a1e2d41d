//! Faults injected on purpose (see [`ktstr_proto::Fault`]).

use std::fs;

/// Panics the guest kernel through sysrq `c`.
pub fn panic_kernel() {
    let _ = fs::write("/proc/sys/kernel/sysrq", "1");
    let _ = fs::write("/proc/sysrq-trigger", "c");
}

/// Never returns and never reports: the host's timeout must catch it.
pub fn hang() -> ! {
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}
