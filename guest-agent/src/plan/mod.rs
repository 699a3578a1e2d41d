//! Running a scenario Plan in the guest: start the scheduler, build the
//! cgroups and workers, run the steps on a common clock, watch the
//! scheduler, stop everything and report every worker's telemetry.

pub mod groups;
pub mod schedule;
pub mod scheduler;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ktstr_engine::plan::{Hold, Plan};
use ktstr_proto::{GuestMessage, SchedulerLaunch, WorkerReport};
use ktstr_topology::Topology;

use crate::channel::Channel;
use groups::Groups;
use scheduler::RunningScheduler;

/// Where the cgroup v2 hierarchy is mounted in the guest.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

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
    /// The Plan (JSON, parsed here).
    pub plan: serde_json::Value,
    /// The VM's topology.
    pub topology: Topology,
    /// The scheduler (None: the kernel's own).
    pub scheduler: Option<SchedulerLaunch>,
    /// Injected fault: panic the kernel halfway through the run.
    pub panic_mid_run: bool,
}

/// Runs the plan of `job`, reporting on `channel`.
pub fn run(job: PlanJob, channel: &Arc<Mutex<Channel>>) -> Result<(), String> {
    let PlanJob {
        plan,
        topology,
        scheduler,
        panic_mid_run,
    } = job;
    let plan: Plan =
        serde_json::from_value(plan).map_err(|e| format!("the plan does not parse: {e}"))?;
    let r = Reporter {
        channel,
        start: Instant::now(),
    };
    let mut sched = match scheduler {
        None => None,
        Some(launch) => match scheduler::start(&launch) {
            Ok(s) => {
                r.send(GuestMessage::Scheduler {
                    state: "attached".into(),
                    detail: String::new(),
                });
                Some(s)
            }
            Err(detail) => {
                r.send(GuestMessage::Scheduler {
                    state: "failed".into(),
                    detail,
                });
                return Ok(());
            }
        },
    };
    let exe = std::env::current_exe().map_err(|e| format!("locating /init: {e}"))?;
    let mut groups = Groups::new(Path::new(CGROUP_ROOT), &plan, topology, exe)?;
    for def in &plan.cgroups {
        groups.add(def)?;
    }
    groups.start_all()?;
    let t0 = Instant::now();
    let t0_mono_ms = crate::workers::probe::monotonic_ms();
    r.event(format!("{} cgroup(s) started", plan.cgroups.len()));
    if panic_mid_run {
        let half = Duration::from_secs_f64(plan.duration_s / 2.0);
        std::thread::spawn(move || {
            std::thread::sleep(half);
            crate::fault::panic_kernel();
        });
    }
    let died = run_steps(&plan, &mut groups, &mut sched, &r)?;
    let duration_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let mut workers = groups.finish();
    rebase_progress(&mut workers, t0_mono_ms);
    r.send(GuestMessage::Results {
        workers,
        duration_ms,
    });
    match (died, sched) {
        (Some(detail), _) => r.send(GuestMessage::Scheduler {
            state: "exited".into(),
            detail,
        }),
        (None, Some(s)) => s.stop(),
        (None, None) => {}
    }
    Ok(())
}

/// Makes every worker's progress times relative to the run's start
/// (`t0_mono_ms` on the guest's monotonic clock), dropping earlier points.
fn rebase_progress(workers: &mut [WorkerReport], t0_mono_ms: f64) {
    for w in workers {
        w.progress.retain(|p| p.at_ms >= t0_mono_ms);
        for p in &mut w.progress {
            p.at_ms -= t0_mono_ms;
        }
    }
}

/// Runs every step; returns why the scheduler died, if it did.
fn run_steps(
    plan: &Plan,
    groups: &mut Groups,
    sched: &mut Option<RunningScheduler>,
    r: &Reporter,
) -> Result<Option<String>, String> {
    let (holds, tail) = schedule::holds(&plan.steps, plan.duration_s);
    for (i, (step, hold)) in plan.steps.iter().zip(holds).enumerate() {
        let rounds = match step.hold {
            Hold::Looped { times } => times,
            _ => 1,
        };
        for _ in 0..rounds {
            for op in &step.ops {
                groups.apply(op)?;
            }
            r.event(format!("step {} ({} op(s))", i + 1, step.ops.len()));
            if let Some(d) = hold_for(hold / f64::from(rounds), sched) {
                return Ok(Some(d));
            }
        }
    }
    Ok(hold_for(tail, sched))
}

/// Waits `secs`, checking the scheduler; returns why it died, if it did.
fn hold_for(secs: f64, sched: &mut Option<RunningScheduler>) -> Option<String> {
    let until = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
    while Instant::now() < until {
        if let Some(why) = sched.as_mut().and_then(RunningScheduler::check) {
            return Some(why);
        }
        let left = until.saturating_duration_since(Instant::now());
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
    None
}
