//! The QEMU child process: spawned so that it dies with us, stderr kept in
//! a bounded buffer, killed and reaped on drop.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;

use crate::backend::{BackendExit, VmProcess};
use crate::VmError;

/// The most stderr bytes kept.
const STDERR_LIMIT: usize = 64 * 1024;

/// A running QEMU.
pub(super) struct QemuProcess {
    child: Child,
    exit: Option<BackendExit>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_reader: Option<thread::JoinHandle<()>>,
}

impl QemuProcess {
    /// Starts `binary args...` with piped stdio (stdin/stdout are the guest
    /// console). The child gets SIGKILL if this process dies, and a
    /// process group of its own: Ctrl-C at the terminal reaches ktstr
    /// (which decides what it stops: a REPL keeps its VM), never QEMU.
    /// `keep_fds` (guest RAM's memfds) stay open across exec.
    pub fn spawn(binary: &Path, args: &[String], keep_fds: &[i32]) -> Result<Self, VmError> {
        let keep = keep_fds.to_vec();
        let mut cmd = Command::new(binary);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        // SAFETY: the closure runs between fork and exec and only calls
        // prctl and fcntl, which are async-signal-safe; it reads `keep`,
        // which was allocated before the fork, and allocates nothing.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
                if nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                for &fd in &keep {
                    if nix::libc::fcntl(fd, nix::libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| VmError::Launch(format!("{}: {e}", binary.display())))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let stderr_reader = child.stderr.take().map(|mut err| {
            let buf = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut chunk = [0u8; 4096];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
                    let room = STDERR_LIMIT.saturating_sub(b.len());
                    b.extend_from_slice(&chunk[..n.min(room)]);
                }
            })
        });
        Ok(QemuProcess {
            child,
            exit: None,
            stderr,
            stderr_reader,
        })
    }

    pub fn take_stdout(&mut self) -> Box<dyn Read + Send> {
        Box::new(self.child.stdout.take().expect("stdout piped once"))
    }

    pub fn take_stdin(&mut self) -> Box<dyn std::io::Write + Send> {
        Box::new(self.child.stdin.take().expect("stdin piped once"))
    }

    /// The exit status text if QEMU has exited.
    pub fn exit_status(&mut self) -> Option<String> {
        self.poll().map(|e| e.status)
    }

    fn poll(&mut self) -> Option<BackendExit> {
        if self.exit.is_none() {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(BackendExit {
                    success: status.success(),
                    status: status.to_string(),
                });
                self.join_stderr();
            }
        }
        self.exit.clone()
    }

    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    pub fn kill_now(&mut self) {
        if self.poll().is_none() {
            let _ = self.child.kill();
            if let Ok(status) = self.child.wait() {
                self.exit = Some(BackendExit {
                    success: false,
                    status: status.to_string(),
                });
            }
            self.join_stderr();
        }
    }

    /// Waits for the stderr reader, which ends once QEMU is gone.
    fn join_stderr(&mut self) {
        if let Some(h) = self.stderr_reader.take() {
            let _ = h.join();
        }
    }
}

impl VmProcess for QemuProcess {
    fn try_wait(&mut self) -> Result<Option<BackendExit>, VmError> {
        Ok(self.poll())
    }

    fn kill(&mut self) {
        self.kill_now();
    }

    fn diagnostics(&self) -> String {
        self.stderr_text()
    }
}

impl Drop for QemuProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}
