//! Kicking vCPU threads out of KVM_RUN: a real-time signal with an empty
//! handler makes the ioctl return EINTR, and the exit loop then sees the
//! stop flag.

use std::sync::Once;
use std::thread::JoinHandle;

use vmm_sys_util::signal::{register_signal_handler, Killable, SIGRTMIN};

/// The signal used, as an offset from SIGRTMIN.
const KICK_OFFSET: i32 = 1;

extern "C" fn on_kick(_: i32, _: *mut nix::libc::siginfo_t, _: *mut std::ffi::c_void) {}

/// Installs the (empty) handler once per process.
pub fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = register_signal_handler(SIGRTMIN() + KICK_OFFSET, on_kick);
    });
}

/// Interrupts `thread` if it is inside KVM_RUN.
pub fn kick<T>(thread: &JoinHandle<T>) {
    let _ = thread.kill(SIGRTMIN() + KICK_OFFSET);
}
