//! One plan job: the scheduler resolved, the VM prepared and driven, the
//! results judged with every threshold layer, the sidecar written.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ktstr_kernel::{BootKernel, CacheLayout, Observer};
use ktstr_plan::monitor::{MonitorReport, DEFAULT_MONITOR_PERIOD_MS};
use ktstr_plan::verdict::{self, Outcome, Verdict};
use ktstr_plan::Plan;
use ktstr_proto::{Fault, GuestMessage, Job, JobSpec};
use ktstr_sched::SchedulersToml;
use ktstr_topology::Topology;
use ktstr_vmm::initramfs::GuestFile;
use ktstr_vmm::introspect::MonitorConfig;
use ktstr_vmm::probe::BackendChoice;
use ktstr_vmm::session::SessionIo;
use ktstr_vmm::to_guest::HostQueue;
use ktstr_vmm::{VmError, VmOutcome};

use crate::error::RunError;
use crate::host::HostFacts;
use crate::selftest::SelftestJob;
use crate::sidecar::{Repetition, Sidecar, Timings, SIDECAR_SCHEMA};
use crate::snapshot::BootMode;
use crate::telemetry::Telemetry;
use crate::vm::{self, Payload, VmRequest};

/// Seconds a plan job's VM may live beyond the plan's duration and the
/// scheduler's attach timeout (boot, setup, collection, power-off).
pub const JOB_SLACK_S: f64 = 120.0;

/// What every job of one run shares: settings, where things go, and
/// where the guest agent is. `Sync`: jobs may run on several threads at
/// once against one `Runner`.
#[derive(Debug, Clone)]
pub struct Runner {
    /// schedulers.toml.
    pub registry: SchedulersToml,
    /// The cache (initramfs bases, the KVM probe's verdict).
    pub layout: CacheLayout,
    /// The guest agent binary.
    pub agent: PathBuf,
    /// Where sidecars and console logs go.
    pub run_dir: PathBuf,
    /// The run's id, recorded in every sidecar.
    pub run_id: String,
}

/// Sees every message from a job's guest as it arrives.
pub type Watch = Box<dyn FnMut(&GuestMessage) + Send>;

/// A plan job, ready to run: everything resolved but the VM.
pub struct JobRequest {
    /// The plan (any overrides already applied).
    pub plan: Plan,
    /// The topology of the VM.
    pub topology: Topology,
    /// The kernel to boot.
    pub kernel: BootKernel,
    /// The backend, or `auto`.
    pub backend: BackendChoice,
    /// Guest memory in MiB (None: 64 per CPU, at least 256).
    pub memory_mb: Option<u32>,
    /// Extra kernel command-line arguments.
    pub append: String,
    /// Seconds the scheduler may take to attach (None: schedulers.toml's
    /// value, else [`crate::scheduler::ATTACH_TIMEOUT_S`]).
    pub attach_timeout: Option<u64>,
    /// The command line's threshold layer, over every other.
    pub thresholds: Vec<(String, f64)>,
    /// A fault for the guest to inject (ktstr's own tests).
    pub fault: Option<Fault>,
    /// Which repetition of the job this is.
    pub repetition: Repetition,
    /// The job is a negative test (besides a plan's own `expect_fail`):
    /// it passes only by failing, for this reason.
    pub expect_fail: Option<String>,
    /// Set from outside to stop the VM.
    pub cancel: Arc<AtomicBool>,
    /// Busy guest CPUs of other VMs running beside this one (a gauntlet's
    /// parallel jobs): they share the host, and emulated time thresholds
    /// scale with the load.
    pub busy_beside: u64,
    /// Live requests for the guest agent while the job runs.
    pub to_guest: Option<HostQueue>,
    /// Sees every message from the guest as it arrives.
    pub watch: Option<Watch>,
    /// The host-side monitor's sampling period in ms (None: no monitor).
    pub monitor_ms: Option<u32>,
    /// Start the VM from a snapshot of the booted guest where the backend
    /// takes them (the default); false boots cold.
    pub snapshot: bool,
    /// A selftest job: the kernel's sched_ext selftests run instead of the
    /// plan (which only records the job; see [`JobRequest::selftests`]).
    pub selftests: Option<SelftestJob>,
}

impl JobRequest {
    /// A request for `plan` on `topology` and `kernel` with everything
    /// else at its default (`auto` backend, one repetition, no fault).
    pub fn new(plan: Plan, topology: Topology, kernel: BootKernel) -> Self {
        JobRequest {
            plan,
            topology,
            kernel,
            backend: BackendChoice::Auto,
            memory_mb: None,
            append: String::new(),
            attach_timeout: None,
            thresholds: Vec::new(),
            fault: None,
            repetition: Repetition { index: 1, of: 1 },
            expect_fail: None,
            busy_beside: 0,
            cancel: Arc::new(AtomicBool::new(false)),
            to_guest: None,
            watch: None,
            monitor_ms: Some(DEFAULT_MONITOR_PERIOD_MS),
            snapshot: true,
            selftests: None,
        }
    }

