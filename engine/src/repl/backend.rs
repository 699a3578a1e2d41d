//! The live backend: every API call of a REPL statement is carried out in
//! the guest at once (through [`LiveGuest`]) instead of being recorded
//! into a Plan. A handle's change (`a.cpuset(llc(1))`) becomes the op
//! that makes it, a step runs its ops and holds, a claim is judged on the
//! telemetry so far. What the guest did goes into the session's
//! [`Record`] for `save()`; what the user should read goes into `notes`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ktstr_plan::claims::{ClaimVerdict, MetricExpr, Scope};
use ktstr_plan::live::{LiveAnswer, LiveGuest, LiveRequest, Placement};
use ktstr_plan::results::{RunResults, WorkerReport};
use ktstr_plan::{CgroupDef, Hold, Op, SchedulerSpec, DEFAULT_DURATION_S};

use super::record::Record;
use crate::backend::{Action, ScenarioBackend};

/// Telemetry so far, as the guest answered `Stats`.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Seconds since the first cgroup started.
    pub elapsed_s: f64,
    /// Every worker's report.
    pub workers: Vec<WorkerReport>,
    /// Where each cgroup may run and runs now.
    pub placement: Vec<Placement>,
}

/// A REPL's live backend and session state.
pub struct LiveBackend {
    /// The guest.
    pub guest: Box<dyn LiveGuest>,
    /// What the session did, for `save()`.
    pub record: Record,
    /// Lines for the user, printed after the statement.
    pub notes: Vec<String>,
    /// Set by Ctrl-C: holds and sleeps end early.
    pub interrupt: Arc<AtomicBool>,
    /// `scheduler(..)` also starts it (a script run with `--script`).
    pub autostart: bool,
    /// The scheduler named last (`scheduler(..)`).
    pub scheduler: Option<SchedulerSpec>,
    duration_s: f64,
    cgroups: BTreeMap<String, CgroupDef>,
}

impl LiveBackend {
    /// A backend driving `guest`.
    pub fn new(guest: Box<dyn LiveGuest>, interrupt: Arc<AtomicBool>) -> Self {
        let mut record = Record::default();
        record.topology(guest.topology());
        LiveBackend {
            guest,
            record,
            notes: Vec::new(),
            interrupt,
            autostart: false,
            scheduler: None,
            duration_s: DEFAULT_DURATION_S,
            cgroups: BTreeMap::new(),
        }
    }

    /// Sends `request`; a `Failed` answer or a guest that cannot be asked
    /// is an error; anything the guest reported meanwhile becomes a note.
    pub fn call(&mut self, request: LiveRequest) -> Result<LiveAnswer, String> {
        let answer = self.guest.call(request);
        self.collect_notices();
        match answer? {
            LiveAnswer::Failed { error } => Err(error),
            a => Ok(a),
        }
    }

    /// Turns what the guest reported on its own into notes.
    pub fn collect_notices(&mut self) {
        for n in self.guest.notices() {
            let summary = ktstr_plan::sched_exit::headline(&n.detail);
            if n.message.contains("scheduler") {
                self.record.scheduler_ended(&summary);
                self.notes.push(format!(
                    "! {}: {summary} (sched_state().last_exit has the whole report); \
                     the session goes on under the kernel's scheduler",
                    n.message
                ));
            } else {
                self.notes
                    .push(format!("! {}: {}", n.message, n.detail.trim()));
            }
        }
    }

    /// Carries out `op` at once.
    pub fn run_op(&mut self, op: Op) -> Result<(), String> {
        self.call(LiveRequest::Op { op: op.clone() })?;
        self.track(&op);
        self.record.op(op);
        Ok(())
    }

