//! The legacy port-I/O devices of ktstr's VMM: two 8250 UARTs
//! (vm-superio) for the console (COM1) and the channel (COM2), the i8042
//! reset line, the FADT's sleep control port for power-off, and a
//! debug-exit port freestanding guests use to end a vCPU.
//!
//! Every access is bounds-checked: unknown ports read as all-ones and
//! ignore writes; data of any length is accepted without panicking.

use std::io::Write;
use std::sync::{Arc, Mutex};

use vm_superio::serial::{NoEvents, SerialState};
use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use super::layout::{COM1, COM2, DEBUG_EXIT, I8042_COMMAND};
use super::layout::{S5_SLEEP_TYPE, SLEEP_CONTROL_PORT};
use super::snapshot::UartState;
use crate::error::VmError;

/// A UART output that keeps what the guest wrote (up to 1 MiB) for the
/// host to read.
#[derive(Clone, Default)]
pub(crate) struct Captured(pub(crate) Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let mut v = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if v.len() < 1 << 20 {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Raises a UART's interrupt through an irqfd (or nowhere, for guests
/// without an interrupt controller).
pub struct IrqTrigger(pub Option<EventFd>);

impl Trigger for IrqTrigger {
    type E = std::io::Error;
    fn trigger(&self) -> std::io::Result<()> {
        match &self.0 {
            Some(fd) => fd.write(1),
            None => Ok(()),
        }
    }
}

/// What a port write asks of the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortAction {
    /// Nothing beyond the device's own effect.
    None,
    /// The guest reset the machine (i8042).
    Reset,
    /// The guest powered off (ACPI S5).
    PowerOff,
    /// The vCPU asked to end (debug-exit port).
    VcpuDone,
}

type Uart = Serial<IrqTrigger, NoEvents, Box<dyn Write + Send>>;

/// The devices on the port bus, shared by every vCPU thread.
pub struct PortBus {
    com1: Mutex<Uart>,
    com2: Mutex<Uart>,
}

impl PortBus {
    /// A bus whose COM1 writes to `console` and COM2 to `channel`.
    pub fn new(
        console: Box<dyn Write + Send>,
        channel: Box<dyn Write + Send>,
        irqs: (IrqTrigger, IrqTrigger),
    ) -> Self {
        PortBus {
            com1: Mutex::new(Serial::new(irqs.0, console)),
            com2: Mutex::new(Serial::new(irqs.1, channel)),
        }
    }

    /// A bus like [`PortBus::new`] whose UARTs resume `states` (COM1,
    /// COM2), as saved by [`PortBus::uart_states`].
    pub fn with_states(
        console: Box<dyn Write + Send>,
        channel: Box<dyn Write + Send>,
        irqs: (IrqTrigger, IrqTrigger),
        states: &[UartState; 2],
    ) -> Result<Self, VmError> {
        let uart = |s: &UartState, irq, out| {
            Serial::from_state(&SerialState::from(s), irq, NoEvents, out)
                .map_err(|e| VmError::Snapshot(format!("restoring a UART: {e:?}")))
        };
        Ok(PortBus {
            com1: Mutex::new(uart(&states[0], irqs.0, console)?),
            com2: Mutex::new(uart(&states[1], irqs.1, channel)?),
        })
    }

    /// Both UARTs' registers and receive FIFOs.
    pub fn uart_states(&self) -> [UartState; 2] {
        let state =
            |u: &Mutex<Uart>| UartState::from(&u.lock().unwrap_or_else(|p| p.into_inner()).state());
        [state(&self.com1), state(&self.com2)]
    }

    fn uart(&self, port: u16) -> Option<(&Mutex<Uart>, u8)> {
        match port {
            COM1..=0x3ff => Some((&self.com1, (port - COM1) as u8)),
            COM2..=0x2ff => Some((&self.com2, (port - COM2) as u8)),
            _ => None,
        }
    }

    /// A guest `out` of `data` to `port`.
    pub fn write(&self, port: u16, data: &[u8]) -> PortAction {
        let Some(&first) = data.first() else {
            return PortAction::None;
        };
        if let Some((uart, offset)) = self.uart(port) {
            let mut u = uart.lock().unwrap_or_else(|p| p.into_inner());
            let _ = u.write(offset, first);
            return PortAction::None;
        }
        match port {
            I8042_COMMAND if first == 0xfe => PortAction::Reset,
            SLEEP_CONTROL_PORT if first & (1 << 5) != 0 && (first >> 2) & 7 == S5_SLEEP_TYPE => {
                PortAction::PowerOff
            }
            DEBUG_EXIT => PortAction::VcpuDone,
            _ => PortAction::None,
        }
    }

    /// A guest `in` from `port` into `data`.
    pub fn read(&self, port: u16, data: &mut [u8]) {
        // The i8042 status reads "nothing pending" (a reset needs no
        // wait); the sleep status register reads "not waking".
        let idle = matches!(port, I8042_COMMAND | SLEEP_CONTROL_PORT);
        data.fill(if idle { 0 } else { 0xff });
        if let Some((uart, offset)) = self.uart(port) {
            let mut u = uart.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(b) = data.first_mut() {
                *b = u.read(offset);
            }
        }
    }

    /// Queues bytes for the guest to read from COM1 (typed console
    /// input); returns how many fit in the receive FIFO.
    pub fn console_input(&self, bytes: &[u8]) -> usize {
        enqueue(&self.com1, bytes)
    }

    /// Queues bytes for the guest to read from COM2 (host → guest
    /// channel); returns how many fit in the receive FIFO.
    pub fn channel_input(&self, bytes: &[u8]) -> usize {
        enqueue(&self.com2, bytes)
    }
}

fn enqueue(uart: &Mutex<Uart>, bytes: &[u8]) -> usize {
    let mut u = uart.lock().unwrap_or_else(|p| p.into_inner());
    u.enqueue_raw_bytes(bytes).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uarts_ports_and_odd_accesses() {
        let (con, ch) = (Captured::default(), Captured::default());
        let bus = PortBus::new(
            Box::new(con.clone()),
            Box::new(ch.clone()),
            (IrqTrigger(None), IrqTrigger(None)),
        );
        for b in b"hi" {
            assert_eq!(bus.write(COM1, &[*b]), PortAction::None);
        }
        bus.write(COM2, b"x");
        assert_eq!(&*con.0.lock().unwrap(), b"hi");
        assert_eq!(&*ch.0.lock().unwrap(), b"x");
        assert_eq!(bus.write(I8042_COMMAND, &[0xfe]), PortAction::Reset);
        let mut buf = [0u8; 4];
        assert_eq!(bus.write(SLEEP_CONTROL_PORT, &[0x34]), PortAction::PowerOff);
        // Clearing WAK_STS, or sleeping to S3, is not power-off.
        assert_eq!(bus.write(SLEEP_CONTROL_PORT, &[0x80]), PortAction::None);
        assert_eq!(bus.write(SLEEP_CONTROL_PORT, &[0x2c]), PortAction::None);
        bus.read(I8042_COMMAND, &mut buf[..1]);
        assert_eq!(buf[0], 0);
        assert_eq!(bus.write(DEBUG_EXIT, &[0]), PortAction::VcpuDone);
        assert_eq!(bus.write(0x1234, &[]), PortAction::None);
        bus.read(0x9999, &mut buf);
        assert_eq!(buf, [0xff; 4]);
        bus.read(COM1 + 5, &mut buf); // line status: transmitter empty
        assert_ne!(buf[0] & 0x20, 0);
        bus.read(COM1, &mut []);
    }

    #[test]
    fn every_port_and_size_is_handled_without_panicking() {
        let bus = PortBus::new(
            Box::new(std::io::sink()),
            Box::new(std::io::sink()),
            (IrqTrigger(None), IrqTrigger(None)),
        );
        let mut buf = [0u8; 8];
        for port in 0..=u16::MAX {
            for len in [0, 1, 2, 4, 8] {
                bus.read(port, &mut buf[..len]);
                let _ = bus.write(port, &buf[..len]);
            }
        }
    }
}
