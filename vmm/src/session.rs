//! Drives a launched VM of any backend: console, channel, deadline,
//! cancellation, and the verdict on how it ended.

use std::fs::File;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ktstr_proto::{FrameDecoder, GuestMessage, HostMessage, PROTOCOL_VERSION, SEED_LEN};

use ktstr_plan::monitor::MonitorReport;

use crate::console::{spawn_pump, ConsoleState};
use crate::error::IoAt;
use crate::introspect::{Monitor, MonitorConfig};
use crate::outcome::init_exit_status;
use crate::snapshot::SnapshotRole;
use crate::to_guest::{spawn_writer, HostQueue, ToGuest};
use crate::{VmBackend, VmEnd, VmError, VmOutcome, VmSpec};

/// The most channel bytes one VM may send before it is killed.
pub const CHANNEL_LIMIT: usize = 256 << 20;
/// How long a guest may take to power off after the agent's `Done`.
const POWER_OFF_GRACE: Duration = Duration::from_secs(15);
/// How long to wait for the channel's last bytes once the VM is gone.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Where console bytes go and where console input comes from.
pub struct SessionIo {
    /// The console log file to write.
    pub console_log: PathBuf,
    /// Also copy the console here (the user's terminal).
    pub console_echo: Option<Box<dyn Write + Send>>,
    /// Bytes to type into the console (the user's keyboard).
    pub console_source: Option<Box<dyn Read + Send>>,
    /// Set from outside (Ctrl-C handler, detach key) to stop the VM.
    pub cancel: Arc<AtomicBool>,
    /// The most channel bytes the guest may send ([`CHANNEL_LIMIT`]).
    pub channel_limit: usize,
    /// Requests for the guest agent ([`crate::to_guest::host_queue`]),
    /// written once it is ready.
    pub to_guest: Option<HostQueue>,
    /// Sample the guest's run queues from the host while it runs (where
    /// the backend shares guest RAM).
    pub monitor: Option<MonitorConfig>,
}

impl SessionIo {
    /// Log to `console_log`; no echo, no input, a fresh cancel flag.
    pub fn logged(console_log: PathBuf) -> Self {
        SessionIo {
            console_log,
            console_echo: None,
            console_source: None,
            cancel: Arc::new(AtomicBool::new(false)),
            channel_limit: CHANNEL_LIMIT,
            to_guest: None,
            monitor: None,
        }
    }
}

enum ChannelEvent {
    Bytes(Vec<u8>),
    Closed,
}

/// Host requests on their way to the guest: held until the agent is
/// ready, then handed to the writer thread.
struct Outgoing {
    queue: Option<HostQueue>,
    held: Vec<ToGuest>,
    writer: mpsc::Sender<Vec<u8>>,
}

impl Outgoing {
    fn pump(&mut self, agent_ready: bool) {
        if let Some(q) = &self.queue {
            self.held.extend(q.drain());
        }
        if agent_ready {
            for item in self.held.drain(..) {
                let _ = self.writer.send(item.bytes());
            }
        }
    }
}

/// When the main loop must stop the VM.
struct Limits {
    cancel: Arc<AtomicBool>,
    channel_limit: usize,
    timeout: Duration,
    deadline: Instant,
}

/// What the main loop has collected.
struct Collected {
    ready_at: Option<Instant>,
    report: Option<ktstr_proto::GuestReport>,
    exit_code: Option<i32>,
    done: bool,
    agent_errors: Vec<String>,
    protocol_errors: Vec<String>,
    channel_bytes: usize,
    decoder: FrameDecoder,
    monitor: Option<MonitorState>,
}

/// The monitor of one VM, running or never started.
enum MonitorState {
    Running(Monitor),
    Unavailable(MonitorReport),
}

impl MonitorState {
    fn guest_ready(&self) {
        if let MonitorState::Running(m) = self {
            m.guest_ready();
        }
    }