    /// Keeps the definitions of the cgroups that exist in step with `op`.
    fn track(&mut self, op: &Op) {
        match op {
            Op::AddCgroup { cgroup } => {
                self.cgroups.insert(cgroup.name.clone(), cgroup.clone());
            }
            Op::RemoveCgroup { name } => {
                self.cgroups.remove(name);
            }
            Op::SetCpuset { name, cpuset } => {
                self.with(name, |d| d.cpuset = Some(cpuset.clone()));
            }
            Op::ClearCpuset { name } => self.with(name, |d| d.cpuset = None),
            Op::SwapCpusets { a, b } => {
                let (ca, cb) = (self.cpuset_of(a), self.cpuset_of(b));
                self.with(a, |d| d.cpuset = cb);
                self.with(b, |d| d.cpuset = ca);
            }
            Op::Spawn { name, count } => self.with(name, |d| d.workers += count),
            Op::SetAffinity { name, affinity } => {
                self.with(name, |d| d.affinity = affinity.clone());
            }
            Op::SetNice { name, nice } => self.with(name, |d| d.nice = *nice),
            Op::SetPolicy { name, policy } => self.with(name, |d| d.policy = *policy),
            Op::StopCgroup { .. } | Op::MoveTasks { .. } => {}
        }
    }

    fn with(&mut self, name: &str, f: impl FnOnce(&mut CgroupDef)) {
        if let Some(d) = self.cgroups.get_mut(name) {
            f(d);
        }
    }

    fn cpuset_of(&self, name: &str) -> Option<ktstr_plan::cpuset::CpusetSpec> {
        self.cgroups.get(name).and_then(|d| d.cpuset.clone())
    }

    /// Telemetry so far.
    pub fn snapshot(&mut self) -> Result<Snapshot, String> {
        match self.call(LiveRequest::Stats)? {
            LiveAnswer::Stats {
                elapsed_ms,
                workers,
                placement,
            } => Ok(Snapshot {
                elapsed_s: elapsed_ms / 1000.0,
                workers,
                placement,
            }),
            other => Err(format!("the guest answered {other:?} to stats")),
        }
    }

    /// Starts `spec` in the guest.
    pub fn start_scheduler(&mut self, spec: SchedulerSpec) -> Result<String, String> {
        let answer = self.call(LiveRequest::StartScheduler {
            name: spec.name.clone(),
            args: spec.args.clone(),
        })?;
        self.record.scheduler_started(spec);
        Ok(done_message(answer))
    }

    /// Stops the running scheduler.
    pub fn stop_scheduler(&mut self) -> Result<String, String> {
        let answer = self.call(LiveRequest::StopScheduler)?;
        let message = done_message(answer);
        self.record.scheduler_ended(&message);
        Ok(message)
    }

    /// Stops every worker and the scheduler, removes every cgroup.
    pub fn reset(&mut self) -> Result<(), String> {
        self.call(LiveRequest::Reset)?;
        let names: Vec<String> = self.cgroups.keys().cloned().collect();
        for name in names {
            self.record.op(Op::RemoveCgroup { name });
        }
        self.cgroups.clear();
        self.record.scheduler_ended("reset()");
        Ok(())
    }

