//! What every command that boots a VM shares on the command line: the
//! arguments, obtaining the kernel with progress, the guest agent beside
//! this binary, and Ctrl-C. The VM itself is prepared by `ktstr-run`.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ktstr_kernel::{BootKernel, CacheLayout};
use ktstr_proto::JobSpec;
use ktstr_run::vm::{self, Payload, PreparedVm, VmRequest};
use ktstr_topology::Topology;
use ktstr_vmm::initramfs::GuestFile;
use ktstr_vmm::probe::BackendChoice;

use super::progress::Progress;

/// Arguments shared by the commands that boot a VM.
#[derive(Debug, Clone, clap::Args)]
pub struct VmArgs {
    /// Kernel to boot (see `ktstr kernel build --help`); built if needed.
    #[arg(long, value_name = "ID")]
    pub kernel: Option<String>,
    /// CPU topology: NnNlNcNt (e.g. 2n4l2c1t) or N,N,N,N.
    #[arg(long, short, default_value = "1n1l2c1t", value_name = "T")]
    pub topology: Topology,
    /// VM backend: auto (KVM where a probe shows it boots, else QEMU TCG),
    /// kvm, qemu-kvm or qemu-tcg.
    #[arg(long, default_value = "auto", value_name = "B", env = "KTSTR_BACKEND")]
    pub backend: BackendChoice,
    /// Guest memory in MiB (default: 64 per CPU, at least 256).
    #[arg(long, value_name = "N")]
    pub memory_mb: Option<u32>,
    /// Keep the guest console log in FILE.
    #[arg(long, value_name = "FILE")]
    pub console_log: Option<PathBuf>,
    /// Extra kernel command-line arguments (e.g. `loglevel=7
    /// earlyprintk=serial,ttyS0`), after ktstr's own.
    #[arg(long, value_name = "ARGS", default_value = "")]
    pub append: String,
    /// Boot cold instead of restoring a snapshot of the booted guest
    /// (snapshots are taken once per kernel, topology, memory and
    /// initramfs, and kept in the cache).
    #[arg(long)]
    pub no_snapshot: bool,
}

impl VmArgs {
    /// The VM these arguments ask for, living at most `timeout`.
    pub fn request(&self, timeout: Duration) -> VmRequest {
        VmRequest {
            topology: self.topology,
            backend: self.backend,
            memory_mb: self.memory_mb,
            append: self.append.clone(),
            console_log: self.console_log.clone(),
            timeout,
            snapshot: !self.no_snapshot,
            cancel: None,
        }
    }
}

/// The kernel for `id`, built first if needed (with progress).
pub fn obtain_kernel(kernels_toml: Option<&Path>, id: Option<&str>) -> anyhow::Result<BootKernel> {
    let resolver = super::kernel::resolver(kernels_toml)?;
    Ok(resolver.obtain(id, &Progress::new())?)
}

/// The guest agent: `$KTSTR_GUEST_AGENT`, else beside this executable.
pub fn guest_agent() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the ktstr executable")?;
    Ok(vm::guest_agent(&exe)?)
}

/// Prepares a VM running `job` on `kernel` with `busybox` and `files`
/// packed beside the agent.
pub fn prepare(
    args: &VmArgs,
    kernel: &BootKernel,
    job: JobSpec,
    busybox: bool,
    files: Vec<GuestFile>,
    timeout: Duration,
    cancel: &Arc<AtomicBool>,
) -> anyhow::Result<PreparedVm> {
    let payload = Payload {
        agent: guest_agent()?,
        busybox,
        files,
    };
    let layout = CacheLayout::from_env()?;
    let mut req = args.request(timeout);
    req.cancel = Some(Arc::clone(cancel));
    Ok(vm::prepare(
        &req,
        kernel,
        job,
        payload,
        &layout,
        &Progress::new(),
    )?)
}

/// A cancel flag set by SIGINT, SIGTERM or SIGHUP (terminal gone); a second
/// signal exits at once with status 130.
pub fn cancel_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&flag))?;
        signal_hook::flag::register(sig, Arc::clone(&flag))?;
    }
    Ok(flag)
}
