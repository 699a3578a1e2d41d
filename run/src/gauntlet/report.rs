//! What a sweep did: one record per job, what the budget left out, what
//! no topology fits; as a matrix of text, JUnit XML, and `gauntlet.json`
//! in the run directory (what `--rerun-failed` reads back).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ktstr_plan::selftests::SelftestCase;
use ktstr_plan::verdict::Outcome;
use serde::{Deserialize, Serialize};

use super::expand::{Cell, GauntletJob, Unfit};
use crate::error::RunError;
use crate::job::JobResult;
use crate::selftest::SELFTESTS_SCHEDULER;

/// The file a sweep's report is kept in, in its run directory.
pub const REPORT_FILE: &str = "gauntlet.json";

/// How one job of a sweep came out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its cell.
    pub cell: CellRecord,
    /// Which repetition (1-based).
    pub repetition: u32,
    /// The outcome, the cell's expectation applied (a cell that expects
    /// failure and failed is a Pass).
    pub outcome: Outcome,
    /// Seconds the VM lived.
    pub seconds: f64,
    /// Why it did not pass, one line each.
    pub reasons: Vec<String>,
    /// Its sidecar, when a VM ran.
    pub sidecar: Option<PathBuf>,
    /// The last console lines, when a VM ran and did not end cleanly.
    pub console_tail: Vec<String>,
    /// Each selftest's result (a selftest job).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub selftests: Vec<SelftestCase>,
}

/// A cell as a report records it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CellRecord {
    /// The scenario.
    pub scenario: String,
    /// The preset's name, or the topology.
    pub preset: String,
    /// The scheduler with its arguments.
    pub scheduler: String,
    /// The kernel identifier.
    pub kernel: String,
}

impl From<&Cell> for CellRecord {
    fn from(c: &Cell) -> Self {
        CellRecord {
            scenario: c.scenario.clone(),
            preset: c.preset.clone(),
            scheduler: c.scheduler.clone(),
            kernel: c.kernel.clone(),
        }
    }
}

/// A whole sweep.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GauntletReport {
    /// The run's id.
    pub run_id: String,
    /// One record per job that ran (or was skipped).
    pub jobs: Vec<JobRecord>,
    /// Cells the budget left out.
    pub left_out: Vec<CellRecord>,
    /// Scenarios no selected topology fits.
    pub unfit: Vec<(String, String)>,
    /// Jobs not started because the sweep was interrupted.
    pub not_run: Vec<CellRecord>,
    /// Whether Ctrl-C (or a signal) stopped the sweep.
    pub interrupted: bool,
    /// Seconds the sweep took.
    pub wall_s: f64,
}

/// The record of `job` and its result.
pub fn record(job: &GauntletJob, result: &Result<JobResult, RunError>) -> JobRecord {
    let cell = CellRecord::from(&job.cell);
    match result {
        Ok(r) => {
            let clean = r.vm.as_ref().is_some_and(ktstr_vmm::VmOutcome::is_clean);
            JobRecord {
                cell,
                repetition: job.repetition.index,
                outcome: r.verdict.outcome,
                seconds: r.seconds,
                reasons: r.verdict.reasons.clone(),
                sidecar: r.sidecar.clone(),
                console_tail: match &r.vm {
                    Some(vm) if !clean => vm.console_tail.clone(),
                    _ => Vec::new(),
                },
                selftests: r.telemetry.selftests.clone(),
            }
        }
        Err(e) => JobRecord {
            cell,
            repetition: job.repetition.index,
            outcome: Outcome::Fail,
            seconds: 0.0,
            reasons: vec![format!("the job could not run: {e}")],
            sidecar: None,
            console_tail: Vec::new(),
            selftests: Vec::new(),
        },
    }
}

impl GauntletReport {
    /// Records what a sweep planned beside what ran.
    pub fn new(run_id: &str, left_out: &[Cell], unfit: &[Unfit]) -> Self {
        GauntletReport {
            run_id: run_id.to_string(),
            left_out: left_out.iter().map(CellRecord::from).collect(),
            unfit: unfit
                .iter()
                .map(|u| (u.scenario.clone(), u.why.clone()))
                .collect(),
            ..Default::default()
        }
    }

    /// Whether every job met its expectation (none failed).
    pub fn passed(&self) -> bool {
        !self.interrupted && self.jobs.iter().all(|j| j.outcome != Outcome::Fail)
    }

    /// The cells with a failed job.
    pub fn failed_cells(&self) -> BTreeSet<CellRecord> {
        self.jobs
            .iter()
            .filter(|j| j.outcome == Outcome::Fail)
            .map(|j| j.cell.clone())
            .collect()
    }

    /// Writes the report as `gauntlet.json` into `run_dir`.
    pub fn save(&self, run_dir: &Path) -> Result<PathBuf, RunError> {
        std::fs::create_dir_all(run_dir).map_err(|e| RunError::io(run_dir, e))?;
        let path = run_dir.join(REPORT_FILE);
        let json = serde_json::to_vec_pretty(self).map_err(|e| RunError::io(&path, e.into()))?;
        std::fs::write(&path, json).map_err(|e| RunError::io(&path, e))?;
        Ok(path)
    }

