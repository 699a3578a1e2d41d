//! A live session (`Job::Live`, the REPL): the agent carries out each
//! request as it comes (cgroups, ops, the scheduler, stats, commands),
//! answers it, and between requests watches the scheduler, reporting its
//! death on its own. Requests arrive from the channel's listener thread
//! ([`crate::live`]) and are carried out here, one at a time, on the
//! agent's main thread.

use std::path::Path;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ktstr_plan::live::{
    LiveAnswer, LiveRequest, SchedState, MAX_DMESG_LINES, MAX_SH_OUTPUT, MAX_SH_SECS,
};
use ktstr_plan::Op;
use ktstr_proto::{GuestMessage, SchedulerLaunch};
use ktstr_topology::Topology;

use super::groups::Groups;
use super::scheduler::{self, RunningScheduler};
use super::CGROUP_ROOT;
use crate::channel::Channel;
use crate::error::{AgentError, Result};
use crate::live::LiveCall;

/// How often the scheduler is checked between requests.
const WATCH_EVERY: Duration = Duration::from_millis(250);
/// How long `stats` waits for the workers' reports.
const STATS_WAIT: Duration = Duration::from_secs(1);

/// What a live session holds.
struct Session {
    topology: Topology,
    exe: std::path::PathBuf,
    launches: Vec<SchedulerLaunch>,
    groups: Option<Groups>,
    /// Guest-monotonic ms when the first cgroup started.
    t0_mono_ms: Option<f64>,
    /// The running scheduler and the name it was started by.
    sched: Option<(String, RunningScheduler)>,
    last_exit: Option<String>,
}

/// Serves live requests from `calls` until the host's `Shutdown` (or the
/// listener is gone); answers go out on `channel`.
pub fn serve(
    topology: Topology,
    launches: Vec<SchedulerLaunch>,
    channel: &Arc<Mutex<Channel>>,
    calls: Receiver<LiveCall>,
) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| AgentError::io("locate", "/proc/self/exe", e))?;
    let mut s = Session {
        topology,
        exe,
        launches,
        groups: None,
        t0_mono_ms: None,
        sched: None,
        last_exit: None,
    };
    let send = |m: GuestMessage| {
        let mut ch = channel.lock().unwrap_or_else(|p| p.into_inner());
        let _ = ch.send(&m);
    };
    loop {
        match calls.recv_timeout(WATCH_EVERY) {
            Ok(LiveCall::Request { id, request }) => {
                let answer = s.handle(*request);
                send(GuestMessage::Live { id, answer });
            }
            Ok(LiveCall::Shutdown { id }) => {
                s.reset();
                send(GuestMessage::Ack {
                    id,
                    message: "shutting down".into(),
                });
                return Ok(());
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                s.reset();
                return Ok(());
            }
        }
        if let Some(detail) = s.watch() {
            send(GuestMessage::Scheduler {
                state: "exited".into(),
                detail,
            });
        }
    }
}

impl Session {
    fn handle(&mut self, request: LiveRequest) -> LiveAnswer {
        let result = match request {
            LiveRequest::AddCgroup { cgroup } => {
                let name = cgroup.name.clone();
                let n = cgroup.workers;
                self.op(&Op::AddCgroup { cgroup })
                    .map(|_| format!("cgroup {name}: {n} worker(s) started"))
            }
            LiveRequest::Op { op } => self.op(&op).map(|_| "done".to_string()),
            LiveRequest::Stats => return self.stats(),
            LiveRequest::StartScheduler { name, args } => self.start_scheduler(&name, args),
            LiveRequest::StopScheduler => match self.sched.take() {
                Some((name, s)) => match s.stop() {
                    None => {
                        self.last_exit = Some(format!("{name} stopped by the session"));
                        Ok(format!("{name} stopped"))
                    }
                    Some(stuck) => {
                        self.last_exit = Some(stuck.clone());
                        Err(stuck)
                    }
                },
                None => Err("no scheduler is running".to_string()),
            },
            LiveRequest::SchedState => return LiveAnswer::SchedState(self.sched_state()),
            LiveRequest::Sh { command, timeout_s } => {
                let timeout = Duration::from_secs(timeout_s.clamp(1, MAX_SH_SECS));
                return match crate::exec::capture(&command, timeout, MAX_SH_OUTPUT) {
                    Ok(c) => LiveAnswer::Output {
                        code: c.code,
                        stdout: c.stdout,
                        stderr: c.stderr,
                    },
                    Err(e) => LiveAnswer::Failed {
                        error: e.to_string(),
                    },
                };
            }
            LiveRequest::Dmesg { lines } => {
                return LiveAnswer::Text {
                    text: scheduler::dmesg(lines.min(MAX_DMESG_LINES) as usize),
                }
            }
            LiveRequest::Reset => {
                self.reset();
                Ok("every cgroup removed, the scheduler stopped".to_string())
            }
        };
        match result {
            Ok(message) => LiveAnswer::Done { message },
            Err(error) => LiveAnswer::Failed { error },
        }
    }

