//! The QEMU backend: `qemu-system-x86_64` with TCG or KVM.

mod args;
mod process;

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use args::{q35_ram_ranges, qemu_args, QEMU_MAX_CPUS};
use process::QemuProcess;

use crate::backend::{BackendKind, LaunchedVm, VmBackend, VmSpec};
use crate::error::IoAt;
use crate::introspect::{ram_memfd, GuestMemory, RamBacking};
use crate::VmError;

/// The QEMU binary for x86_64 guests.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";
/// How long QEMU may take to connect the channel socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs VMs with QEMU, accelerated by TCG or KVM.
#[derive(Debug, Clone)]
pub struct QemuBackend {
    kind: BackendKind,
    binary: PathBuf,
}

impl QemuBackend {
    /// A QEMU backend of `kind` ([`BackendKind::QemuTcg`] or
    /// [`BackendKind::QemuKvm`]), using `qemu-system-x86_64` from PATH.
    pub fn new(kind: BackendKind) -> Result<Self, VmError> {
        if kind == BackendKind::Kvm {
            return Err(VmError::Unsupported {
                backend: kind.to_string(),
                reason: "not a QEMU backend".into(),
            });
        }
        let binary = find_on_path(QEMU_BINARY).ok_or_else(|| VmError::MissingProgram {
            program: QEMU_BINARY.into(),
            hint: "install it with `apt-get install qemu-system-x86`".into(),
        })?;
        Ok(QemuBackend { kind, binary })
    }

    /// The QEMU binary used.
    pub fn binary(&self) -> &Path {
        &self.binary
    }
}

/// The first executable `name` on PATH.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

impl VmBackend for QemuBackend {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    fn check(&self, spec: &VmSpec) -> Result<(), VmError> {
        args::check(self.kind, spec)
    }

    fn launch(&self, spec: &VmSpec) -> Result<LaunchedVm, VmError> {
        let socket = spec.work_dir.join("channel.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket).at(&socket)?;
        let backings = ram_backings(spec)?;
        let fds: Vec<i32> = backings.iter().map(|b| b.file.as_raw_fd()).collect();
        let args = qemu_args(self.kind, spec, &socket, &fds);
        let mut process = QemuProcess::spawn(&self.binary, &args, &fds)?;
        let memory = GuestMemory::map(&backings, &q35_ram_ranges(total_ram_bytes(spec)))
            .map_err(|e| e.to_string());
        let console = process.take_stdout();
        let console_input = process.take_stdin();
        let stream = accept_channel(&listener, &mut process, &socket)?;
        let _ = std::fs::remove_file(&socket);
        let channel_output = stream.try_clone().at(&socket)?;
        Ok(LaunchedVm {
            process: Box::new(process),
            console,
            console_input,
            channel: Box::new(stream),
            channel_output: Box::new(channel_output),
            memory,
        })
    }
}

/// Guest RAM in bytes: whole MiB per node, as `-m` says.
fn total_ram_bytes(spec: &VmSpec) -> u64 {
    let nodes = spec.topology.numa_nodes();
    u64::from(spec.memory_mb / nodes * nodes) << 20
}

/// One sealed memfd per NUMA node, the node's share of guest RAM.
fn ram_backings(spec: &VmSpec) -> Result<Vec<RamBacking>, VmError> {
    let nodes = spec.topology.numa_nodes();
    let len = u64::from(spec.memory_mb / nodes) << 20;
    (0..nodes)
        .map(|n| {
            let file = ram_memfd(&format!("ktstr-ram{n}"), len)
                .map_err(|e| VmError::Launch(e.to_string()))?;
            Ok(RamBacking { file, len })
        })
        .collect()
}

/// Waits for QEMU to connect its channel chardev, failing early if QEMU
/// exits first (bad arguments) or never connects.
fn accept_channel(
    listener: &UnixListener,
    process: &mut QemuProcess,
    socket: &Path,
) -> Result<std::os::unix::net::UnixStream, VmError> {
    listener.set_nonblocking(true).at(socket)?;
    let until = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).at(socket)?;
                return Ok(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(VmError::Launch(format!("channel socket: {e}"))),
        }
        if let Some(exit) = process.exit_status() {
            return Err(VmError::Launch(format!(
                "qemu exited ({exit}) before it connected the channel:\n{}",
                process.stderr_text().trim()
            )));
        }
        if Instant::now() > until {
            process.kill_now();
            return Err(VmError::Launch(
                "qemu did not connect the channel socket within 30 s".into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
