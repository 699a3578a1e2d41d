//! A live session: one booted VM whose guest agent carries out requests
//! as they come (`Job::Live`), the host side of `ktstr repl`.
//! [`LiveSession`] implements [`LiveGuest`], the interface the engine's
//! REPL drives, so neither knows the other.
//!
//! The VM runs on a thread of its own (the same session code as every
//! job); requests go out through the session's host queue and answers
//! come back through its message callback. Every wait is bounded, an
//! interrupt flag ends a wait early, and dropping the session shuts the
//! guest down (then kills it if it does not go): no VM outlives it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ktstr_kernel::{BootKernel, Observer};
use ktstr_plan::live::{LiveAnswer, LiveGuest, LiveRequest, Notice};
use ktstr_plan::SchedulerSpec;
use ktstr_proto::{
    GuestMessage, GuestReport, HostMessage, Job, JobSpec, MAX_HOST_FRAME_LEN, PROTOCOL_VERSION,
};
use ktstr_topology::Topology;
use ktstr_vmm::initramfs::GuestFile;
use ktstr_vmm::probe::BackendChoice;
use ktstr_vmm::session::SessionIo;
use ktstr_vmm::to_guest::{host_queue, HostSender};
use ktstr_vmm::{VmError, VmOutcome};

use crate::error::RunError;
use crate::vm::{self, Payload, VmRequest};

/// How long a plain request may take to be answered.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The most channel bytes a live VM may send in its life. A job's VM gets
/// 256 MiB; a session asks for stats again and again (each answer carries
/// every worker's progress series), so its limit is far higher: frames
/// stay bounded one by one, and the session reads them as they come.
pub const LIVE_CHANNEL_LIMIT: usize = 64 << 30;
/// How long the guest may take to shut down after `Shutdown`.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What a live session boots.
#[derive(Debug, Clone)]
pub struct LiveSessionRequest {
    /// The guest's topology.
    pub topology: Topology,
    /// The kernel.
    pub kernel: BootKernel,
    /// The backend, or `auto`.
    pub backend: BackendChoice,
    /// Guest memory in MiB (None: the default for the topology).
    pub memory_mb: Option<u32>,
    /// Extra kernel command-line arguments.
    pub append: String,
    /// Schedulers the session may start, by name; empty: every sample
    /// scheduler of the kernel's cache entry.
    pub schedulers: Vec<String>,
    /// Extra files for the guest.
    pub files: Vec<GuestFile>,
    /// How long the VM may live.
    pub lifetime: Duration,
    /// Keep the console log here (None: in the VM's scratch directory,
    /// removed with it).
    pub console_log: Option<std::path::PathBuf>,
    /// Start from a snapshot of the booted guest where the backend takes
    /// them.
    pub snapshot: bool,
}

/// What a live session takes from the host: settings and where things are.
#[derive(Debug, Clone)]
pub struct LiveHost {
    /// schedulers.toml.
    pub registry: ktstr_sched::SchedulersToml,
    /// The cache (initramfs bases, the KVM probe's verdict).
    pub layout: ktstr_kernel::CacheLayout,
    /// The guest agent binary.
    pub agent: std::path::PathBuf,
}

/// A booted guest serving live requests.
pub struct LiveSession {
    sender: HostSender,
    inbox: Receiver<GuestMessage>,
    cancel: Arc<AtomicBool>,
    interrupt: Arc<AtomicBool>,
    vm: Option<JoinHandle<Result<VmOutcome, VmError>>>,
    topology: Topology,
    schedulers: Vec<String>,
    attach_timeout: Duration,
    next_id: u64,
    notices: Vec<Notice>,
    report: Option<GuestReport>,
    ready_after: Duration,
    ended: Option<String>,
}

