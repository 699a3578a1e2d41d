//! What every command that boots a VM shares: the arguments, finding the
//! kernel, the guest agent and busybox, building the initramfs, choosing
//! the backend, and Ctrl-C.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ktstr_kernel::{BootKernel, CacheLayout};
use ktstr_proto::{Job, JobSpec};
use ktstr_topology::Topology;
use ktstr_vmm::initramfs::{
    self, BaseImage, Compression, GuestFile, InitramfsCache, InitramfsContents,
};
use ktstr_vmm::probe::{self, BackendChoice, KvmProbe, ProbeVerdict};
use ktstr_vmm::session::{self, SessionIo};
use ktstr_vmm::{cmdline, BackendKind, VmBackend, VmOutcome, VmSpec};

use super::progress::Progress;

/// The guest agent binary's file name.
const AGENT_BINARY: &str = "ktstr-guest-agent";

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
}

/// A VM ready to start, with everything it needs on disk.
pub struct PreparedVm {
    /// The backend chosen.
    pub backend: Box<dyn VmBackend>,
    /// The VM.
    pub spec: VmSpec,
    /// The probe verdict when `auto` chose.
    pub probe: Option<ProbeVerdict>,
    /// The cached base initramfs.
    pub base: BaseImage,
    /// Console log path.
    pub console_log: PathBuf,
    /// Scratch directory, removed on drop.
    _work: tempfile::TempDir,
}

/// What goes into the guest besides the agent.
pub struct Payload {
    /// Pack busybox (shell and exec jobs).
    pub busybox: bool,
    /// Extra files.
    pub files: Vec<GuestFile>,
}

/// The kernel for `id`, built first if needed (with progress).
pub fn obtain_kernel(kernels_toml: Option<&Path>, id: Option<&str>) -> anyhow::Result<BootKernel> {
    let resolver = super::kernel::resolver(kernels_toml)?;
    Ok(resolver.obtain(id, &Progress::new())?)
}

/// Prepares a VM running `job` on `kernel`.
pub fn prepare(
    args: &VmArgs,
    kernel: &BootKernel,
    job: JobSpec,
    payload: Payload,
    timeout: Duration,
) -> anyhow::Result<PreparedVm> {
    let work = tempfile::Builder::new()
        .prefix("ktstr-vm-")
        .tempdir()
        .context("creating the VM's scratch directory")?;
    let contents = InitramfsContents {
        agent: guest_agent()?,
        busybox: payload.busybox.then(busybox).transpose()?,
        files: payload.files,
    };
    let config = match kernel {
        BootKernel::Entry(e) => std::fs::read_to_string(e.config()).ok(),
        BootKernel::Image { .. } => None,
    };
    let layout = CacheLayout::from_env()?;
    let cache = InitramfsCache::new(layout.root().join("initramfs"));
    let base = cache.base(&contents, Compression::for_kernel_config(config.as_deref()))?;
    let mut spec = vm_spec(args, kernel, &base, &job, work.path(), timeout)?;
    let (kind, probe) = choose_backend(args.backend, &spec, kernel, &base, &layout)?;
    spec.kernel = image_for(kind, kernel);
    let console_log = args
        .console_log
        .clone()
        .unwrap_or_else(|| work.path().join("console.log"));
    Ok(PreparedVm {
        backend: probe::backend_for(kind)?,
        spec,
        probe,
        base,
        console_log,
        _work: work,
    })
}

fn vm_spec(
    args: &VmArgs,
    kernel: &BootKernel,
    base: &BaseImage,
    job: &JobSpec,
    work: &Path,
    timeout: Duration,
) -> anyhow::Result<VmSpec> {
    let initramfs = work.join("initramfs");
    initramfs::assemble(&base.path, &initramfs::job_suffix(job), &initramfs)?;
    Ok(VmSpec {
        kernel: kernel.boot_image(),
        initramfs,
        cmdline: cmdline::guest_cmdline(&args.append),
        topology: args.topology,
        memory_mb: args
            .memory_mb
            .unwrap_or_else(|| VmSpec::default_memory_mb(&args.topology)),
        timeout,
        work_dir: work.to_path_buf(),
    })
}

