//! What the guest sees, as the host's [`GuestReport`].

use std::fs;
use std::path::Path;

use ktstr_proto::GuestReport;

use crate::error::{AgentError, Result};

/// Reads the guest's layout, kernel release, sched_ext state, command line
/// and memory; `warnings` go along as they are.
pub fn gather(warnings: Vec<String>) -> Result<GuestReport> {
    let layout = ktstr_topology::sysfs::read_layout(Path::new("/sys"))
        .map_err(|e| AgentError::Report(e.to_string()))?;
    let kernel_release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .map_err(|e| AgentError::Report(format!("uname: {e}")))?;
    let sched_ext_state = fs::read_to_string("/sys/kernel/sched_ext/state")
        .ok()
        .map(|s| s.trim().to_string());
    Ok(GuestReport {
        kernel_release,
        layout,
        sched_ext_state,
        cmdline: kernel_cmdline(),
        mem_total_kib: mem_total_kib(),
        warnings,
    })
}

/// `/proc/cmdline`, trimmed (empty if unreadable).
pub fn kernel_cmdline() -> String {
    fs::read_to_string("/proc/cmdline")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The value of `key=` on the kernel command line.
pub fn cmdline_value(cmdline: &str, key: &str) -> Option<String> {
    cmdline.split_whitespace().find_map(|w| {
        w.strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .map(str::to_string)
    })
}

fn mem_total_kib() -> u64 {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_values() {
        let c = "console=ttyS0 ktstr.channel=/dev/ttyS1 quiet";
        assert_eq!(
            cmdline_value(c, "ktstr.channel").as_deref(),
            Some("/dev/ttyS1")
        );
        assert_eq!(cmdline_value(c, "quiet"), None);
        assert_eq!(cmdline_value(c, "ktstr"), None);
    }
}
