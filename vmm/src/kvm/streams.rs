//! The host ends of the own VMM's UARTs: pipes whose read ends the session
//! reads (console, channel) and whose write ends it writes (console input,
//! channel to the guest). A feeder thread per input pipe moves bytes into
//! its UART's receive FIFO as the guest drains it.
//!
//! The feeders hold the port bus only weakly: once the vCPU threads are
//! gone, the bus (and with it the UARTs' output pipes) is dropped, so the
//! session's readers see end-of-file.

use std::io::{PipeReader, PipeWriter, Read};
use std::sync::Weak;
use std::time::Duration;

use super::serial::PortBus;
use crate::error::VmError;

/// Which UART a feeder fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// COM1, the console.
    Console,
    /// COM2, the channel.
    Channel,
}

/// A new pipe.
pub fn pipe() -> Result<(PipeReader, PipeWriter), VmError> {
    std::io::pipe().map_err(|e| VmError::Launch(format!("creating a pipe: {e}")))
}

/// Moves bytes from `source` into `port`'s receive FIFO until the source
/// closes or the bus is gone. The FIFO is small: what does not fit waits
/// (polling every millisecond) until the guest has read some.
pub fn spawn_feeder(mut source: PipeReader, bus: Weak<PortBus>, port: Port) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = source.read(&mut buf) {
            if n == 0 {
                return;
            }
            let mut rest = &buf[..n];
            while !rest.is_empty() {
                let Some(bus) = bus.upgrade() else { return };
                let taken = match port {
                    Port::Console => bus.console_input(rest),
                    Port::Channel => bus.channel_input(rest),
                };
                drop(bus);
                rest = &rest[taken..];
                if taken == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    });
}
