//! The QEMU backend: `qemu-system-x86_64` with TCG or KVM.

mod args;
mod process;
mod qmp;
mod snapshot;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use args::{q35_ram_ranges, qemu_args, QEMU_MAX_CPUS};
use process::QemuProcess;
use qmp::Qmp;
use snapshot::QemuVm;

use crate::backend::{BackendKind, LaunchedVm, VmBackend, VmSpec};
use crate::error::IoAt;
use crate::introspect::{ram_memfd, GuestMemory, RamBacking};
use crate::snapshot::SnapshotRole;
use crate::VmError;

/// The QEMU binary for x86_64 guests.
pub const QEMU_BINARY: &str = "qemu-system-x86_64";
/// How long QEMU may take to connect the channel socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a restore may take to have the VM running.
const RESTORE_TIMEOUT: Duration = Duration::from_secs(60);

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
        let listener = listen(&socket)?;
        let controlled = !matches!(spec.snapshot, SnapshotRole::None);
        let qmp_socket = spec.work_dir.join("qmp.sock");
        let qmp_listener = controlled.then(|| listen(&qmp_socket)).transpose()?;
        let (backings, files) = ram_and_snapshot(spec)?;
        let ram_fds: Vec<i32> = backings.iter().map(|b| b.file.as_raw_fd()).collect();
        let mut keep = ram_fds.clone();
        let mut boot = spec.clone();
        if let Some((_, initramfs)) = &files {
            boot.initramfs = PathBuf::from(format!("/proc/self/fd/{}", initramfs.as_raw_fd()));
            keep.push(initramfs.as_raw_fd());
        }
        let mut args = qemu_args(self.kind, &boot, &socket, &ram_fds);
        let incoming = files.as_ref().map(|(state, _)| state.as_raw_fd());
        keep.extend(incoming);
        if controlled {
            args.extend(control_args(&qmp_socket, incoming.is_some()));
        }
        let mut process = QemuProcess::spawn(&self.binary, &args, &keep)?;
        let memory = GuestMemory::map(&backings, &q35_ram_ranges(total_ram_bytes(spec)))
            .map_err(|e| e.to_string());
        let console = process.take_stdout();
        let console_input = process.take_stdin();
        let stream = accept(&listener, &mut process, &socket)?;
        let _ = std::fs::remove_file(&socket);
        let qmp = match qmp_listener {
            Some(l) => {
                let s = accept(&l, &mut process, &qmp_socket)?;
                let _ = std::fs::remove_file(&qmp_socket);
                Some(Qmp::negotiate(s)?)
            }
            None => None,
        };
        let mut vm = QemuVm {
            process,
            qmp,
            ram: backings,
        };
        if let Some(fd) = incoming {
            wait_restored(&mut vm, fd)?;
        }
        drop(files);
        let channel_output = stream.try_clone().at(&socket)?;
        Ok(LaunchedVm {
            process: Box::new(vm),
            console,
            console_input,
            channel: Box::new(stream),
            channel_output: Box::new(channel_output),
            memory,
        })
    }

    fn snapshots(&self) -> bool {
        true
    }

    fn version(&self) -> String {
        qemu_version(&self.binary)
    }
}

/// A restore's open state and initramfs files.
type RestoreFiles = (File, File);

/// Guest RAM (fresh memfds, or a restore's loaded ones) and a restore's
/// state and initramfs files.
fn ram_and_snapshot(spec: &VmSpec) -> Result<(Vec<RamBacking>, Option<RestoreFiles>), VmError> {
    match &spec.snapshot {
        SnapshotRole::Restore(r) => {
            let parts = r.take().ok_or_else(|| {
                VmError::Snapshot("a loaded snapshot restores one VM only".into())
            })?;
            Ok((parts.ram, Some((parts.state, parts.initramfs))))
        }
        _ => Ok((ram_backings(spec)?, None)),
    }
}

/// QEMU's `--version` first line (asked once per binary and process).
fn qemu_version(binary: &Path) -> String {
    static VERSIONS: std::sync::Mutex<Vec<(PathBuf, String)>> = std::sync::Mutex::new(Vec::new());
    let mut known = VERSIONS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, v)) = known.iter().find(|(b, _)| b == binary) {
        return v.clone();
    }
    let v = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into());
    known.push((binary.to_path_buf(), v.clone()));
    v
}

/// The QMP monitor, and for a restore an incoming migration that waits
/// for QMP's `migrate-incoming`.
fn control_args(qmp_socket: &Path, restore: bool) -> Vec<String> {
    let mut a = vec![
        "-chardev".to_string(),
        format!(
            "socket,id=ktstr-qmp,path={},server=off",
            qmp_socket.display()
        ),
        "-mon".into(),
        "chardev=ktstr-qmp,mode=control".into(),
    ];
    if restore {
        a.extend(["-incoming".to_string(), "defer".to_string()]);
    }
    a
}

/// Loads the state from `state_fd` (inherited by QEMU) into the VM
/// waiting with `-incoming defer` and waits until it runs, with QEMU's own
/// words if it fails.
fn wait_restored(vm: &mut QemuVm, state_fd: i32) -> Result<(), VmError> {
    let qmp = vm.qmp.as_mut().expect("restored VMs have QMP");
    let restored = snapshot::ignore_shared(qmp)
        .and_then(|_| {
            qmp.execute(
                "migrate-incoming",
                serde_json::json!({"uri": format!("fd:{state_fd}")}),
            )
        })
        // The source was paused when saved, so the loaded VM is too.
        .and_then(|_| qmp.wait_status(&["paused", "running"], RESTORE_TIMEOUT))
        .and_then(|now| match now.as_str() {
            "paused" => qmp.execute("cont", serde_json::json!({})).map(|_| ()),
            _ => Ok(()),
        });
    restored.map_err(|e| {
        vm.process.kill_now();
        VmError::Snapshot(format!(
            "restoring the VM failed: {e}\n{}",
            vm.process.stderr_text().trim()
        ))
    })
}

fn listen(socket: &Path) -> Result<UnixListener, VmError> {
    let _ = std::fs::remove_file(socket);
    UnixListener::bind(socket).at(socket)
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

/// Waits for QEMU to connect a chardev socket, failing early if QEMU
/// exits first (bad arguments) or never connects.
fn accept(
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
                "qemu exited ({exit}) before it connected {}:\n{}",
                socket.display(),
                process.stderr_text().trim()
            )));
        }
        if Instant::now() > until {
            process.kill_now();
            return Err(VmError::Launch(format!(
                "qemu did not connect {} within 30 s",
                socket.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