/// Resolves `--backend`; `auto` consults (or runs) the cached KVM probe,
/// which boots a probe job of this very kernel and base on QEMU/KVM.
fn choose_backend(
    choice: BackendChoice,
    spec: &VmSpec,
    kernel: &BootKernel,
    base: &BaseImage,
    layout: &CacheLayout,
) -> anyhow::Result<(BackendKind, Option<ProbeVerdict>)> {
    let probe = KvmProbe::new(layout.root().join("probe").join("kvm.json"));
    let mut boot = |backend: &dyn VmBackend| -> Result<VmOutcome, ktstr_vmm::VmError> {
        let dir = tempfile::Builder::new()
            .prefix("ktstr-probe-")
            .tempdir()
            .map_err(|e| ktstr_vmm::VmError::Launch(e.to_string()))?;
        let job = JobSpec {
            job: Job::Probe,
            fault: None,
        };
        // Whether KVM works does not depend on the topology: probe small.
        let mut probe_spec = spec.clone();
        probe_spec.topology = Topology::new(1, 1, 2, 1).expect("valid topology");
        probe_spec.memory_mb = VmSpec::default_memory_mb(&probe_spec.topology);
        probe_spec.initramfs = dir.path().join("initramfs");
        probe_spec.timeout = probe::probe_timeout(backend.kind());
        probe_spec.kernel = image_for(backend.kind(), kernel);
        probe_spec.work_dir = dir.path().to_path_buf();
        initramfs::assemble(
            &base.path,
            &initramfs::job_suffix(&job),
            &probe_spec.initramfs,
        )?;
        let io = SessionIo::logged(dir.path().join("console.log"));
        session::run(backend, &probe_spec, io, &mut |_| {})
    };
    if choice == BackendChoice::Auto && probe.cached().is_none() {
        errln!("probing whether KVM boots guests on this host (once per host)...");
    }
    Ok(probe::select(choice, &probe, &mut boot))
}

/// The image `kind` boots: the own VMM takes the uncompressed `vmlinux`
/// through PVH where there is one, QEMU the bzImage.
fn image_for(kind: BackendKind, kernel: &BootKernel) -> PathBuf {
    match kind {
        BackendKind::Kvm => kernel.own_vmm_image(),
        _ => kernel.boot_image(),
    }
}

/// The guest agent: `$KTSTR_GUEST_AGENT`, else beside this executable.
pub fn guest_agent() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("KTSTR_GUEST_AGENT") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!("KTSTR_GUEST_AGENT={} is not a file", p.display());
        }
        return Ok(p);
    }
    let exe = std::env::current_exe().context("locating the ktstr executable")?;
    let beside = exe.with_file_name(AGENT_BINARY);
    if beside.is_file() {
        return Ok(beside);
    }
    bail!(
        "the guest agent {} is missing; build it with `cargo build -p ktstr-guest-agent` \
         (same profile as ktstr) or set KTSTR_GUEST_AGENT",
        beside.display()
    )
}

/// busybox from PATH (a static build: `apt-get install busybox-static`).
pub fn busybox() -> anyhow::Result<PathBuf> {
    ktstr_vmm::qemu::find_on_path("busybox")
        .or_else(|| Some(PathBuf::from("/bin/busybox")).filter(|p| p.is_file()))
        .context("busybox not found on PATH; install it with `apt-get install busybox-static`")
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

/// The kernel release and cache key (or file) to show for `kernel`.
pub fn kernel_label(kernel: &BootKernel) -> String {
    match kernel {
        BootKernel::Entry(e) => e
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        BootKernel::Image { path, .. } => path.display().to_string(),
    }
}
