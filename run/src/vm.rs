//! Preparing a VM for any job: the guest agent and busybox, the cached
//! initramfs base plus the job's suffix, the VM spec, and the backend
//! (`auto` consults or runs the KVM probe). Each VM gets a scratch
//! directory of its own, removed when the [`PreparedVm`] is dropped, so
//! several can be prepared and run at once in one process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ktstr_kernel::{BootKernel, CacheLayout, Observer};
use ktstr_proto::{Job, JobSpec};
use ktstr_topology::Topology;
use ktstr_vmm::initramfs::{
    self, BaseImage, Compression, GuestFile, InitramfsCache, InitramfsContents,
};
use ktstr_vmm::probe::{self, BackendChoice, KvmProbe, ProbeVerdict};
use ktstr_vmm::session::{self, SessionIo};
use ktstr_vmm::{cmdline, BackendKind, VmBackend, VmError, VmOutcome, VmSpec};

use crate::error::RunError;
use crate::snapshot::BootMode;

/// The guest agent binary's file name.
pub const AGENT_BINARY: &str = "ktstr-guest-agent";

/// How one VM is to be booted.
#[derive(Debug, Clone)]
pub struct VmRequest {
    /// The CPU topology the guest must see.
    pub topology: Topology,
    /// The backend, or `auto`.
    pub backend: BackendChoice,
    /// Guest memory in MiB (None: 64 per CPU, at least 256).
    pub memory_mb: Option<u32>,
    /// Extra kernel command-line arguments, after ktstr's own.
    pub append: String,
    /// Where the console log goes (None: the VM's scratch directory).
    pub console_log: Option<PathBuf>,
    /// How long the VM may live.
    pub timeout: Duration,
    /// Start from a snapshot of the booted guest where the backend takes
    /// them ([`crate::snapshot`]); false boots cold.
    pub snapshot: bool,
    /// Set from outside to stop a snapshot being taken (the job's own
    /// cancel flag).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// What goes into the guest besides the job.
#[derive(Debug, Clone)]
pub struct Payload {
    /// The guest agent binary (`/init`); see [`guest_agent`].
    pub agent: PathBuf,
    /// Pack busybox (shell and exec jobs).
    pub busybox: bool,
    /// Extra files.
    pub files: Vec<GuestFile>,
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
    /// Whether it boots or is restored.
    pub boot: BootMode,
    /// Scratch directory, removed on drop.
    _work: tempfile::TempDir,
}

impl PreparedVm {
    /// Boots the VM and drives it to its end (see
    /// [`ktstr_vmm::session::run`]).
    pub fn run(
        &self,
        io: SessionIo,
        on_message: &mut dyn FnMut(&ktstr_proto::GuestMessage),
    ) -> Result<VmOutcome, VmError> {
        session::run(self.backend.as_ref(), &self.spec, io, on_message)
    }
}

/// Prepares a VM running `job` on `kernel`; the initramfs base is cached
/// under `layout`. Telling `observer` when the KVM probe runs.
pub fn prepare(
    req: &VmRequest,
    kernel: &BootKernel,
    job: JobSpec,
    payload: Payload,
    layout: &CacheLayout,
    observer: &dyn Observer,
) -> Result<PreparedVm, RunError> {
    let work = tempfile::Builder::new()
        .prefix("ktstr-vm-")
        .tempdir()
        .map_err(|e| RunError::io(std::env::temp_dir(), e))?;
    let contents = InitramfsContents {
        agent: payload.agent,
        busybox: payload.busybox.then(busybox).transpose()?,
        files: payload.files,
    };
    let config = match kernel {
        BootKernel::Entry(e) => std::fs::read_to_string(e.config()).ok(),
        BootKernel::Image { .. } => None,
    };
    let cache = InitramfsCache::new(layout.root().join("initramfs"));
    let base = cache.base(&contents, Compression::for_kernel_config(config.as_deref()))?;
    let mut spec = vm_spec(req, kernel, &base, &job, work.path())?;
    let (kind, probe) = choose_backend(req.backend, &spec, kernel, &base, layout, observer)?;
    spec.kernel = image_for(kind, kernel);
    let backend = probe::backend_for(kind)?;
    let boot = if req.snapshot && backend.check(&spec).is_ok() {
        let cancel = req.cancel.clone().unwrap_or_default();
        let source = crate::snapshot::Source {
            kernel,
            base: &base,
            cancel,
        };
        crate::snapshot::restore(&mut spec, &*backend, &source, &job, layout, observer)
            .unwrap_or_else(|why| {
                observer.line(&format!("no snapshot, booting cold: {why}"));
                BootMode::Cold { why: Some(why) }
            })
    } else {
        BootMode::Cold { why: None }
    };
    let console_log = req
        .console_log
        .clone()
        .unwrap_or_else(|| work.path().join("console.log"));
    Ok(PreparedVm {
        backend,
        spec,
        probe,
        base,
        console_log,
        boot,
        _work: work,
    })
}

fn vm_spec(
    req: &VmRequest,
    kernel: &BootKernel,
    base: &BaseImage,
    job: &JobSpec,
    work: &Path,
) -> Result<VmSpec, RunError> {
    let initramfs = work.join("initramfs");
    initramfs::assemble(&base.path, &initramfs::job_suffix(job), &initramfs)?;
    Ok(VmSpec {
        kernel: kernel.boot_image(),
        initramfs,
        cmdline: cmdline::guest_cmdline(&req.append),
        topology: req.topology,
        memory_mb: req
            .memory_mb
            .unwrap_or_else(|| VmSpec::default_memory_mb(&req.topology)),
        timeout: req.timeout,
        work_dir: work.to_path_buf(),
        snapshot: Default::default(),
    })
}

/// Resolves the backend; `auto` consults (or runs) the cached KVM probe,
/// which boots a probe job of this very kernel and base.
fn choose_backend(
    choice: BackendChoice,
    spec: &VmSpec,
    kernel: &BootKernel,
    base: &BaseImage,
    layout: &CacheLayout,
    observer: &dyn Observer,
) -> Result<(BackendKind, Option<ProbeVerdict>), RunError> {
    let probe = KvmProbe::new(layout.root().join("probe").join("kvm.json"));
    let mut boot = |backend: &dyn VmBackend| -> Result<VmOutcome, VmError> {
        let dir = tempfile::Builder::new()
            .prefix("ktstr-probe-")
            .tempdir()
            .map_err(|e| VmError::Launch(e.to_string()))?;
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
        observer.line("probing whether KVM boots guests on this host (once per host)...");
    }
    Ok(probe::select(choice, &probe, &mut boot))
}

/// The image `kind` boots: the own VMM takes the uncompressed `vmlinux`
/// through PVH where there is one, QEMU the bzImage.
pub fn image_for(kind: BackendKind, kernel: &BootKernel) -> PathBuf {
    match kind {
        BackendKind::Kvm => kernel.own_vmm_image(),
        _ => kernel.boot_image(),
    }
}

/// The guest agent: `$KTSTR_GUEST_AGENT`, else the file beside `exe`
/// (the `ktstr` binary, built together with it).
pub fn guest_agent(exe: &Path) -> Result<PathBuf, RunError> {
    if let Some(p) = std::env::var_os("KTSTR_GUEST_AGENT") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            return Err(RunError::Missing(format!(
                "KTSTR_GUEST_AGENT={} is not a file",
                p.display()
            )));
        }
        return Ok(p);
    }
    let beside = exe.with_file_name(AGENT_BINARY);
    if beside.is_file() {
        return Ok(beside);
    }
    Err(RunError::Missing(format!(
        "the guest agent {} is missing; build it with `cargo build` (same profile as ktstr) \
         or set KTSTR_GUEST_AGENT",
        beside.display()
    )))
}

/// busybox from PATH (a static build: `apt-get install busybox-static`).
pub fn busybox() -> Result<PathBuf, RunError> {
    ktstr_vmm::qemu::find_on_path("busybox")
        .or_else(|| Some(PathBuf::from("/bin/busybox")).filter(|p| p.is_file()))
        .ok_or_else(|| {
            RunError::Missing(
                "busybox not found on PATH; install it with `apt-get install busybox-static`"
                    .into(),
            )
        })
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