impl LiveSession {
    /// Boots the VM and waits until its agent is ready. `interrupt`, set
    /// from outside (Ctrl-C), ends any wait of the session early.
    pub fn start(
        host: &LiveHost,
        req: LiveSessionRequest,
        interrupt: Arc<AtomicBool>,
        observer: &dyn Observer,
    ) -> Result<Self, RunError> {
        let started = Instant::now();
        let (files, launches) = schedulers(host, &req)?;
        let names = launches
            .iter()
            .map(|l| l.path.rsplit('/').next().unwrap_or(&l.path).to_string())
            .collect();
        let attach_s = launches
            .iter()
            .map(|l| l.attach_timeout_s)
            .max()
            .unwrap_or(0);
        let job = JobSpec {
            job: Job::Live {
                topology: req.topology,
                schedulers: launches,
            },
            fault: None,
        };
        let payload = Payload {
            agent: host.agent.clone(),
            busybox: true,
            files: files.into_iter().chain(req.files.clone()).collect(),
        };
        let vm_req = VmRequest {
            topology: req.topology,
            backend: req.backend,
            memory_mb: req.memory_mb,
            append: req.append.clone(),
            console_log: req.console_log.clone(),
            timeout: req.lifetime,
            snapshot: req.snapshot,
            cancel: None,
        };
        let prepared = vm::prepare(&vm_req, &req.kernel, job, payload, &host.layout, observer)?;
        let boot_limit = Duration::from_secs(120)
            + crate::job::boot_allowance(prepared.backend.kind(), &req.topology);
        let (sender, queue) = host_queue();
        let mut io = SessionIo::logged(prepared.console_log.clone());
        let cancel = Arc::clone(&io.cancel);
        io.to_guest = Some(queue);
        io.channel_limit = LIVE_CHANNEL_LIMIT;
        let (tx, inbox) = mpsc::channel();
        let vm = std::thread::spawn(move || {
            prepared.run(io, &mut |m| {
                let _ = tx.send(m.clone());
            })
        });
        let mut session = LiveSession {
            sender,
            inbox,
            cancel,
            interrupt,
            vm: Some(vm),
            topology: req.topology,
            schedulers: names,
            attach_timeout: Duration::from_secs(attach_s),
            next_id: 1,
            notices: Vec::new(),
            report: None,
            ready_after: Duration::ZERO,
            ended: None,
        };
        session.wait_ready(boot_limit)?;
        session.ready_after = started.elapsed();
        Ok(session)
    }

    /// What the guest reported when it came up.
    pub fn report(&self) -> Option<&GuestReport> {
        self.report.as_ref()
    }

    /// From the start of [`LiveSession::start`] to the agent's ready
    /// message (preparation and boot).
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), RunError> {
        let deadline = Instant::now() + limit;
        loop {
            match self.next_message(deadline) {
                Ok(GuestMessage::Ready {
                    protocol, report, ..
                }) => {
                    if protocol != PROTOCOL_VERSION {
                        return Err(self.failed_boot(format!(
                            "the guest agent speaks protocol {protocol}, the host {PROTOCOL_VERSION}"
                        )));
                    }
                    self.report = Some(*report);
                    return Ok(());
                }
                Ok(GuestMessage::Error { message }) => {
                    return Err(self.failed_boot(format!("the guest agent failed: {message}")))
                }
                Ok(_) => {}
                Err(why) => return Err(self.failed_boot(why)),
            }
        }
    }

    /// Stops the VM after a failed boot; the error says why, with the
    /// console's last lines.
    fn failed_boot(&mut self, why: String) -> RunError {
        self.cancel.store(true, Ordering::SeqCst);
        let tail = match self.vm.take().map(JoinHandle::join) {
            Some(Ok(Ok(outcome))) => outcome.console_tail.join("\n"),
            Some(Ok(Err(e))) => e.to_string(),
            _ => String::new(),
        };
        RunError::Missing(format!("the live VM did not come up: {why}\n{tail}"))
    }

    /// The next message from the guest, waiting until `deadline` (or the
    /// interrupt flag); `Err` says why none came.
    fn next_message(&mut self, deadline: Instant) -> Result<GuestMessage, String> {
        if let Some(why) = &self.ended {
            return Err(why.clone());
        }
        loop {
            if self.interrupt.load(Ordering::SeqCst) {
                return Err("interrupted".to_string());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("the guest did not answer in time".to_string());
            }
            match self
                .inbox
                .recv_timeout(left.min(Duration::from_millis(100)))
            {
                Ok(GuestMessage::Done) => {
                    let why = "the guest agent ended the session".to_string();
                    self.ended = Some(why.clone());
                    return Err(why);
                }
                Ok(m) => return Ok(m),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let why = self.vm_end();
                    self.ended = Some(why.clone());
                    return Err(why);
                }
            }
        }
    }

    /// How the VM ended, once its thread is gone.
    fn vm_end(&mut self) -> String {
        match self.vm.take().map(JoinHandle::join) {
            Some(Ok(Ok(o))) => format!("the VM ended: {}", o.headline()),
            Some(Ok(Err(e))) => format!("the VM failed: {e}"),
            _ => "the VM is gone".to_string(),
        }
    }

    /// How long `request` may take to be answered.
    fn timeout_for(&self, request: &LiveRequest) -> Duration {
        match request {
            LiveRequest::Sh { timeout_s, .. } => Duration::from_secs(*timeout_s) + REQUEST_TIMEOUT,
            LiveRequest::StartScheduler { .. }
            | LiveRequest::StopScheduler
            | LiveRequest::Reset => self.attach_timeout + REQUEST_TIMEOUT,
            _ => REQUEST_TIMEOUT,
        }
    }

    fn note(&mut self, m: GuestMessage) {
        match m {
            GuestMessage::Scheduler { state, detail } => self.notices.push(Notice {
                message: format!("the scheduler {state}"),
                detail,
            }),
            GuestMessage::Error { message } => self.notices.push(Notice {
                message: "the guest agent reported an error".into(),
                detail: message,
            }),
            GuestMessage::Rejected { reason } => self.notices.push(Notice {
                message: "the guest agent refused a frame".into(),
                detail: reason,
            }),
            _ => {}
        }
    }

    /// Ends the session: the guest stops its workers and scheduler and
    /// powers off; killed if it does not within a grace period. How the VM
    /// ended.
    pub fn shutdown(mut self) -> Result<VmOutcome, RunError> {
        self.stop_vm()
    }

    fn stop_vm(&mut self) -> Result<VmOutcome, RunError> {
        let Some(vm) = self.vm.take() else {
            return Err(RunError::Missing("the live VM had already ended".into()));
        };
        let id = self.next_id;
        self.next_id += 1;
        self.sender.send(HostMessage::Shutdown { id });
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !vm.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !vm.is_finished() {
            self.cancel.store(true, Ordering::SeqCst);
        }
        match vm.join() {
            Ok(r) => Ok(r?),
            Err(_) => Err(RunError::Missing("the live VM's thread panicked".into())),
        }
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        if self.vm.is_some() {
            let _ = self.stop_vm();
        }
    }
}