    /// A selftest job on `topology` and `kernel`: the kernel's sched_ext
    /// selftests (or `job`'s runner), one verdict per test, no monitor.
    pub fn selftests(job: SelftestJob, topology: Topology, kernel: BootKernel) -> Self {
        let mut req = JobRequest::new(crate::selftest::plan(&job, topology), topology, kernel);
        req.monitor_ms = None;
        req.selftests = Some(job);
        req
    }

    /// `scenario topology scheduler`, the job's name in output.
    pub fn label(&self) -> String {
        if self.selftests.is_some() {
            return format!("{} {}", self.plan.name, self.topology);
        }
        let sched = self
            .plan
            .scheduler
            .as_ref()
            .map_or("eevdf".to_string(), |s| s.name.clone());
        format!("{} {} {sched}", self.plan.name, self.topology)
    }
}

/// How one job came out.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// `scenario topology scheduler`.
    pub label: String,
    /// The judgement.
    pub verdict: Verdict,
    /// Seconds the VM lived (0 when none booted).
    pub seconds: f64,
    /// What the guest reported.
    pub telemetry: Telemetry,
    /// How the VM ended (None when none booted).
    pub vm: Option<VmOutcome>,
    /// The sidecar written (None when none booted).
    pub sidecar: Option<PathBuf>,
    /// Which repetition.
    pub repetition: Repetition,
}

impl JobResult {
    /// A job that failed before a VM ran.
    pub fn failed(label: String, reason: String) -> Self {
        JobResult {
            label,
            verdict: Verdict {
                outcome: Outcome::Fail,
                reasons: vec![reason],
                thresholds: Default::default(),
                claims: vec![],
                notes: vec![],
            },
            seconds: 0.0,
            telemetry: Telemetry::default(),
            vm: None,
            sidecar: None,
            repetition: Repetition { index: 1, of: 1 },
        }
    }

    /// A job this host cannot run (its backend cannot give the topology).
    pub fn skipped(label: String, why: String) -> Self {
        let mut r = Self::failed(label, why);
        r.verdict.outcome = Outcome::Skip;
        r
    }
}

impl Runner {
    /// The files a plan job puts into the guest (its scheduler's binary,
    /// the plan's shipped files) and how the scheduler starts; `Err` says
    /// why the job cannot run (a scheduler not found, a shipped file gone
    /// since the check).
    fn guest_files(
        &self,
        req: &JobRequest,
        observer: &dyn Observer,
    ) -> Result<(Vec<GuestFile>, Option<ktstr_proto::SchedulerLaunch>), String> {
        if let Some(job) = &req.selftests {
            let cache = ktstr_kernel::KernelCache::new(self.layout.clone());
            let runner = crate::selftest::runner_file(job, &req.kernel, &cache, observer)?;
            return Ok((vec![runner], None));
        }
        let (mut files, launch) = match &req.plan.scheduler {
            Some(s) => {
                let (f, l) = crate::scheduler::resolve(
                    s,
                    &req.kernel,
                    &self.registry,
                    req.attach_timeout,
                    req.topology,
                )?;
                (vec![f], Some(l))
            }
            None => (vec![], None),
        };
        for f in &req.plan.files {
            if !Path::new(&f.host).is_file() {
                return Err(format!("{} (shipped as {}) is gone", f.host, f.guest));
            }
            files.push(GuestFile {
                host: f.host.clone().into(),
                guest: f.guest.clone(),
            });
        }
        Ok((files, launch))
    }

