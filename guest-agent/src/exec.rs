//! Running one command for the host and streaming its output back.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use ktstr_proto::{GuestMessage, OutputStream};

use crate::channel::Channel;
use crate::error::{AgentError, Result};

/// `PATH` for everything the agent starts.
pub const GUEST_PATH: &str = "/bin:/sbin:/usr/bin:/usr/sbin";

/// A finished process's exit code: its own, or 128 + the signal that
/// killed it.
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Starts `command` under `/bin/sh -c` with the guest's PATH, no stdin,
/// and stdout and stderr piped.
fn shell(command: &str) -> Result<std::process::Child> {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("PATH", GUEST_PATH)
        .env("HOME", "/tmp")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| AgentError::start("/bin/sh", e))
}

/// Runs `command` under `/bin/sh -c`, sending its stdout and stderr as
/// [`GuestMessage::Output`] chunks; returns its exit code (128 + signal
/// when a signal killed it).
pub fn run_command(command: &str, channel: &Arc<Mutex<Channel>>) -> Result<i32> {
    let mut child = shell(command)?;
    let pumps = [
        pump(child.stdout.take(), OutputStream::Stdout, channel),
        pump(child.stderr.take(), OutputStream::Stderr, channel),
    ];
    let status = child
        .wait()
        .map_err(|e| AgentError::start("/bin/sh (wait)", e))?;
    for p in pumps {
        let _ = p.join();
    }
    Ok(exit_code(status))
}

fn pump<R: Read + Send + 'static>(
    from: Option<R>,
    stream: OutputStream,
    channel: &Arc<Mutex<Channel>>,
) -> thread::JoinHandle<()> {
    let channel = Arc::clone(channel);
    thread::spawn(move || {
        let Some(mut from) = from else { return };
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let msg = GuestMessage::Output {
                        stream,
                        data: String::from_utf8_lossy(&buf[..n]).into_owned(),
                    };
                    let mut ch = channel.lock().unwrap_or_else(|p| p.into_inner());
                    if ch.send(&msg).is_err() {
                        return;
                    }
                }
            }
        }
    })
}

/// What a captured command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// Exit code (128 + signal when a signal killed it).
    pub code: i32,
    /// Standard output, at most `limit` bytes of it.
    pub stdout: String,
    /// Standard error, the same bound.
    pub stderr: String,
}

/// Runs `command` under `/bin/sh -c` and returns its output, each stream
/// cut to `limit` bytes (the rest is read and dropped); killed after
/// `timeout`.
pub fn capture(command: &str, timeout: std::time::Duration, limit: usize) -> Result<Captured> {
    let mut child = shell(command)?;
    let out = collect(child.stdout.take(), limit);
    let err = collect(child.stderr.take(), limit);
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                break child
                    .wait()
                    .map_err(|e| AgentError::start("/bin/sh (wait)", e))?;
            }
            Ok(None) => thread::sleep(std::time::Duration::from_millis(20)),
            Err(e) => return Err(AgentError::start("/bin/sh (wait)", e)),
        }
    };
    Ok(Captured {
        code: exit_code(status),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Reads `from` to its end on a thread, keeping the first `limit` bytes.
fn collect<R: Read + Send + 'static>(from: Option<R>, limit: usize) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let Some(mut from) = from else {
            return String::new();
        };
        let mut kept = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = limit.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}