impl LiveGuest for LiveSession {
    fn call(&mut self, request: LiveRequest) -> Result<LiveAnswer, String> {
        if let Some(why) = &self.ended {
            return Err(format!("{why} (start a new `ktstr repl`)"));
        }
        let id = self.next_id;
        self.next_id += 1;
        let deadline = Instant::now() + self.timeout_for(&request);
        let message = HostMessage::Live {
            id,
            request: Box::new(request),
        };
        // The guest refuses frames over its limit: say so here, at once.
        let size = message.to_payload().len();
        if size > MAX_HOST_FRAME_LEN {
            return Err(format!(
                "the request is {size} bytes; the guest takes at most {MAX_HOST_FRAME_LEN}"
            ));
        }
        if !self.sender.send(message) {
            return Err("the VM is gone".to_string());
        }
        loop {
            match self.next_message(deadline)? {
                GuestMessage::Live { id: got, answer } if got == id => return Ok(answer),
                GuestMessage::Live { .. } => {} // an interrupted request's late answer

                other => self.note(other),
            }
        }
    }

    fn notices(&mut self) -> Vec<Notice> {
        while let Ok(m) = self.inbox.try_recv() {
            if matches!(m, GuestMessage::Done) {
                self.ended = Some("the guest agent ended the session".to_string());
                continue;
            }
            self.note(m);
        }
        std::mem::take(&mut self.notices)
    }

    fn topology(&self) -> Topology {
        self.topology
    }

    fn schedulers(&self) -> Vec<String> {
        self.schedulers.clone()
    }
}

/// The scheduler binaries to pack and how the guest launches each.
fn schedulers(
    host: &LiveHost,
    req: &LiveSessionRequest,
) -> Result<(Vec<GuestFile>, Vec<ktstr_proto::SchedulerLaunch>), RunError> {
    let names: Vec<String> = match (&req.kernel, req.schedulers.is_empty()) {
        (BootKernel::Entry(e), true) => e.manifest.schedulers.clone(),
        _ => req.schedulers.clone(),
    };
    let specs = names.into_iter().map(|name| SchedulerSpec {
        name,
        args: Vec::new(),
        at: Default::default(),
    });
    let mut files = Vec::new();
    let mut launches = Vec::new();
    for s in specs {
        let (f, l) = crate::scheduler::resolve(&s, &req.kernel, &host.registry, None, req.topology)
            .map_err(RunError::Missing)?;
        files.push(f);
        launches.push(l);
    }
    Ok((files, launches))
}
