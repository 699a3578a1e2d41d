//! The guest end of the channel: a serial port in raw mode carrying
//! [`ktstr_proto::frame`]s.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;

use ktstr_proto::{encode, GuestMessage};
use nix::sys::termios::{self, SetArg};

/// Where the channel is unless the command line says `ktstr.channel=`.
pub const DEFAULT_CHANNEL: &str = "/dev/ttyS1";

/// The open channel.
pub struct Channel {
    port: File,
    garbage: bool,
}

impl Channel {
    /// Opens `path` and puts it in raw mode, so that bytes pass unchanged.
    pub fn open(path: &str) -> std::io::Result<Self> {
        let port = OpenOptions::new().read(true).write(true).open(path)?;
        let mut t = termios::tcgetattr(port.as_fd())?;
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(port.as_fd(), SetArg::TCSANOW, &t)?;
        Ok(Channel {
            port,
            garbage: false,
        })
    }

    /// From now on, precede each message with a corrupt frame and an
    /// oversized header (fault injection).
    pub fn send_garbage_first(&mut self) {
        self.garbage = true;
    }

    /// Sends one message.
    pub fn send(&mut self, msg: &GuestMessage) -> std::io::Result<()> {
        let payload = msg.to_payload();
        if self.garbage {
            let mut corrupt = encode(&payload);
            let last = corrupt.len() - 1;
            corrupt[last] ^= 0x5a;
            self.port.write_all(&corrupt)?;
            let mut oversized = ktstr_proto::frame::MAGIC.to_vec();
            oversized.extend(u32::MAX.to_le_bytes());
            oversized.extend([0u8; 4]);
            self.port.write_all(&oversized)?;
        }
        self.port.write_all(&encode(&payload))?;
        Ok(())
    }

    /// A second handle on the port, for the thread that reads host
    /// frames while this one writes.
    pub fn reader(&self) -> std::io::Result<File> {
        self.port.try_clone()
    }

    /// Waits until every byte written has left the port.
    pub fn drain(&self) {
        let _ = termios::tcdrain(self.port.as_fd());
    }
}
