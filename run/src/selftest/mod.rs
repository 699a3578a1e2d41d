//! Selftest jobs (`ktstr selftest`, a gauntlet's `selftests = true`): the
//! kernel's sched_ext selftests runner in the guest, one verdict per
//! test. The guest lists the tests, runs each in a runner of its own and
//! reports each as it ends; here the tests the guest never reported are
//! settled (the one it was running when it went down, and those it never
//! reached), a watchdog ends a guest that stops answering, and the job's
//! verdict is made of the tests'.

use std::path::PathBuf;
use std::time::Duration;

use ktstr_kernel::{BootKernel, KernelCache, Observer};
use ktstr_plan::selftests::{SelftestCase, SelftestSpec, SelftestStatus};
use ktstr_plan::verdict::{Outcome, Verdict};
use ktstr_plan::Plan;
use ktstr_topology::Topology;
use ktstr_vmm::initramfs::GuestFile;
use ktstr_vmm::VmOutcome;

use crate::telemetry::Telemetry;

mod report;
mod watchdog;

pub use report::{junit, junit_cases, matrix, topology_of};
pub use watchdog::Watchdog;

/// The name of a selftest job's plan (the `scenario` column in stats).
pub const SELFTESTS_NAME: &str = "selftests";

/// The scheduler column of a selftest job in a sweep's matrix: each test
/// loads its own.
pub const SELFTESTS_SCHEDULER: &str = "sched_ext selftests";

/// Where the runner goes in the guest.
pub const GUEST_RUNNER: &str = "/selftests/runner";

/// The most tests a VM's time limit is sized for (6.12 has 21).
pub const MAX_TESTS: u64 = 64;

/// How long past the per-test limit the guest may stay silent before the
/// watchdog ends it (killing a test and waiting for sched_ext to leave
/// take up to 11 s in the guest).
pub const SILENCE_SLACK_S: u64 = 60;

/// A selftest job's work: which tests, their limit, and which runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelftestJob {
    /// Which tests and how long each may take.
    pub spec: SelftestSpec,
    /// A runner file to use instead of the kernel's (another tree's, a
    /// fixture).
    pub runner: Option<PathBuf>,
}

/// The plan recorded for a selftest job: no cgroups, no claims, the
/// topology fixed.
pub fn plan(job: &SelftestJob, topology: Topology) -> Plan {
    let description = match &job.spec.filter {
        Some(f) => format!("the kernel's sched_ext selftests matching `{f}`"),
        None => "the kernel's sched_ext selftests".to_string(),
    };
    Plan::bare(
        SELFTESTS_NAME,
        "tools/testing/selftests/sched_ext",
        description,
        0.0,
        topology,
    )
}

/// The runner to ship: the job's own file, else the kernel entry's
/// (built now for an entry that predates it); `Err` says why there is
/// none.
pub fn runner_file(
    job: &SelftestJob,
    kernel: &BootKernel,
    cache: &KernelCache,
    observer: &dyn Observer,
) -> Result<GuestFile, String> {
    let host = match (&job.runner, kernel) {
        (Some(path), _) if path.is_file() => path.clone(),
        (Some(path), _) => return Err(format!("selftests runner {}: not a file", path.display())),
        (None, BootKernel::Entry(entry)) => {
            let entry = ktstr_kernel::selftests::ensure_runner(cache, entry.clone(), observer)
                .map_err(|e| e.to_string())?;
            entry.selftests_runner().ok_or_else(|| {
                format!(
                    "kernel {} has no sched_ext selftests (its tree has no \
                     tools/testing/selftests/sched_ext)",
                    entry.manifest.key
                )
            })?
        }
        (None, BootKernel::Image { .. }) => {
            return Err(
                "a bare kernel image has no selftests runner: give one with --runner".into(),
            )
        }
    };
    Ok(GuestFile {
        host,
        guest: GUEST_RUNNER.into(),
    })
}

/// The VM's time limit beyond boot: every test at its limit, plus slack.
pub fn time_limit(spec: &SelftestSpec) -> Duration {
    Duration::from_secs(MAX_TESTS * (spec.test_timeout_s + 15) + 120)
}

