//! Running a scenario Plan in the guest: start the scheduler, build the
//! cgroups and workers, run the steps on a common clock, watch the
//! scheduler, stop everything and report every worker's telemetry.

pub mod groups;
pub mod live;
pub mod schedule;
pub mod scheduler;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ktstr_plan::{Hold, Plan};
use ktstr_proto::{GuestMessage, OpsApplied, SchedulerLaunch, WorkerReport};
use ktstr_topology::Topology;

use crate::channel::Channel;
use crate::error::{AgentError, Result};
use crate::live::LiveState;
use groups::Groups;
use scheduler::RunningScheduler;

/// Where the cgroup v2 hierarchy is mounted in the guest.
pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";

struct Reporter<'a> {
    channel: &'a Arc<Mutex<Channel>>,
    start: Instant,
}

impl Reporter<'_> {
    fn send(&self, msg: GuestMessage) {
        let mut ch = self.channel.lock().unwrap_or_else(|p| p.into_inner());
        let _ = ch.send(&msg);
    }

    fn event(&self, message: String) {
        self.send(GuestMessage::Event {
            at_ms: self.start.elapsed().as_secs_f64() * 1000.0,
            message,
        });
    }
}

/// A plan job as the agent received it.
pub struct PlanJob {
    /// The Plan.
    pub plan: Plan,
    /// The VM's topology.
    pub topology: Topology,
    /// The scheduler (None: the kernel's own).
    pub scheduler: Option<SchedulerLaunch>,
    /// Injected fault: panic the kernel halfway through the run.
    pub panic_mid_run: bool,
}

/// How the steps ended.
enum StepsEnd {
    /// Every step and hold ran.
    Finished,
    /// The scheduler died (why).
    SchedulerDied(String),
    /// The host asked the plan to stop (`StopPlan`).
    Stopped,
}

/// Runs the plan of `job`, reporting on `channel`; `live` carries the
/// host's requests to stop it early.
pub fn run(job: PlanJob, channel: &Arc<Mutex<Channel>>, live: &LiveState) -> Result<()> {
    live.plan_running.store(true, Ordering::SeqCst);
    let result = run_plan(job, channel, &live.stop_plan);
    live.plan_running.store(false, Ordering::SeqCst);
    result
}

fn run_plan(job: PlanJob, channel: &Arc<Mutex<Channel>>, stop: &AtomicBool) -> Result<()> {
    let PlanJob {
        plan,
        topology,
        scheduler,
        panic_mid_run,
    } = job;
    let r = Reporter {
        channel,
        start: Instant::now(),
    };
    if !plan.files.is_empty() {
        r.event(shipped_files(&plan)?);
    }
    let mut sched = match scheduler.map(|l| attach(&l, &r)) {
        None => None,
        Some(Some(s)) => Some(s),
        // It did not attach: the host has been told why.
        Some(None) => return Ok(()),
    };
    let exe = std::env::current_exe().map_err(|e| AgentError::io("locate", "/proc/self/exe", e))?;
    let mut groups = Groups::new(Path::new(CGROUP_ROOT), &plan, topology, exe)?;
    for def in &plan.cgroups {
        groups.add(def)?;
    }
    groups.start_all()?;
    let t0 = Instant::now();
    let t0_mono_ms = crate::workers::probe::monotonic_ms();
    r.event(format!(
        "{} {}",
        plan.cgroups.len(),
        ktstr_proto::WORKERS_STARTED_EVENT
    ));
    if panic_mid_run {
        let half = Duration::from_secs_f64(plan.duration_s / 2.0);
        std::thread::spawn(move || {
            std::thread::sleep(half);
            crate::fault::panic_kernel();
        });
    }
    let clock = RunClock { t0_mono_ms };
    let mut ops_applied = Vec::new();
    let end = run_steps(
        &plan,
        &mut groups,
        &mut sched,
        &r,
        &clock,
        &mut ops_applied,
        stop,
    )?;
    if matches!(end, StepsEnd::Stopped) {
        r.event("stopped by the host".into());
    }
    let duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let mut workers = groups.finish();
    rebase_progress(&mut workers, t0_mono_ms);
    r.send(GuestMessage::Results {
        workers,
        duration_ms,
        ops_applied,
    });
    if let Some(s) = sched.as_mut() {
        r.send(GuestMessage::BpfDump {
            dump: Box::new(s.take_dump()),
        });
    }
    match (end, sched) {
        (StepsEnd::SchedulerDied(detail), _) => r.send(GuestMessage::Scheduler {
            state: "exited".into(),
            detail,
        }),
        (_, Some(s)) => {
            if let Some(stuck) = s.stop() {
                r.send(GuestMessage::Scheduler {
                    state: "stuck".into(),
                    detail: stuck,
                });
            }
        }
        (_, None) => {}
    }
    Ok(())
}