    /// Runs one plan job to its verdict. Errors are for jobs that could
    /// not be attempted (the initramfs, the backend); a job that ran and
    /// failed, or that this host cannot run, is a [`JobResult`].
    pub fn run(&self, mut req: JobRequest, observer: &dyn Observer) -> Result<JobResult, RunError> {
        let label = req.label();
        let repetition = req.repetition;
        let with_rep = |mut r: JobResult| {
            r.repetition = repetition;
            r
        };
        if let Some(why) = crate::requirements::unmet(&req.plan.kernel, &req.kernel) {
            return Ok(with_rep(JobResult::skipped(label, why)));
        }
        let (files, launch) = match self.guest_files(&req, observer) {
            Ok(x) => x,
            Err(why) => return Ok(with_rep(JobResult::failed(label, why))),
        };
        std::fs::create_dir_all(&self.run_dir).map_err(|e| RunError::io(&self.run_dir, e))?;
        let stem = self.stem(&label, repetition);
        let attach_s = launch.as_ref().map_or(0, |l| l.attach_timeout_s);
        let vm_req = VmRequest {
            topology: req.topology,
            backend: req.backend,
            memory_mb: req.memory_mb,
            append: req.append.clone(),
            console_log: Some(self.run_dir.join(format!("{stem}.console.log"))),
            timeout: Duration::from_secs_f64(req.plan.duration_s + attach_s as f64 + JOB_SLACK_S)
                + req
                    .selftests
                    .as_ref()
                    .map_or(Duration::ZERO, |j| crate::selftest::time_limit(&j.spec)),
            snapshot: req.snapshot,
            cancel: Some(Arc::clone(&req.cancel)),
        };
        let job = JobSpec {
            job: match &req.selftests {
                Some(s) => Job::Selftests {
                    runner: crate::selftest::GUEST_RUNNER.into(),
                    spec: s.spec.clone(),
                },
                None => Job::Plan {
                    plan: Box::new(req.plan.clone()),
                    topology: req.topology,
                    scheduler: launch,
                },
            },
            fault: req.fault,
        };
        let payload = Payload {
            agent: self.agent.clone(),
            // A selftest runner may be a script (another tree's wrapper,
            // a fixture).
            busybox: req.selftests.is_some(),
            files,
        };
        let mut vm = vm::prepare(&vm_req, &req.kernel, job, payload, &self.layout, observer)?;
        vm.spec.timeout += boot_allowance(vm.backend.kind(), &req.topology);
        let mut io = SessionIo::logged(vm.console_log.clone());
        io.cancel = Arc::clone(&req.cancel);
        io.to_guest = req.to_guest.take();
        let no_layout = match req.monitor_ms {
            Some(ms) => match crate::introspect::layout_for(&req.kernel) {
                Ok(layout) => {
                    io.monitor = Some(MonitorConfig {
                        layout,
                        period: Duration::from_millis(u64::from(ms)),
                        cpus: req.topology.cpus() as usize,
                    });
                    None
                }
                Err(why) => Some(format!("monitor unavailable: {why}")),
            },
            None => None,
        };
        let mut telemetry = Telemetry::default();
        let mut watch = req.watch.take();
        let start = Instant::now();
        let mut workers_started: Option<Instant> = None;
        // A selftest job's guest reports at least once per test.
        let silence = req.selftests.as_ref().map(|j| {
            Duration::from_secs(j.spec.test_timeout_s + crate::selftest::SILENCE_SLACK_S)
                + boot_allowance(vm.backend.kind(), &req.topology)
        });
        let watchdog =
            silence.map(|s| crate::selftest::Watchdog::start(s, Arc::clone(&req.cancel)));
        let heard = watchdog.as_ref().map(|w| w.ear());
        let outcome = vm.run(io, &mut |m| {
            if let Some(h) = &heard {
                h();
            }
            if workers_started.is_none() && is_workers_started(m) {
                workers_started = Some(Instant::now());
            }
            telemetry.take(m);
            if let Some(w) = watch.as_mut() {
                w(m);
            }
        });
        let silent_s = watchdog.and_then(|w| w.stop().then(|| silence.map_or(0, |s| s.as_secs())));
        let outcome = match outcome {
            Ok(o) => o,
            Err(e @ VmError::Unsupported { .. }) => {
                return Ok(with_rep(JobResult::skipped(label, e.to_string())));
            }
            Err(e) => return Err(e.into()),
        };
        let seconds = start.elapsed().as_secs_f64();
        let mut outcome = outcome;
        if let Some(why) = no_layout {
            outcome.monitor = Some(MonitorReport {
                unavailable: Some(why),
                ..MonitorReport::default()
            });
        }
        if let Some(report) = outcome.monitor.as_mut() {
            if let Some(at) = workers_started {
                report.rebase((at - start).as_millis() as i64);
            }
            report.llcs = ktstr_plan::checks::monitor::llc_cpus(&req.topology);
            report.workers_ms = telemetry.duration_ms.map(|d| d as i64);
        }
        if req.selftests.is_some() {
            telemetry.selftests = crate::selftest::settle(&telemetry, &outcome, silent_s);
        }
        let mut sidecar = self.judge(&req, &label, outcome, telemetry, seconds);
        sidecar.boot = vm.boot.clone();
        let path = self.run_dir.join(format!("{stem}.json"));
        sidecar.write(&path).map_err(|e| RunError::io(&path, e))?;
        Ok(JobResult {
            label,
            verdict: sidecar.verdict,
            seconds,
            telemetry: sidecar.telemetry,
            vm: Some(sidecar.vm),
            sidecar: Some(path),
            repetition,
        })
    }

