//! The host terminal in raw mode for an interactive guest console,
//! restored on every exit path (drop runs on return, error and panic).

use std::io::Read;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::termios::{self, SetArg, Termios};

/// The byte that detaches from the guest console (Ctrl-]).
pub const DETACH_KEY: u8 = 0x1d;

/// Raw mode on stdin while alive.
pub struct RawTerminal {
    saved: Termios,
}

impl RawTerminal {
    /// Switches stdin to raw mode; fails if stdin is not a terminal.
    pub fn enter() -> anyhow::Result<Self> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd())
            .map_err(|e| anyhow::anyhow!("stdin is not a terminal ({e}); use --exec CMD"))?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
        Ok(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Stdin that ends, and sets `detached`, at [`DETACH_KEY`].
pub struct DetachableStdin {
    detached: Arc<AtomicBool>,
}

impl DetachableStdin {
    /// Reads stdin; `detached` is set when the user presses Ctrl-].
    pub fn new(detached: Arc<AtomicBool>) -> Self {
        DetachableStdin { detached }
    }
}

impl Read for DetachableStdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = std::io::stdin().read(buf)?;
        if let Some(at) = buf[..n].iter().position(|&b| b == DETACH_KEY) {
            self.detached.store(true, Ordering::SeqCst);
            return Ok(at);
        }
        Ok(n)
    }
}