/// Every listed test's result: the guest's, else the test it was running
/// when it went down (with what the host saw), else not run.
pub fn settle(
    telemetry: &Telemetry,
    outcome: &VmOutcome,
    silent_s: Option<u64>,
) -> Vec<SelftestCase> {
    let down = match silent_s {
        Some(s) => format!("the guest sent nothing for {s} s; ended by the host"),
        None => outcome.headline(),
    };
    let tail: Vec<&str> = outcome
        .console_tail
        .iter()
        .rev()
        .take(20)
        .rev()
        .map(String::as_str)
        .collect();
    let running = telemetry.selftest_running.as_deref();
    telemetry
        .selftest_list
        .iter()
        .map(|t| {
            if let Some(c) = telemetry.selftests.iter().find(|c| c.name == t.name) {
                return c.clone();
            }
            let (status, output) = match running {
                Some(r) if r == t.name => (
                    SelftestStatus::KernelDown {
                        detail: down.clone(),
                    },
                    tail.join("\n"),
                ),
                Some(r) => (
                    SelftestStatus::NotRun {
                        why: format!("the guest went down during {r}"),
                    },
                    String::new(),
                ),
                None => (
                    SelftestStatus::NotRun {
                        why: format!("the guest went down before the first test: {down}"),
                    },
                    String::new(),
                ),
            };
            SelftestCase {
                name: t.name.clone(),
                status,
                duration_ms: 0,
                output,
            }
        })
        .collect()
}