/// Starts the scheduler `launch` and tells the host whether it attached
/// (and if not, why); None when it did not.
fn attach(launch: &SchedulerLaunch, r: &Reporter) -> Option<RunningScheduler> {
    let (state, detail, running) = match scheduler::start(launch) {
        Ok(s) => ("attached", String::new(), Some(s)),
        Err(e) => ("failed", e.to_string(), None),
    };
    r.send(GuestMessage::Scheduler {
        state: state.into(),
        detail,
    });
    if running.is_some() {
        r.send(GuestMessage::BpfPrograms {
            programs: crate::bpf::loaded_programs(),
        });
    }
    running
}

/// The plan's shipped files as the guest sees them (`/files/x (N bytes)`),
/// or an error naming one that is missing.
fn shipped_files(plan: &Plan) -> Result<String> {
    let mut seen = Vec::new();
    for f in &plan.files {
        let meta =
            std::fs::metadata(&f.guest).map_err(|e| AgentError::io("find", f.guest.clone(), e))?;
        seen.push(format!("{} ({} bytes)", f.guest, meta.len()));
    }
    Ok(format!("shipped files: {}", seen.join(", ")))
}

/// Makes every worker's progress and CPU-span times relative to the
/// run's start (`t0_mono_ms` on the guest's monotonic clock), dropping
/// what ended before it.
pub(crate) fn rebase_progress(workers: &mut [WorkerReport], t0_mono_ms: f64) {
    for w in workers {
        w.progress.retain(|p| p.at_ms >= t0_mono_ms);
        for p in &mut w.progress {
            p.at_ms -= t0_mono_ms;
        }
        w.cpu_spans.retain(|s| s.to_ms >= t0_mono_ms);
        for s in &mut w.cpu_spans {
            s.from_ms = (s.from_ms - t0_mono_ms).max(0.0);
            s.to_ms -= t0_mono_ms;
        }
    }
}

/// The run's clock: ms since it started, on the clock workers use.
struct RunClock {
    t0_mono_ms: f64,
}

impl RunClock {
    fn now_ms(&self) -> f64 {
        crate::workers::probe::monotonic_ms() - self.t0_mono_ms
    }
}

/// Runs every step, unless the scheduler dies or the host stops the plan;
/// notes in `applied` when each round of ops was applied.
fn run_steps(
    plan: &Plan,
    groups: &mut Groups,
    sched: &mut Option<RunningScheduler>,
    r: &Reporter,
    clock: &RunClock,
    applied: &mut Vec<OpsApplied>,
    stop: &AtomicBool,
) -> Result<StepsEnd> {
    let (holds, tail) = schedule::holds(&plan.steps, plan.duration_s);
    for (i, (step, hold)) in plan.steps.iter().zip(holds).enumerate() {
        let rounds = match step.hold {
            Hold::Looped { times } => times,
            _ => 1,
        };
        for _ in 0..rounds {
            let started_ms = clock.now_ms();
            for op in &step.ops {
                groups.apply(op)?;
            }
            applied.push(OpsApplied {
                step: i as u32,
                started_ms,
                done_ms: clock.now_ms(),
            });
            r.event(format!("step {} ({} op(s))", i + 1, step.ops.len()));
            match hold_for(hold / f64::from(rounds), sched, stop) {
                StepsEnd::Finished => {}
                end => return Ok(end),
            }
        }
    }
    Ok(hold_for(tail, sched, stop))
}

/// Waits `secs`, checking the scheduler and the host's stop request.
fn hold_for(secs: f64, sched: &mut Option<RunningScheduler>, stop: &AtomicBool) -> StepsEnd {
    let until = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
    while Instant::now() < until {
        if let Some(why) = sched.as_mut().and_then(RunningScheduler::check) {
            return StepsEnd::SchedulerDied(why);
        }
        if stop.load(Ordering::SeqCst) {
            return StepsEnd::Stopped;
        }
        let left = until.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    StepsEnd::Finished
}
