//! Ending the guest.

use nix::sys::reboot::{reboot, RebootMode};

/// Syncs and powers the guest off. The VMM sees the VM end.
pub fn power_off() -> ! {
    nix::unistd::sync();
    let _ = reboot(RebootMode::RB_POWER_OFF);
    // Power-off failed: a reboot also ends the VM (the host runs it with
    // reboots turned into exits).
    let _ = reboot(RebootMode::RB_AUTOBOOT);
    loop {
        std::thread::park();
    }
}
