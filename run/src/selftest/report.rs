//! Selftest results for people and CI: a matrix of tests × jobs and one
//! JUnit test case per selftest.

use std::time::Duration;

use ktstr_plan::selftests::{SelftestCase, SelftestStatus};
use ktstr_plan::verdict::Outcome;
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus};

use crate::job::JobResult;

/// The tests as rows and `columns` (a label and its job's results) as
/// columns; each cell is the test's result and time (`-` where a job did
/// not hold the test).
pub fn matrix(columns: &[(String, Vec<SelftestCase>)]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (_, cases) in columns {
        for c in cases {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
    }
    let width = names.iter().map(|n| n.len()).max().unwrap_or(4).max(4);
    let widths: Vec<usize> = columns.iter().map(|(l, _)| l.len().max(14)).collect();
    let mut out = format!("{:width$}", "test");
    for ((label, _), w) in columns.iter().zip(&widths) {
        out.push_str(&format!("  {label:w$}"));
    }
    out.push('\n');
    for name in &names {
        out.push_str(&format!("{name:width$}"));
        for ((_, cases), w) in columns.iter().zip(&widths) {
            let cell = match cases.iter().find(|c| c.name == *name) {
                Some(c) if c.duration_ms > 0 => format!(
                    "{} {:.1}s",
                    c.status.word().to_uppercase(),
                    c.duration_ms as f64 / 1000.0
                ),
                Some(c) => c.status.word().to_uppercase(),
                None => "-".into(),
            };
            out.push_str(&format!("  {cell:w$}"));
        }
        out.push('\n');
    }
    out
}

/// The topology in a job's label (`selftests 1n2l2c1t eevdf`).
pub fn topology_of(label: &str) -> &str {
    label.split(' ').nth(1).unwrap_or("?")
}

/// JUnit XML for selftest jobs: a suite per job, a test case per selftest
/// (class `selftests::<topology>`); a job that ran no test is one failed
/// case with its reasons.
pub fn junit(run_id: &str, results: &[JobResult]) -> String {
    let mut report = quick_junit::Report::new(format!("ktstr selftest {run_id}"));
    for r in results {
        let mut suite = quick_junit::TestSuite::new(r.label.clone());
        let class = format!("selftests::{}", topology_of(&r.label));
        suite.add_test_cases(junit_cases(&r.telemetry.selftests, &class));
        if r.telemetry.selftests.is_empty() {
            suite.add_test_case(job_case(r, &class));
        }
        report.add_test_suite(suite);
    }
    report.to_string().unwrap_or_default()
}

/// A job as one test case (its outcome and reasons).
fn job_case(r: &JobResult, class: &str) -> TestCase {
    let mut status = match r.verdict.outcome {
        Outcome::Pass => TestCaseStatus::success(),
        Outcome::Skip => TestCaseStatus::skipped(),
        Outcome::Fail | Outcome::Inconclusive => TestCaseStatus::non_success(NonSuccessKind::Error),
    };
    if !r.verdict.reasons.is_empty() {
        status.set_message(r.verdict.reasons.join("\n"));
    }
    let mut case = TestCase::new(format!("{class}::job"), status);
    case.set_classname(class.to_string());
    case.set_time(Duration::from_secs_f64(r.seconds.max(0.0)));
    case
}

/// One JUnit test case per selftest, named `classname::test`: a failure
/// for `not ok`, an error for a timeout, a crash or the guest going down,
/// skipped for a skip or a test never run (with why); the test's output
/// as system-out.
pub fn junit_cases(cases: &[SelftestCase], classname: &str) -> Vec<TestCase> {
    cases
        .iter()
        .map(|c| {
            let (mut status, message) = match &c.status {
                SelftestStatus::Pass => (TestCaseStatus::success(), None),
                SelftestStatus::Skip => (TestCaseStatus::skipped(), None),
                SelftestStatus::NotRun { why } => {
                    (TestCaseStatus::skipped(), Some(format!("not run: {why}")))
                }
                SelftestStatus::Fail => (
                    TestCaseStatus::non_success(NonSuccessKind::Failure),
                    Some("not ok".to_string()),
                ),
                SelftestStatus::TimedOut { after_s } => (
                    TestCaseStatus::non_success(NonSuccessKind::Error),
                    Some(format!("timed out after {after_s} s")),
                ),
                SelftestStatus::Crashed { code } => (
                    TestCaseStatus::non_success(NonSuccessKind::Error),
                    Some(format!("the runner exited with {code} before its result")),
                ),
                SelftestStatus::KernelDown { detail } => (
                    TestCaseStatus::non_success(NonSuccessKind::Error),
                    Some(format!("the guest went down: {detail}")),
                ),
            };
            if let Some(m) = message {
                status.set_message(m);
                status.set_type(c.status.word());
            }
            let mut case = TestCase::new(format!("{classname}::{}", c.name), status);
            case.set_classname(classname.to_string());
            case.set_time(Duration::from_millis(c.duration_ms));
            if !c.output.is_empty() {
                case.set_system_out(c.output.clone());
            }
            case
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(name: &str, status: SelftestStatus, ms: u64) -> SelftestCase {
        SelftestCase {
            name: name.into(),
            status,
            duration_ms: ms,
            output: format!("{name} said this"),
        }
    }

    #[test]
    fn the_matrix_has_a_row_per_test_and_a_column_per_job() {
        let a = vec![
            case("minimal", SelftestStatus::Pass, 1500),
            case("exit", SelftestStatus::Fail, 200),
        ];
        let b = vec![
            case("minimal", SelftestStatus::Pass, 1700),
            case("hang", SelftestStatus::TimedOut { after_s: 5 }, 5000),
        ];
        let m = matrix(&[("1n2l2c1t".into(), a), ("2n2l2c1t".into(), b)]);
        let lines: Vec<&str> = m.lines().collect();
        assert_eq!(lines.len(), 4, "{m}");
        assert!(lines[0].contains("1n2l2c1t") && lines[0].contains("2n2l2c1t"));
        assert!(lines[1].starts_with("minimal") && lines[1].contains("PASS 1.5s"));
        assert!(lines[2].contains("FAIL 0.2s") && lines[2].trim_end().ends_with('-'));
        assert!(lines[3].contains("TIMEOUT 5.0s"), "{m}");
    }

    #[test]
    fn junit_has_a_case_per_test_with_its_kind_of_failure() {
        let cases = vec![
            case("minimal", SelftestStatus::Pass, 1),
            case("exit", SelftestStatus::Fail, 1),
            case("hang", SelftestStatus::TimedOut { after_s: 5 }, 1),
            case("late", SelftestStatus::NotRun { why: "x".into() }, 0),
        ];
        let mut suite = quick_junit::TestSuite::new("s");
        suite.add_test_cases(junit_cases(&cases, "selftests"));
        let mut report = quick_junit::Report::new("r");
        report.add_test_suite(suite);
        let xml = report.to_string().unwrap();
        assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert_eq!(xml.matches("<error").count(), 1, "{xml}");
        assert_eq!(xml.matches("<skipped").count(), 1, "{xml}");
        assert!(xml.contains("timed out after 5 s"), "{xml}");
        assert!(xml.contains("exit said this"), "{xml}");
    }
}