    /// The verdict on what came back (a plan's checks and claims, or a
    /// selftest job's tests), as the sidecar that records it.
    fn judge(
        &self,
        req: &JobRequest,
        label: &str,
        outcome: VmOutcome,
        telemetry: Telemetry,
        seconds: f64,
    ) -> Sidecar {
        let busy = crate::thresholds::busy_vcpus(&req.plan, &req.topology) + req.busy_beside;
        let thresholds = crate::thresholds::in_force(
            &req.plan,
            &self.registry,
            &req.thresholds,
            outcome.backend,
            busy,
        );
        let mut verdict = match req.selftests {
            // A selftest job is judged by its tests (already settled).
            Some(_) => crate::selftest::judge(&telemetry.selftests, &outcome),
            None => {
                let mut results = telemetry.run_results();
                results.monitor = outcome.monitor.clone();
                verdict::judge(
                    &req.plan,
                    &req.topology,
                    &results,
                    thresholds.clone(),
                    telemetry.failures(&outcome, kernel_release(&req.kernel)),
                )
            }
        };
        let expected =
            req.expect_fail
                .as_deref()
                .or(req.plan.expect_fail.as_ref().map(|e| e.reason.as_str()));
        if verdict.outcome == Outcome::Fail {
            verdict.notes.extend(crate::telemetry::failure_digest(
                telemetry.bpf_globals.as_ref(),
                outcome.monitor.as_ref(),
            ));
        }
        if let Some(reason) = expected {
            verdict = verdict::expecting_failure(verdict, reason);
        }
        Sidecar {
            schema: SIDECAR_SCHEMA,
            run_id: self.run_id.clone(),
            job: label.to_string(),
            repetition: req.repetition,
            plan: req.plan.clone(),
            topology: req.topology,
            kernel: vm::kernel_label(&req.kernel),
            scheduler: req.plan.scheduler.clone(),
            backend: outcome.backend,
            boot: BootMode::default(),
            host: HostFacts::current(),
            timings: Timings {
                seconds,
                ready_ms: outcome.ready_ms,
                plan_ms: telemetry.duration_ms,
            },
            vm: outcome,
            telemetry,
            thresholds,
            verdict,
        }
    }

    /// The file name stem of a job's sidecar and console log.
    fn stem(&self, label: &str, rep: Repetition) -> String {
        let stem = file_stem(label);
        match rep.of {
            1 => stem,
            _ => format!("{stem}-run{}", rep.index),
        }
    }
}

/// Extra time a VM of `topology` may take to boot on `kind`: under TCG
/// three times the boot model's estimate (hosts of one kind differ by 2x;
/// a 64-vCPU guest took 95 s to boot here), nothing more under KVM.
pub fn boot_allowance(kind: ktstr_vmm::BackendKind, topology: &Topology) -> Duration {
    match kind {
        ktstr_vmm::BackendKind::QemuTcg => {
            Duration::from_secs_f64(3.0 * crate::gauntlet::budget::boot_estimate(topology.cpus()))
        }
        _ => Duration::ZERO,
    }
}

/// `label` as a file name: spaces become `-`, anything but letters,
/// digits, `.`, `_` and `-` becomes `_` (a scheduler given as a path has
/// slashes).
pub fn file_stem(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            ' ' => '-',
            c if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') => c,
            _ => '_',
        })
        .collect()
}

/// The release of a cached kernel (`6.12.118`); None for a bare image.
pub(crate) fn kernel_release(k: &BootKernel) -> Option<&str> {
    match k {
        BootKernel::Entry(e) => Some(e.manifest.version.as_str()),
        BootKernel::Image { .. } => None,
    }
}

/// Whether `m` is the agent's event that the workers have started (the
/// zero of the workers' clock, to which the monitor's samples are
/// rebased).
fn is_workers_started(m: &GuestMessage) -> bool {
    matches!(m, GuestMessage::Event { message, .. }
        if message.ends_with(ktstr_proto::WORKERS_STARTED_EVENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boots_of_many_vcpus_get_more_time_under_tcg() {
        let small: Topology = "1n1l2c1t".parse().unwrap();
        let big: Topology = "1n8l4c2t".parse().unwrap();
        let tcg = ktstr_vmm::BackendKind::QemuTcg;
        assert!(boot_allowance(tcg, &big) > boot_allowance(tcg, &small) * 10);
        assert_eq!(
            boot_allowance(ktstr_vmm::BackendKind::Kvm, &big),
            Duration::ZERO
        );
    }

    #[test]
    fn labels_become_safe_file_names() {
        assert_eq!(
            file_stem("two_cgroups 1n1l2c1t /bin/sleep"),
            "two_cgroups-1n1l2c1t-_bin_sleep"
        );
        assert_eq!(file_stem("a 2n4l2c1t scx_simple"), "a-2n4l2c1t-scx_simple");
    }
}