    fn finish(self) -> MonitorReport {
        match self {
            MonitorState::Running(m) => m.finish(),
            MonitorState::Unavailable(r) => r,
        }
    }
}

impl Collected {
    fn new() -> Self {
        Collected {
            ready_at: None,
            report: None,
            exit_code: None,
            done: false,
            agent_errors: Vec::new(),
            protocol_errors: Vec::new(),
            channel_bytes: 0,
            decoder: FrameDecoder::default(),
            monitor: None,
        }
    }
}

/// Boots `spec` on `backend` and drives it to its end. Every message from
/// the guest agent is passed to `on_message` as it arrives. Returns how the
/// VM ended; errors are only for VMs that could not be started.
pub fn run(
    backend: &dyn VmBackend,
    spec: &VmSpec,
    io: SessionIo,
    on_message: &mut dyn FnMut(&GuestMessage),
) -> Result<VmOutcome, VmError> {
    backend.check(spec)?;
    let SessionIo {
        console_log,
        console_echo,
        console_source,
        cancel,
        channel_limit,
        to_guest,
        monitor,
    } = io;
    let mut log = File::create(&console_log).at(&console_log)?;
    if let SnapshotRole::Restore(r) = &spec.snapshot {
        log.write_all(&r.boot_console)
            .and_then(|_| {
                log.write_all(b"ktstr: restored from a snapshot of the guest booted above\n")
            })
            .at(&console_log)?;
    }
    let start = Instant::now();
    let mut vm = backend.launch(spec)?;
    let memory = std::mem::replace(&mut vm.memory, Err(String::new()));
    let monitor = start_monitor(monitor, memory, start);
    let console = Arc::new(Mutex::new(ConsoleState::default()));
    let pump = spawn_pump(vm.console, log, console_echo, Arc::clone(&console));
    if let Some(source) = console_source {
        spawn_input(source, vm.console_input);
    }
    let limits = Limits {
        cancel,
        channel_limit,
        timeout: spec.timeout,
        deadline: start + spec.timeout,
    };
    let events = spawn_channel_reader(vm.channel);
    let mut outgoing = Outgoing {
        queue: to_guest,
        held: Vec::new(),
        writer: spawn_writer(vm.channel_output),
    };
    if let SnapshotRole::Restore(restore) = &spec.snapshot {
        // The restored agent waits for its job before it says ready.
        let _ = outgoing
            .writer
            .send(start_message(restore.job.clone())?.bytes());
    }
    let capture = match &spec.snapshot {
        SnapshotRole::Capture { dir } => Some(dir.as_path()),
        _ => None,
    };
    let mut c = Collected::new();
    c.monitor = monitor;
    let mut vm_io = VmIo {
        process: &mut *vm.process,
        events: &events,
        outgoing: &mut outgoing,
        capture,
    };
    let forced = drive(&mut vm_io, &mut c, &limits, on_message)?;
    if forced.is_some() {
        vm.process.kill();
    }
    let exit = vm.process.try_wait()?;
    let lifetime = start.elapsed();
    if forced.is_none() {
        drain_channel(&events, &mut c, channel_limit, on_message);
    }
    let monitor = c.monitor.take().map(MonitorState::finish);
    let _ = pump.join();
    let console = std::mem::take(&mut *console.lock().unwrap_or_else(|p| p.into_inner()));
    let end = forced.unwrap_or_else(|| classify(&console, &c, exit.as_ref()));
    if end == VmEnd::Completed && c.report.is_none() {
        c.protocol_errors
            .push("the guest agent never sent its ready message".into());
    }
    Ok(VmOutcome {
        backend: backend.kind(),
        end,
        ready_ms: c.ready_at.map(|t| ms(t - start)),
        lifetime_ms: ms(lifetime),
        report: c.report,
        exit_code: c.exit_code,
        agent_errors: c.agent_errors,
        protocol_errors: c.protocol_errors,
        console_tail: console.tail.into_iter().collect(),
        backend_diagnostics: vm.process.diagnostics(),
        console_log,
        monitor,
    })
}

