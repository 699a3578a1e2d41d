//! What the guest sent during a plan job, collected as it arrives: the
//! workers' reports, timed events and the scheduler's life.

use ktstr_plan::results::{RunResults, WorkerReport};
use ktstr_plan::selftests::{SelftestCase, SelftestInfo};
use ktstr_proto::GuestMessage;
use ktstr_vmm::VmOutcome;
use serde::{Deserialize, Serialize};

/// Something that happened during a run, at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedEvent {
    /// Milliseconds since the plan started.
    pub at_ms: f64,
    /// What happened.
    pub message: String,
}

/// A change of the scheduler's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerEvent {
    /// `attached`, `exited`, `failed` or `stuck` (killed at the end and
    /// still there: the detail holds its kernel stack).
    pub state: String,
    /// Its exit reason, output tail or kernel lines, when it ended.
    pub detail: String,
}

/// Everything a plan job's guest reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    /// Every worker's report.
    pub workers: Vec<WorkerReport>,
    /// Milliseconds the plan ran, per the guest (None: no results came).
    pub duration_ms: Option<f64>,
    /// Timed events.
    pub events: Vec<TimedEvent>,
    /// Scheduler state changes.
    pub scheduler: Vec<SchedulerEvent>,
    /// When each round of step ops was applied.
    #[serde(default)]
    pub ops_applied: Vec<ktstr_plan::results::OpsApplied>,
    /// The BPF programs loaded once the scheduler attached, with the
    /// verifier's instruction counts.
    #[serde(default)]
    pub bpf_programs: Vec<ktstr_plan::results::BpfProgram>,
    /// The scheduler's global variables, named from its BTF, as read when
    /// it died or at the end of the run (the raw maps and BTF are not
    /// kept).
    #[serde(default)]
    pub bpf_globals: Option<ktstr_plan::results::BpfGlobals>,
    /// The selftests the guest listed to run (a selftest job).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selftest_list: Vec<SelftestInfo>,
    /// Each selftest's result: as the guest reported it, and once the VM
    /// has ended also those it never reported (settled by the host).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selftests: Vec<SelftestCase>,
    /// The selftest the guest started last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selftest_running: Option<String>,
}

impl Telemetry {
    /// Takes one message from the guest.
    pub fn take(&mut self, m: &GuestMessage) {
        match m {
            GuestMessage::Results {
                workers,
                duration_ms,
                ops_applied,
            } => {
                self.workers = workers.clone();
                self.duration_ms = Some(*duration_ms);
                self.ops_applied = ops_applied.clone();
            }
            GuestMessage::Scheduler { state, detail } => self.scheduler.push(SchedulerEvent {
                state: state.clone(),
                detail: detail.clone(),
            }),
            GuestMessage::BpfPrograms { programs } => self.bpf_programs = programs.clone(),
            GuestMessage::BpfDump { dump } => {
                self.bpf_globals = Some(ktstr_vmm::introspect::decode_bpf_globals(dump));
            }
            GuestMessage::SelftestList { tests } => self.selftest_list = tests.clone(),
            GuestMessage::SelftestStarted { name } => self.selftest_running = Some(name.clone()),
            GuestMessage::SelftestCase { case } => self.selftests.push((**case).clone()),
            GuestMessage::Event { at_ms, message } => self.events.push(TimedEvent {
                at_ms: *at_ms,
                message: message.clone(),
            }),
            _ => {}
        }
    }

    /// Problems outside the results: scheduler failures (a verifier
    /// rejection names the `kernel` release when known), VM failures, no
    /// results at all.
    pub fn failures(&self, o: &VmOutcome, kernel: Option<&str>) -> Vec<String> {
        let mut v = Vec::new();
        // The kernel's reason leads; the whole detail (output tail, the
        // kernel's dump) stays in the sidecar's telemetry.
        for s in &self.scheduler {
            if s.state != "attached" {
                let why = ktstr_plan::sched_exit::headline_on(&s.detail, kernel);
                let first = s.detail.lines().map(str::trim).find(|l| !l.is_empty());
                v.push(match first.filter(|f| *f != why) {
                    Some(f) => format!("scheduler {}: {why}\n  ({f})", s.state),
                    None => format!("scheduler {}: {why}", s.state),
                });
            }
        }
        let attached = self.scheduler.iter().all(|s| s.state == "attached");
        if !o.is_clean() {
            v.push(o.failure_report());
        } else if self.duration_ms.is_none() && attached {
            v.push("the guest sent no results".into());
        }
        v
    }

    /// The reports grouped for claims and checks.
    pub fn run_results(&self) -> RunResults {
        let mut r = RunResults::from_reports(&self.workers);
        r.ops_applied = self.ops_applied.clone();
        r
    }
}

/// The digest of a failed run's state, for the verdict's notes: the
/// scheduler's numeric variables of `.bss` and `.data` (at most 12, the
/// non-zero ones first) and each CPU in the monitor's last sample.
pub fn failure_digest(
    globals: Option<&ktstr_plan::results::BpfGlobals>,
    monitor: Option<&ktstr_plan::monitor::MonitorReport>,
) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(g) = globals {
        let mut vars: Vec<&ktstr_plan::results::BpfGlobal> = g
            .globals
            .iter()
            .filter(|v| v.number.is_some() && !v.map.ends_with(".rodata"))
            .collect();
        vars.sort_by_key(|v| v.number == Some(0.0));
        let shown: Vec<String> = vars
            .iter()
            .take(12)
            .map(|v| format!("{}={}", v.name, v.value))
            .collect();
        if !shown.is_empty() {
            notes.push(format!(
                "scheduler data at {}: {} (all {} variables in the sidecar's \
                 telemetry.bpf_globals)",
                g.when,
                shown.join(" "),
                g.globals.len()
            ));
        }
    }
    if let Some(last) = monitor.and_then(|m| m.samples.last()) {
        let cpus: Vec<String> = last
            .cpus
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let dsq = c.local_dsq.map_or(String::new(), |d| format!(" dsq {d}"));
                format!("{i}: {} runnable{dsq}, on {}", c.nr_running, c.curr_comm)
            })
            .collect();
        notes.push(format!(
            "CPUs at {:.2} s (host-side monitor): {}",
            last.at_ms as f64 / 1000.0,
            cpus.join("; ")
        ));
    }
    notes
}