    fn op(&mut self, op: &Op) -> std::result::Result<(), String> {
        if self.groups.is_none() {
            if !matches!(op, Op::AddCgroup { .. }) {
                return Err("there are no cgroups yet".to_string());
            }
            let g = Groups::live(Path::new(CGROUP_ROOT), self.topology, self.exe.clone())
                .map_err(|e| e.to_string())?;
            self.groups = Some(g);
        }
        let groups = self.groups.as_mut().expect("created above");
        groups.apply(op).map_err(|e| e.to_string())?;
        if self.t0_mono_ms.is_none() {
            self.t0_mono_ms = Some(crate::workers::probe::monotonic_ms());
        }
        Ok(())
    }

    fn stats(&mut self) -> LiveAnswer {
        let t0 = self
            .t0_mono_ms
            .unwrap_or_else(crate::workers::probe::monotonic_ms);
        let Some(groups) = self.groups.as_mut() else {
            return LiveAnswer::Stats {
                elapsed_ms: 0.0,
                workers: Vec::new(),
                placement: Vec::new(),
            };
        };
        let mut workers = groups.reports_so_far(STATS_WAIT);
        super::rebase_progress(&mut workers, t0);
        LiveAnswer::Stats {
            elapsed_ms: crate::workers::probe::monotonic_ms() - t0,
            workers,
            placement: groups.placement(),
        }
    }

    fn start_scheduler(
        &mut self,
        name: &str,
        args: Vec<String>,
    ) -> std::result::Result<String, String> {
        if let Some((running, _)) = &self.sched {
            return Err(format!("{running} is running; stop it first"));
        }
        let Some(launch) = self.launches.iter().find(|l| launch_name(l) == name) else {
            let known: Vec<&str> = self.launches.iter().map(launch_name).collect();
            return Err(format!(
                "scheduler `{name}` was not given to this VM (it has: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
        };
        let mut launch = launch.clone();
        if !args.is_empty() {
            launch.args = args;
        }
        match scheduler::start(&launch) {
            Ok(s) => {
                self.sched = Some((name.to_string(), s));
                Ok(format!("{name} attached"))
            }
            Err(e) => {
                // The kernel's reason leads; `sched_state().last_exit` keeps
                // the whole detail.
                let detail = e.to_string();
                let why = ktstr_plan::sched_exit::headline(&detail);
                self.last_exit = Some(detail);
                Err(format!("{name} did not stay attached: {why}"))
            }
        }
    }

    fn sched_state(&self) -> SchedState {
        let (state, ops) = scheduler::state_and_ops();
        SchedState {
            state: if state.is_empty() {
                "unsupported".to_string()
            } else {
                state
            },
            ops: Some(ops).filter(|o| !o.is_empty()),
            running: self.sched.as_ref().map(|(name, _)| name.clone()),
            last_exit: self.last_exit.clone(),
        }
    }

    /// The scheduler's death, once: what happened.
    fn watch(&mut self) -> Option<String> {
        let why = self.sched.as_mut()?.1.check()?;
        self.sched = None;
        self.last_exit = Some(why.clone());
        Some(why)
    }

    /// Stops every worker and the scheduler, removes the tree.
    fn reset(&mut self) {
        if let Some(g) = self.groups.take() {
            g.finish();
        }
        if let Some((_, s)) = self.sched.take() {
            if let Some(stuck) = s.stop() {
                self.last_exit = Some(stuck);
            }
        }
        self.t0_mono_ms = None;
    }
}

/// The name a session starts a scheduler by: its binary's file name.
fn launch_name(l: &SchedulerLaunch) -> &str {
    l.path.rsplit('/').next().unwrap_or(&l.path)
}
