//! The agent's life: mount, open the channel, report, run the job, power
//! off.

use std::fs;
use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Mutex, OnceLock};

use ktstr_proto::{Fault, GuestMessage, Job, JobSpec, JOB_PATH, PROTOCOL_VERSION};

use crate::channel::{Channel, DEFAULT_CHANNEL};
use crate::error::{AgentError, Result};
use crate::live::{self, LiveState};
use crate::{exec, fault, mounts, power, report, restore, shell, AGENT_VERSION};

static PANIC_CHANNEL: OnceLock<Arc<Mutex<Channel>>> = OnceLock::new();

/// Runs the agent as PID 1. Returns only when the agent is made to exit
/// on purpose ([`Fault::AgentExit`]); otherwise the guest powers off.
pub fn main() -> ExitCode {
    let mut warnings = mounts::mount_all();
    let cmdline = report::kernel_cmdline();
    let path = report::cmdline_value(&cmdline, "ktstr.channel")
        .unwrap_or_else(|| DEFAULT_CHANNEL.to_string());
    let channel = match Channel::open(&path) {
        Ok(c) => Arc::new(Mutex::new(c)),
        Err(e) => {
            eprintln!("ktstr-guest-agent: cannot open the channel {path}: {e}");
            power::power_off();
        }
    };
    install_panic_hook(&channel);
    if Path::new("/bin/busybox").exists() {
        install_busybox(&mut warnings);
    }
    let mut spec = read_job();
    let mut ready = ready_message(warnings);
    if matches!(
        &spec,
        Ok(JobSpec {
            job: Job::Await,
            ..
        })
    ) {
        // The idle guest a snapshot is taken of: every restored guest
        // resumes inside `await_job` and reports ready again below, with
        // the same report (what the guest sees has not changed; the
        // restore's own warnings are added).
        send(&channel, &ready);
        let (job, restore_warnings) = await_job(&channel);
        spec = job;
        if let GuestMessage::Ready { report, .. } = &mut ready {
            report.warnings.extend(restore_warnings);
        }
    }
    let fault = spec.as_ref().ok().and_then(|s| s.fault);
    if fault == Some(Fault::Hang) {
        fault::hang();
    }
    if fault == Some(Fault::Garbage) {
        lock(&channel).send_garbage_first();
    }
    send(&channel, &ready);
    let state = LiveState::default();
    match lock(&channel).reader() {
        Ok(port) => live::spawn_listener(port, Arc::clone(&channel), state.clone()),
        Err(e) => eprintln!("ktstr-guest-agent: no reader for the channel: {e}"),
    }
    match fault {
        Some(Fault::KernelPanic) => fault::panic_kernel(),
        Some(Fault::AgentExit) => {
            lock(&channel).drain();
            return ExitCode::from(3);
        }
        _ => {}
    }
    let result = match spec {
        Ok(spec) => run_job(spec, &channel, &state),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        let message = e.to_string();
        send(&channel, &GuestMessage::Error { message });
    }
    send(&channel, &GuestMessage::Done);
    lock(&channel).drain();
    power::power_off();
}

/// `ready` with a fresh report of what the guest sees, or the error.
fn ready_message(warnings: Vec<String>) -> GuestMessage {
    match report::gather(warnings) {
        Ok(report) => GuestMessage::Ready {
            protocol: PROTOCOL_VERSION,
            agent_version: AGENT_VERSION.to_string(),
            report: Box::new(report),
        },
        Err(e) => GuestMessage::Error {
            message: e.to_string(),
        },
    }
}

/// Waits for the host's job (a guest restored from a snapshot), with
/// what went wrong making the guest its own.
fn await_job(channel: &Arc<Mutex<Channel>>) -> (Result<JobSpec>, Vec<String>) {
    match lock(channel).reader() {
        Ok(mut port) => restore::await_start(&mut port, channel),
        Err(e) => (Err(AgentError::io("open", "the channel", e)), Vec::new()),
    }
}

fn run_job(spec: JobSpec, channel: &Arc<Mutex<Channel>>, live: &LiveState) -> Result<()> {
    let code = match spec.job {
        Job::Probe => return Ok(()),
        Job::Await => return Err(AgentError::Job("a job may not be to await a job".into())),
        Job::Exec { command } => exec::run_command(&command, channel)?,
        Job::Shell => shell::interactive()?,
        Job::Selftests { runner, spec } => crate::selftests::run(&runner, &spec, channel)?,
        Job::Plan {
            plan,
            topology,
            scheduler,
        } => {
            let job = crate::plan::PlanJob {
                plan: *plan,
                topology,
                scheduler,
                panic_mid_run: spec.fault == Some(Fault::PanicMidRun),
            };
            return crate::plan::run(job, channel, live);
        }
        Job::Live {
            topology,
            schedulers,
        } => {
            let (tx, rx) = std::sync::mpsc::channel();
            *live.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
            let served = crate::plan::live::serve(topology, schedulers, channel, rx);
            *live.session.lock().unwrap_or_else(|p| p.into_inner()) = None;
            return served;
        }
    };
    send(channel, &GuestMessage::Exit { code });
    Ok(())
}

fn read_job() -> Result<JobSpec> {
    let text = fs::read_to_string(JOB_PATH).map_err(|e| AgentError::io("read", JOB_PATH, e))?;
    serde_json::from_str(&text).map_err(|e| AgentError::Job(format!("{JOB_PATH}: {e}")))
}

fn install_busybox(warnings: &mut Vec<String>) {
    let ok = Command::new("/bin/busybox")
        .args(["--install", "-s", "/bin"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        warnings.push("busybox --install -s /bin failed".to_string());
    }
}

fn lock(channel: &Mutex<Channel>) -> std::sync::MutexGuard<'_, Channel> {
    channel.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sends `msg`, saying on the console when the channel write failed.
pub(crate) fn send(channel: &Mutex<Channel>, msg: &GuestMessage) {
    if let Err(e) = lock(channel).send(msg) {
        eprintln!("ktstr-guest-agent: channel write failed: {e}");
    }
}

/// Reports a panic of the agent over the channel before PID 1 dies.
fn install_panic_hook(channel: &Arc<Mutex<Channel>>) {
    let _ = PANIC_CHANNEL.set(Arc::clone(channel));
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(ch) = PANIC_CHANNEL.get() {
            if let Ok(mut ch) = ch.try_lock() {
                let message = format!("guest agent panicked: {info}");
                let _ = ch.send(&GuestMessage::Error { message });
                ch.drain();
            }
        }
        default(info);
    }));
}