    /// The newest sweep's report under `runs` (by its run directory's
    /// modification time), if any.
    pub fn newest(runs: &Path) -> Option<(PathBuf, GauntletReport)> {
        let mut found: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(runs)
            .ok()?
            .flatten()
            .map(|d| d.path().join(REPORT_FILE))
            .filter(|p| p.is_file())
            .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
            .collect();
        found.sort();
        let (_, path) = found.pop()?;
        let text = std::fs::read(&path).ok()?;
        Some((path.clone(), serde_json::from_slice(&text).ok()?))
    }

    /// The matrix: one table per (scheduler, kernel), a row per scenario,
    /// a column per preset, each cell its worst outcome over the
    /// repetitions and the seconds they took.
    pub fn matrix(&self) -> String {
        let mut groups: BTreeMap<(String, String), Vec<&JobRecord>> = BTreeMap::new();
        for j in &self.jobs {
            groups
                .entry((j.cell.scheduler.clone(), j.cell.kernel.clone()))
                .or_default()
                .push(j);
        }
        let mut out = String::new();
        for ((sched, kernel), jobs) in groups {
            out.push_str(&format!("{sched} on kernel {kernel}:\n"));
            match sched == SELFTESTS_SCHEDULER {
                true => out.push_str(&selftest_table(&jobs)),
                false => out.push_str(&table(&jobs)),
            }
        }
        out
    }

    /// JUnit XML: a suite per (scheduler, kernel), a test case per job
    /// (failure message: the reasons; system-out: the console tail).
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        let mut report = Report::new(format!("ktstr gauntlet {}", self.run_id));
        report.set_time(Duration::from_secs_f64(self.wall_s.max(0.0)));
        let mut suites: BTreeMap<String, TestSuite> = BTreeMap::new();
        for j in &self.jobs {
            let name = format!("{} on {}", j.cell.scheduler, j.cell.kernel);
            let suite = suites
                .entry(name.clone())
                .or_insert_with(|| TestSuite::new(name));
            if !j.selftests.is_empty() {
                let class = format!("selftests::{}", j.cell.preset);
                suite.add_test_cases(crate::selftest::junit_cases(&j.selftests, &class));
                continue;
            }
            let mut status = match j.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Skip => TestCaseStatus::skipped(),
                Outcome::Fail | Outcome::Inconclusive => {
                    TestCaseStatus::non_success(NonSuccessKind::Failure)
                }
            };
            if j.outcome != Outcome::Pass && !j.reasons.is_empty() {
                status.set_message(j.reasons.join("\n"));
                status.set_type(j.outcome.label());
            }
            let mut case = TestCase::new(
                format!(
                    "{}::{}::run{}",
                    j.cell.scenario, j.cell.preset, j.repetition
                ),
                status,
            );
            case.set_classname(j.cell.scenario.clone());
            case.set_time(Duration::from_secs_f64(j.seconds.max(0.0)));
            if !j.console_tail.is_empty() {
                case.set_system_out(j.console_tail.join("\n"));
            }
            suite.add_test_case(case);
        }
        report.add_test_suites(suites.into_values());
        report.to_string().unwrap_or_default()
    }
}

/// One kernel's selftest jobs: a row per test, a column per preset (and
/// repetition), then the reasons of jobs that ran no test.
fn selftest_table(jobs: &[&JobRecord]) -> String {
    let columns: Vec<(String, Vec<SelftestCase>)> = jobs
        .iter()
        .map(|j| {
            let label = match j.repetition {
                1 => j.cell.preset.clone(),
                n => format!("{} run{n}", j.cell.preset),
            };
            (label, j.selftests.clone())
        })
        .collect();
    let mut out = String::new();
    for line in crate::selftest::matrix(&columns).lines() {
        out.push_str(&format!("  {line}\n"));
    }
    for j in jobs.iter().filter(|j| j.selftests.is_empty()) {
        out.push_str(&format!(
            "  {}: {} {}\n",
            j.cell.preset,
            j.outcome.label(),
            j.reasons.join("; ")
        ));
    }
    out
}

/// One (scheduler, kernel) table.
fn table(jobs: &[&JobRecord]) -> String {
    let presets: BTreeSet<&str> = jobs.iter().map(|j| j.cell.preset.as_str()).collect();
    let scenarios: BTreeSet<&str> = jobs.iter().map(|j| j.cell.scenario.as_str()).collect();
    let cell_text = |scenario: &str, preset: &str| -> String {
        let runs: Vec<&&JobRecord> = jobs
            .iter()
            .filter(|j| j.cell.scenario == scenario && j.cell.preset == preset)
            .collect();
        let Some(worst) = runs.iter().map(|j| j.outcome).max() else {
            return "-".into();
        };
        let secs: f64 = runs.iter().map(|j| j.seconds).sum();
        match runs.len() {
            1 => format!("{} {secs:.1}s", worst.label()),
            n => format!("{} x{n} {secs:.1}s", worst.label()),
        }
    };
    let width = scenarios.iter().map(|s| s.len()).max().unwrap_or(8);
    let cols: Vec<usize> = presets.iter().map(|p| p.len().max(18)).collect();
    let mut out = format!("  {:width$}", "");
    for (p, w) in presets.iter().zip(&cols) {
        out.push_str(&format!("  {p:w$}"));
    }
    out.push('\n');
    for s in &scenarios {
        out.push_str(&format!("  {s:width$}"));
        for (p, w) in presets.iter().zip(&cols) {
            out.push_str(&format!("  {:w$}", cell_text(s, p)));
        }
        out.push('\n');
    }
    out
}