/// Starts the host-side monitor when one is asked for; without guest RAM
/// to read (a backend that does not share it, a mapping that failed) the
/// report says why.
fn start_monitor(
    config: Option<MonitorConfig>,
    memory: Result<crate::introspect::GuestMemory, String>,
    start: Instant,
) -> Option<MonitorState> {
    match (config, memory) {
        (Some(c), Ok(m)) => Some(MonitorState::Running(Monitor::start(m, c, start))),
        (Some(c), Err(why)) => Some(MonitorState::Unavailable(MonitorReport {
            period_ms: c.period.as_millis() as u32,
            unavailable: Some(format!("monitor unavailable: {why}")),
            ..MonitorReport::default()
        })),
        _ => None,
    }
}

/// The running VM as the main loop drives it.
struct VmIo<'a> {
    process: &'a mut dyn crate::VmProcess,
    events: &'a Receiver<ChannelEvent>,
    outgoing: &'a mut Outgoing,
    /// Save the VM here once its agent is ready.
    capture: Option<&'a std::path::Path>,
}

/// The job for a restored guest, with the host's clock now and a fresh
/// seed.
fn start_message(job: ktstr_proto::JobSpec) -> Result<ToGuest, VmError> {
    let mut seed = vec![0u8; SEED_LEN];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut seed))
        .at("/dev/urandom")?;
    let realtime_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    Ok(ToGuest::Message(HostMessage::Start {
        id: 0,
        job: Box::new(job),
        realtime_us,
        seed,
    }))
}

