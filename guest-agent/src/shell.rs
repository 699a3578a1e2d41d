//! The interactive shell on the guest console.

use std::fs::{self, OpenOptions};
use std::os::unix::process::CommandExt;
use std::process::Command;

use crate::error::{AgentError, Result};
use crate::exec::GUEST_PATH;

/// The console the host's terminal is attached to.
const CONSOLE_TTY: &str = "/dev/ttyS0";

/// Runs busybox `sh` on the console as a session leader with the console as
/// its controlling terminal (so job control and Ctrl-C work); returns its
/// exit code. Kernel messages are kept off the console meanwhile.
pub fn interactive() -> Result<i32> {
    let _ = fs::write("/proc/sys/kernel/printk", "1");
    let tty = OpenOptions::new()
        .read(true)
        .write(true)
        .open(CONSOLE_TTY)
        .map_err(|e| AgentError::io("open", CONSOLE_TTY, e))?;
    let io = |t: &fs::File| {
        t.try_clone()
            .map_err(|e| AgentError::io("dup", CONSOLE_TTY, e))
    };
    let mut cmd = Command::new("/bin/sh");
    cmd.env_clear()
        .env("PATH", GUEST_PATH)
        .env("HOME", "/tmp")
        .env("TERM", "linux")
        .env("PS1", "ktstr:\\w# ")
        .stdin(io(&tty)?)
        .stdout(io(&tty)?)
        .stderr(io(&tty)?);
    // SAFETY: between fork and exec the closure only calls setsid and
    // ioctl, both async-signal-safe, and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if nix::libc::ioctl(0, nix::libc::TIOCSCTTY, 1) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = cmd.status().map_err(|e| AgentError::start("/bin/sh", e))?;
    Ok(crate::exec::exit_code(status))
}