    /// Waits `secs`, or until Ctrl-C; notices that arrive meanwhile become
    /// notes. A wait starts a new step in the record.
    pub fn hold(&mut self, secs: f64) -> Result<(), String> {
        let until = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
        let result = loop {
            if self.interrupt.load(Ordering::SeqCst) {
                break Err("interrupted (Ctrl-C)".to_string());
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Ok(());
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        };
        self.collect_notices();
        self.record.boundary();
        result
    }

    fn add_cgroup(&mut self, def: CgroupDef) -> Result<(), String> {
        if self.cgroups.contains_key(&def.name) {
            return Err(format!(
                "cgroup `{}` exists; `remove_cgroup(\"{}\")` first",
                def.name, def.name
            ));
        }
        let answer = self.call(LiveRequest::AddCgroup {
            cgroup: def.clone(),
        })?;
        self.notes.push(done_message(answer));
        self.cgroups.insert(def.name.clone(), def.clone());
        self.record.cgroup(def);
        Ok(())
    }

    /// A handle's change, as the ops that make it.
    fn update_cgroup(&mut self, new: CgroupDef) -> Result<(), String> {
        let old = self
            .cgroups
            .get(&new.name)
            .cloned()
            .ok_or_else(|| format!("no cgroup `{}` now", new.name))?;
        if old.workers != new.workers || old.work != new.work || old.comm != new.comm {
            return Err(format!(
                "cgroup `{}` is running: its workers, work and comm stay; use \
                 spawn_workers(..), or remove_cgroup(..) and a new cgroup(..)",
                new.name
            ));
        }
        let name = new.name.clone();
        let mut ops = Vec::new();
        if old.cpuset != new.cpuset {
            ops.push(match &new.cpuset {
                Some(c) => Op::SetCpuset {
                    name: name.clone(),
                    cpuset: c.clone(),
                },
                None => Op::ClearCpuset { name: name.clone() },
            });
        }
        if old.nice != new.nice {
            ops.push(Op::SetNice {
                name: name.clone(),
                nice: new.nice,
            });
        }
        if old.policy != new.policy {
            ops.push(Op::SetPolicy {
                name: name.clone(),
                policy: new.policy,
            });
        }
        if old.affinity != new.affinity {
            ops.push(Op::SetAffinity {
                name,
                affinity: new.affinity.clone(),
            });
        }
        for op in ops {
            self.run_op(op)?;
        }
        Ok(())
    }

    fn step(&mut self, step: ktstr_plan::Step) -> Result<(), String> {
        let (rounds, secs) = match step.hold {
            Hold::Frac { f } => (1, f * self.duration_s),
            Hold::Fixed { secs } => (1, secs),
            Hold::Looped { times } => (times, 0.0),
        };
        for _ in 0..rounds {
            for op in &step.ops {
                self.run_op(op.clone())?;
            }
            if rounds > 1 {
                self.record.boundary();
            }
        }
        self.hold(secs)
    }

    fn claim(&mut self, claim: ktstr_plan::claims::Claim) -> Result<(), String> {
        let snap = self.snapshot()?;
        let results = RunResults::from_reports(&snap.workers);
        let outcome = claim.evaluate(&results);
        let verdict = match outcome.verdict {
            ClaimVerdict::Pass => "PASS",
            ClaimVerdict::Fail => "FAIL",
            ClaimVerdict::Inconclusive => "UNKNOWN",
        };
        let value = outcome
            .value
            .map_or_else(|| outcome.detail.clone(), |v| format!("{v:.3}"));
        self.notes
            .push(format!("{verdict} {}: {value}", claim.label));
        self.record.claim(claim);
        Ok(())
    }
}

/// The message of a `Done` answer.
fn done_message(a: LiveAnswer) -> String {
    match a {
        LiveAnswer::Done { message } => message,
        other => format!("{other:?}"),
    }
}

impl ScenarioBackend for LiveBackend {
    fn apply(&mut self, action: Action) -> Result<(), String> {
        match action {
            Action::Scenario {
                name, description, ..
            } => self.record.name(name, description),
            Action::Duration(s) => self.duration_s = s,
            Action::Topology(t) => self.notes.push(format!(
                "topology({t}) ignored: the live VM is {}",
                self.guest.topology()
            )),
            Action::Constrain { name, .. } => {
                self.notes
                    .push(format!("{name}(..) ignored in a live session"));
            }
            Action::Scheduler(spec) => {
                self.scheduler = Some(spec.clone());
                if self.autostart {
                    let message = self.start_scheduler(spec)?;
                    self.notes.push(message);
                }
            }
            Action::Threshold(k, v) => self.record.threshold(k, v),
            Action::KernelMin(_) | Action::KernelConfig(_) | Action::ExpectFail(_) => {}
            Action::Cgroup(def) => self.add_cgroup(def)?,
            Action::UpdateCgroup(def) => self.update_cgroup(def)?,
            Action::Step(step) => self.step(step)?,
            Action::Claim(c) => self.claim(c)?,
            Action::ShipFile(f) => {
                return Err(format!(
                    "a live guest takes files only at boot: start the session with \
                     `-i {}:{}`",
                    f.host, f.guest
                ))
            }
        }
        Ok(())
    }
}

/// A metric of `scope` from `results`, None when it cannot be computed.
pub fn metric(results: &RunResults, scope: &Scope, name: &str) -> Option<f64> {
    MetricExpr::Metric {
        scope: scope.clone(),
        name: name.to_string(),
    }
    .eval(results)
    .ok()
}