/// Handles channel bytes until the VM stops by itself (None) or must be
/// stopped (the reason).
fn drive(
    vm: &mut VmIo<'_>,
    c: &mut Collected,
    limits: &Limits,
    on_message: &mut dyn FnMut(&GuestMessage),
) -> Result<Option<VmEnd>, VmError> {
    let mut done_at: Option<Instant> = None;
    let (events, process) = (vm.events, &mut *vm.process);
    loop {
        vm.outgoing.pump(c.ready_at.is_some());
        if let (Some(dir), Some(_)) = (vm.capture, c.ready_at) {
            return Ok(Some(match process.save_snapshot(dir) {
                Ok(saved) => VmEnd::Saved { ram: saved.ram },
                Err(e) => VmEnd::BackendFailed {
                    status: e.to_string(),
                },
            }));
        }
        match events.recv_timeout(Duration::from_millis(20)) {
            Ok(ChannelEvent::Bytes(b)) => {
                c.channel_bytes += b.len();
                if c.channel_bytes > limits.channel_limit {
                    return Ok(Some(VmEnd::ChannelOverflow {
                        limit: limits.channel_limit,
                    }));
                }
                c.decoder.push(&b);
                take_frames(c, on_message);
                if c.done && done_at.is_none() {
                    done_at = Some(Instant::now());
                }
            }
            Ok(ChannelEvent::Closed) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => thread::sleep(Duration::from_millis(20)),
        }
        if limits.cancel.load(Ordering::SeqCst) {
            return Ok(Some(VmEnd::Interrupted));
        }
        if process.try_wait()?.is_some() {
            return Ok(None);
        }
        if Instant::now() >= limits.deadline {
            return Ok(Some(VmEnd::Timeout {
                after_s: limits.timeout.as_secs_f64(),
                agent_ready: c.ready_at.is_some(),
            }));
        }
        if done_at.is_some_and(|t| t.elapsed() > POWER_OFF_GRACE) {
            c.protocol_errors
                .push("the guest did not power off after its agent finished".into());
            return Ok(Some(VmEnd::Completed));
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// How a VM that stopped by itself ended.
fn classify(
    console: &ConsoleState,
    c: &Collected,
    exit: Option<&crate::backend::BackendExit>,
) -> VmEnd {
    if let Some(line) = &console.panic {
        if line.contains("Attempted to kill init") {
            let (exit_code, signal) = init_exit_status(line);
            return VmEnd::AgentExited {
                message: line.clone(),
                exit_code,
                signal,
            };
        }
        return VmEnd::KernelPanic {
            message: line.clone(),
        };
    }
    match exit {
        Some(e) if !e.success => VmEnd::BackendFailed {
            status: e.status.clone(),
        },
        _ if c.done => VmEnd::Completed,
        _ => VmEnd::EndedEarly,
    }
}

fn take_frames(c: &mut Collected, on_message: &mut dyn FnMut(&GuestMessage)) {
    while let Some(frame) = c.decoder.next_frame() {
        let payload = match frame {
            Ok(p) => p,
            Err(e) => {
                c.protocol_errors.push(e.to_string());
                continue;
            }
        };
        let msg = match GuestMessage::from_payload(&payload) {
            Ok(m) => m,
            Err(e) => {
                c.protocol_errors
                    .push(format!("malformed message ({} bytes): {e}", payload.len()));
                continue;
            }
        };
        record(c, &msg);
        on_message(&msg);
    }
}

fn record(c: &mut Collected, msg: &GuestMessage) {
    match msg {
        GuestMessage::Ready {
            protocol, report, ..
        } => {
            if *protocol != PROTOCOL_VERSION {
                c.protocol_errors.push(format!(
                    "the guest agent speaks protocol {protocol}, the host {PROTOCOL_VERSION}"
                ));
            }
            if c.ready_at.is_some() {
                c.protocol_errors.push("a second ready message".into());
            } else {
                c.ready_at = Some(Instant::now());
                c.report = Some((**report).clone());
                if let Some(m) = &c.monitor {
                    m.guest_ready();
                }
            }
        }
        GuestMessage::Exit { code } => c.exit_code = Some(*code),
        GuestMessage::Error { message } => c.agent_errors.push(message.clone()),
        GuestMessage::Done => c.done = true,
        GuestMessage::Rejected { reason } => c
            .protocol_errors
            .push(format!("the guest agent rejected a host frame: {reason}")),
        GuestMessage::Output { .. }
        | GuestMessage::Event { .. }
        | GuestMessage::Scheduler { .. }
        | GuestMessage::Results { .. }
        | GuestMessage::BpfPrograms { .. }
        | GuestMessage::BpfDump { .. }
        | GuestMessage::Ack { .. }
        | GuestMessage::Report { .. }
        | GuestMessage::Live { .. }
        | GuestMessage::SelftestList { .. }
        | GuestMessage::SelftestStarted { .. }
        | GuestMessage::SelftestCase { .. } => {}
    }
}

fn drain_channel(
    events: &Receiver<ChannelEvent>,
    c: &mut Collected,
    limit: usize,
    on_message: &mut dyn FnMut(&GuestMessage),
) {
    let until = Instant::now() + DRAIN_GRACE;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(ChannelEvent::Bytes(b)) if c.channel_bytes + b.len() <= limit => {
                c.channel_bytes += b.len();
                c.decoder.push(&b);
                take_frames(c, on_message);
            }
            Ok(ChannelEvent::Bytes(_)) | Ok(ChannelEvent::Closed) | Err(_) => break,
        }
    }
    if let Some(e) = c.decoder.finish() {
        c.protocol_errors.push(e.to_string());
    }
}

fn spawn_channel_reader(mut channel: Box<dyn Read + Send>) -> Receiver<ChannelEvent> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match channel.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(ChannelEvent::Closed);
                    return;
                }
                Ok(n) => {
                    if tx.send(ChannelEvent::Bytes(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Copies typed bytes into the console until either side closes. The
/// thread is detached: a blocked read of the user's terminal must not hold
/// up the end of the session.
fn spawn_input(mut source: Box<dyn Read + Send>, mut sink: Box<dyn Write + Send>) {
    thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n) = source.read(&mut buf) {
            if n == 0
                || sink
                    .write_all(&buf[..n])
                    .and_then(|_| sink.flush())
                    .is_err()
            {
                return;
            }
        }
    });
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
