//! A QMP client: QEMU's JSON control protocol on a Unix socket (one JSON
//! object per line; events are skipped). ktstr uses it only to save and
//! restore snapshots: pause, hand over a file descriptor, migrate to it,
//! and watch the state.

use std::io::{BufRead, BufReader, IoSlice, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use serde_json::{json, Value};

use crate::VmError;

/// How long one command may take to be answered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest line QEMU is believed (answers and events are small).
const MAX_LINE: usize = 1 << 20;

/// A connected, negotiated QMP session.
pub(super) struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Reads QEMU's greeting from `stream` and enters command mode.
    pub fn negotiate(stream: UnixStream) -> Result<Self, VmError> {
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(qmp_err)?;
        let writer = stream.try_clone().map_err(qmp_err)?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_object()?;
        if greeting.get("QMP").is_none() {
            return Err(VmError::Snapshot(format!(
                "QMP greeting expected: {greeting}"
            )));
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    /// Runs `command` with `arguments`; its `return` value or its error.
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, VmError> {
        let line = json!({"execute": command, "arguments": arguments}).to_string() + "\n";
        self.writer.write_all(line.as_bytes()).map_err(qmp_err)?;
        self.answer(command)
    }

    /// Hands `fd` to QEMU under `name` (`getfd`, the descriptor passed
    /// with `SCM_RIGHTS`).
    pub fn send_fd(&mut self, name: &str, fd: RawFd) -> Result<(), VmError> {
        let line = json!({"execute": "getfd", "arguments": {"fdname": name}}).to_string() + "\n";
        let fds = [fd];
        let cmsg = [ControlMessage::ScmRights(&fds)];
        let iov = [IoSlice::new(line.as_bytes())];
        sendmsg::<()>(
            self.writer.as_raw_fd(),
            &iov,
            &cmsg,
            MsgFlags::empty(),
            None,
        )
        .map_err(|e| VmError::Snapshot(format!("QMP getfd: {e}")))?;
        self.answer("getfd").map(|_| ())
    }

    /// Polls `query-status` until the VM's status is one of `want`
    /// (which it returns), failing when `timeout` passes first.
    pub fn wait_status(&mut self, want: &[&str], timeout: Duration) -> Result<String, VmError> {
        let until = Instant::now() + timeout;
        loop {
            let status = self.execute("query-status", json!({}))?;
            let now = status.get("status").and_then(Value::as_str).unwrap_or("");
            if want.contains(&now) {
                return Ok(now.to_string());
            }
            if Instant::now() > until {
                return Err(VmError::Snapshot(format!(
                    "the VM is {now}, not {}, after {} s",
                    want.join(" or "),
                    timeout.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn answer(&mut self, command: &str) -> Result<Value, VmError> {
        loop {
            let obj = self.read_object()?;
            if let Some(v) = obj.get("return") {
                return Ok(v.clone());
            }
            if let Some(e) = obj.get("error") {
                let desc = e.get("desc").and_then(Value::as_str).unwrap_or("?");
                return Err(VmError::Snapshot(format!("QMP {command}: {desc}")));
            }
            // An event: not an answer.
        }
    }

    fn read_object(&mut self) -> Result<Value, VmError> {
        let mut line = Vec::new();
        let n = (&mut self.reader)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .map_err(qmp_err)?;
        if n == 0 {
            return Err(VmError::Snapshot("QEMU closed its QMP socket".into()));
        }
        serde_json::from_slice(&line)
            .map_err(|e| VmError::Snapshot(format!("QMP sent something that is not JSON: {e}")))
    }
}

fn qmp_err(e: std::io::Error) -> VmError {
    VmError::Snapshot(format!("QMP: {e}"))
}