/// The job's verdict from its tests: a failure per test that did not pass
/// or skip (the tests never run counted in one), and any VM failure.
pub fn judge(cases: &[SelftestCase], outcome: &VmOutcome) -> Verdict {
    let mut reasons = Vec::new();
    let mut not_run = Vec::new();
    for c in cases {
        let why = match &c.status {
            SelftestStatus::Pass | SelftestStatus::Skip => continue,
            SelftestStatus::NotRun { .. } => {
                not_run.push(c.name.as_str());
                continue;
            }
            SelftestStatus::Fail => "not ok".to_string(),
            SelftestStatus::TimedOut { after_s } => format!("timed out after {after_s} s"),
            SelftestStatus::Crashed { code } => {
                format!("the runner exited with {code} before its result")
            }
            SelftestStatus::KernelDown { detail } => format!("the guest went down: {detail}"),
        };
        let last = c.output.lines().rev().find(|l| !l.trim().is_empty());
        reasons.push(match last {
            Some(l) => format!("selftest {}: {why}\n  ({})", c.name, l.trim()),
            None => format!("selftest {}: {why}", c.name),
        });
    }
    if !not_run.is_empty() {
        reasons.push(format!(
            "{} selftest(s) not run: {}",
            not_run.len(),
            not_run.join(", ")
        ));
    }
    if cases.is_empty() || !outcome.is_clean() && reasons.is_empty() {
        reasons.push(match outcome.is_clean() {
            true => "the guest ran no selftests".to_string(),
            false => outcome.failure_report(),
        });
    }
    let passed = cases
        .iter()
        .filter(|c| c.status == SelftestStatus::Pass)
        .count();
    let skipped = cases
        .iter()
        .filter(|c| c.status == SelftestStatus::Skip)
        .count();
    Verdict {
        outcome: if reasons.is_empty() {
            Outcome::Pass
        } else {
            Outcome::Fail
        },
        reasons,
        thresholds: Default::default(),
        claims: vec![],
        notes: vec![format!(
            "selftests: {passed} passed, {skipped} skipped, {} failed or not run, of {}",
            cases.len() - passed - skipped,
            cases.len()
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ktstr_plan::selftests::SelftestInfo;
    use ktstr_vmm::{BackendKind, VmEnd};

    fn outcome(end: VmEnd, tail: &[&str]) -> VmOutcome {
        VmOutcome {
            backend: BackendKind::QemuTcg,
            end,
            ready_ms: Some(1.0),
            lifetime_ms: 2.0,
            report: None,
            exit_code: None,
            agent_errors: vec![],
            protocol_errors: vec![],
            console_tail: tail.iter().map(|s| s.to_string()).collect(),
            backend_diagnostics: String::new(),
            console_log: "console.log".into(),
            monitor: None,
        }
    }

    fn telemetry(
        listed: &[&str],
        done: &[(&str, SelftestStatus)],
        running: Option<&str>,
    ) -> Telemetry {
        Telemetry {
            selftest_list: listed
                .iter()
                .map(|n| SelftestInfo {
                    name: n.to_string(),
                    description: String::new(),
                })
                .collect(),
            selftests: done
                .iter()
                .map(|(n, s)| SelftestCase {
                    name: n.to_string(),
                    status: s.clone(),
                    duration_ms: 10,
                    output: format!("{n} out"),
                })
                .collect(),
            selftest_running: running.map(str::to_string),
            ..Telemetry::default()
        }
    }

    #[test]
    fn a_guest_that_went_down_settles_the_running_test_and_the_rest() {
        let t = telemetry(
            &["a", "b", "c", "d"],
            &[("a", SelftestStatus::Pass)],
            Some("b"),
        );
        let panic = VmEnd::KernelPanic {
            message: "Kernel panic - not syncing: sysrq triggered crash".into(),
        };
        let o = outcome(panic, &["[ 7.2] Kernel panic - not syncing", "[ 7.3] end"]);
        let cases = settle(&t, &o, None);
        assert_eq!(cases.len(), 4);
        assert_eq!(cases[0].status, SelftestStatus::Pass);
        match &cases[1].status {
            SelftestStatus::KernelDown { detail } => assert!(detail.contains("sysrq"), "{detail}"),
            s => panic!("{s:?}"),
        }
        assert!(cases[1].output.contains("Kernel panic"));
        for c in &cases[2..] {
            assert_eq!(
                c.status,
                SelftestStatus::NotRun {
                    why: "the guest went down during b".into()
                }
            );
        }
        let v = judge(&cases, &o);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.reasons.len(), 2, "{:?}", v.reasons);
        assert!(v.reasons[1].contains("2 selftest(s) not run: c, d"));
        // A silent guest ended by the watchdog says so.
        let cases = settle(&t, &outcome(VmEnd::Interrupted, &[]), Some(180));
        assert!(matches!(&cases[1].status,
            SelftestStatus::KernelDown { detail } if detail.contains("nothing for 180 s")));
    }

    #[test]
    fn the_verdict_passes_only_when_every_test_passed_or_skipped() {
        let clean = VmOutcome {
            report: Some(ktstr_proto::GuestReport {
                kernel_release: "6.12".into(),
                layout: ktstr_topology::CpuLayout {
                    cpus: vec![0],
                    llcs: vec![vec![0]],
                    smt_siblings: vec![vec![0]],
                    numa_nodes: vec![],
                    distances: vec![],
                },
                sched_ext_state: None,
                cmdline: String::new(),
                mem_total_kib: 1,
                warnings: vec![],
            }),
            ..outcome(VmEnd::Completed, &[])
        };
        let ok = telemetry(
            &["a", "b"],
            &[("a", SelftestStatus::Pass), ("b", SelftestStatus::Skip)],
            None,
        );
        let v = judge(&settle(&ok, &clean, None), &clean);
        assert_eq!(v.outcome, Outcome::Pass, "{:?}", v.reasons);
        assert!(v.notes[0].contains("1 passed, 1 skipped, 0 failed"));
        let bad = telemetry(
            &["a", "b", "c"],
            &[
                ("a", SelftestStatus::Fail),
                ("b", SelftestStatus::TimedOut { after_s: 5 }),
                ("c", SelftestStatus::Crashed { code: 139 }),
            ],
            Some("c"),
        );
        let v = judge(&settle(&bad, &clean, None), &clean);
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.reasons.len(), 3);
        assert!(v.reasons[0].starts_with("selftest a: not ok\n  (a out)"));
        assert!(v.reasons[1].contains("timed out after 5 s"));
        assert!(v.reasons[2].contains("exited with 139"));
        // No test at all is a failure, never a pass.
        let none = judge(&[], &clean);
        assert_eq!(none.outcome, Outcome::Fail);
        assert_eq!(none.reasons, vec!["the guest ran no selftests".to_string()]);
    }
}
