//! The kernel's sched_ext selftests (`tools/testing/selftests/sched_ext`)
//! as data: what a selftest job asks for, each test's result, and the
//! runner's TAP-like output read line by line (`ok N name # SKIP`,
//! `not ok N name`, between `===== START =====` and `=====  END  =====`).
//! The guest agent reads the output as it comes; the host judges the
//! results.

use serde::{Deserialize, Serialize};

/// The most output kept per test (its tail): the guest must not send, nor
/// the sidecar hold, a runaway test's megabytes.
pub const MAX_TEST_OUTPUT: usize = 16 * 1024;

/// The per-test time limit when none is given, seconds: the slowest
/// selftest of 6.12 took 30 s under TCG on two host cores.
pub const DEFAULT_TEST_TIMEOUT_S: u64 = 120;

/// What a selftest job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelftestSpec {
    /// Only tests whose name contains this (the runner's `-t`).
    #[serde(default)]
    pub filter: Option<String>,
    /// Seconds each test may take before it is killed and reported as
    /// timed out.
    pub test_timeout_s: u64,
}

impl Default for SelftestSpec {
    fn default() -> Self {
        SelftestSpec {
            filter: None,
            test_timeout_s: DEFAULT_TEST_TIMEOUT_S,
        }
    }
}

impl SelftestSpec {
    /// Whether test `name` is selected.
    pub fn selects(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }
}

/// One test the runner holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelftestInfo {
    /// Its name (`minimal`, `select_cpu_dfl`, ...).
    pub name: String,
    /// Its description, as the runner prints it.
    #[serde(default)]
    pub description: String,
}

/// How one test came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SelftestStatus {
    /// `ok N name`.
    Pass,
    /// `ok N name # SKIP`.
    Skip,
    /// `not ok N name`.
    Fail,
    /// Still running at the per-test limit; killed.
    TimedOut {
        /// The limit, seconds.
        after_s: u64,
    },
    /// The runner ended without a result line for the test.
    Crashed {
        /// Its exit code (128 + signal number when killed by one).
        code: i32,
    },
    /// The guest went down (or stopped answering) while it ran.
    KernelDown {
        /// What the host saw: the VM's end and the console's last lines.
        detail: String,
    },
    /// Never started: an earlier test took the guest down.
    NotRun {
        /// Why.
        why: String,
    },
}

impl SelftestStatus {
    /// Whether the test counts as a success (passed or skipped).
    pub fn is_success(&self) -> bool {
        matches!(self, SelftestStatus::Pass | SelftestStatus::Skip)
    }

    /// A short word for tables and stats: `pass`, `skip`, `fail`,
    /// `timeout`, `crash`, `kernel_down`, `not_run`.
    pub fn word(&self) -> &'static str {
        match self {
            SelftestStatus::Pass => "pass",
            SelftestStatus::Skip => "skip",
            SelftestStatus::Fail => "fail",
            SelftestStatus::TimedOut { .. } => "timeout",
            SelftestStatus::Crashed { .. } => "crash",
            SelftestStatus::KernelDown { .. } => "kernel_down",
            SelftestStatus::NotRun { .. } => "not_run",
        }
    }
}

/// One test's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelftestCase {
    /// The test's name.
    pub name: String,
    /// How it came out.
    #[serde(flatten)]
    pub status: SelftestStatus,
    /// Milliseconds it ran (0 when it never started).
    pub duration_ms: u64,
    /// Its output between `OUTPUT:` and its result (the last
    /// [`MAX_TEST_OUTPUT`] bytes).
    pub output: String,
}

/// The result line of a test, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultLine {
    /// The test's number in this run of the runner.
    pub number: u32,
    /// The test's name.
    pub name: String,
    /// Pass, Skip or Fail.
    pub status: SelftestStatus,
}

/// Parses `ok 3 minimal # `, `ok 4 hotplug # SKIP` or `not ok 5 exit # `;
/// None for any other line.
pub fn parse_result_line(line: &str) -> Option<ResultLine> {
    let line = line.trim_end();
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
        (false, r)
    } else {
        (true, line.strip_prefix("ok ")?)
    };
    let (number, rest) = rest.split_once(' ')?;
    let number: u32 = number.parse().ok()?;
    let (name, directive) = match rest.split_once(" #") {
        Some((n, d)) => (n.trim(), d.trim()),
        None => (rest.trim(), ""),
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    let skip = directive
        .split_whitespace()
        .next()
        .is_some_and(|w| w.eq_ignore_ascii_case("skip"));
    let status = match (ok, skip) {
        (false, _) => SelftestStatus::Fail,
        (true, true) => SelftestStatus::Skip,
        (true, false) => SelftestStatus::Pass,
    };
    Some(ResultLine {
        number,
        name: name.to_string(),
        status,
    })
}

/// The tests of a listing: the runner's output with `-s` and a filter
/// that matches nothing, where every test prints its preamble (`TEST:`,
/// `DESCRIPTION:`) and a skipped result.
pub fn parse_listing(output: &str) -> Vec<SelftestInfo> {
    let mut tests: Vec<SelftestInfo> = Vec::new();
    let mut pending: Option<SelftestInfo> = None;
    for line in output.lines() {
        if let Some(name) = line.strip_prefix("TEST: ") {
            pending = Some(SelftestInfo {
                name: name.trim().to_string(),
                description: String::new(),
            });
        } else if let Some(d) = line.strip_prefix("DESCRIPTION: ") {
            if let Some(p) = pending.as_mut() {
                p.description = d.trim().to_string();
            }
        } else if let Some(r) = parse_result_line(line) {
            let info = match pending.take() {
                Some(p) if p.name == r.name => p,
                _ => SelftestInfo {
                    name: r.name,
                    description: String::new(),
                },
            };
            if !tests.iter().any(|t| t.name == info.name) {
                tests.push(info);
            }
        }
    }
    tests
}

/// Reads one test's output as it comes, line by line: what it printed
/// after `OUTPUT:` and its result line.
#[derive(Debug, Default)]
pub struct TestOutput {
    /// Inside the wanted test's block.
    inside: bool,
    /// What it printed (the tail, at most [`MAX_TEST_OUTPUT`] bytes).
    output: String,
    /// Its result, once seen.
    result: Option<SelftestStatus>,
}

impl TestOutput {
    /// Takes one line of the runner's output, keeping only what belongs to
    /// test `name` (the runner's `-t` is a substring match, so other tests
    /// may run in the same process); true once `name`'s result was read.
    pub fn take(&mut self, name: &str, line: &str) -> bool {
        if let Some(r) = parse_result_line(line) {
            if r.name == name {
                self.result = Some(r.status);
                self.inside = false;
                return true;
            }
            return false;
        }
        if let Some(t) = line.strip_prefix("TEST: ") {
            self.inside = t.trim() == name;
            return false;
        }
        let preamble = line.starts_with("===== START")
            || line.starts_with("=====  END")
            || line.starts_with("DESCRIPTION: ")
            || line == "OUTPUT:";
        if self.inside && !preamble {
            self.push(line);
        }
        false
    }

    /// Takes a line of output outside the runner's blocks (stderr before
    /// the preamble, a crash message): kept with the test's output.
    pub fn push(&mut self, line: &str) {
        self.output.push_str(line);
        self.output.push('\n');
        if self.output.len() > MAX_TEST_OUTPUT {
            let mut cut = self.output.len() - MAX_TEST_OUTPUT;
            while !self.output.is_char_boundary(cut) {
                cut += 1;
            }
            self.output.drain(..cut);
        }
    }

    /// The result line's status, if it came.
    pub fn result(&self) -> Option<&SelftestStatus> {
        self.result.as_ref()
    }

    /// The output kept.
    pub fn into_output(self) -> String {
        self.output
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_parse_and_others_do_not() {
        let r = parse_result_line("ok 3 minimal # ").unwrap();
        assert_eq!((r.number, r.name.as_str()), (3, "minimal"));
        assert_eq!(r.status, SelftestStatus::Pass);
        let r = parse_result_line("ok 4 hotplug # SKIP ").unwrap();
        assert_eq!(r.status, SelftestStatus::Skip);
        let r = parse_result_line("not ok 5 exit # ").unwrap();
        assert_eq!((r.name.as_str(), r.status), ("exit", SelftestStatus::Fail));
        assert_eq!(
            parse_result_line("ok 6 create_dsq").unwrap().status,
            SelftestStatus::Pass
        );
        for bad in [
            "okay 1 x",
            "ok x minimal",
            "ok 1 ",
            "not ok",
            "ERR: ok 1 two words # ",
            "ok 1 two words # ",
            "",
        ] {
            assert!(parse_result_line(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn a_listing_names_every_test_once_with_its_description() {
        let out = "===== START =====\nTEST: create_dsq\nDESCRIPTION: Create and destroy a \
                   dsq in a loop\nOUTPUT:\nok 1 create_dsq # SKIP\n=====  END  =====\n\
                   ===== START =====\nTEST: minimal\nDESCRIPTION: Verify we can load a fully \
                   minimal scheduler\nOUTPUT:\nok 2 minimal # SKIP\n=====  END  =====\n\n\n\
                   RESULTS:\n\nPASSED:  0\nSKIPPED: 2\nFAILED:  0\n";
        let t = parse_listing(out);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].name, "create_dsq");
        assert_eq!(t[0].description, "Create and destroy a dsq in a loop");
        assert_eq!(t[1].name, "minimal");
        assert!(parse_listing("no tests here\n").is_empty());
    }

    #[test]
    fn a_tests_output_is_its_own_block_and_is_bounded() {
        let mut o = TestOutput::default();
        let lines = [
            "===== START =====",
            "TEST: select_cpu_dfl",
            "DESCRIPTION: x",
            "OUTPUT:",
            "ERR: select_cpu_dfl.c:40",
            "ok 1 select_cpu_dfl # ",
            "=====  END  =====",
            "===== START =====",
            "TEST: select_cpu_dfl_nodispatch",
            "OUTPUT:",
            "not mine",
        ];
        let done: Vec<bool> = lines.iter().map(|l| o.take("select_cpu_dfl", l)).collect();
        assert_eq!(done.iter().filter(|d| **d).count(), 1);
        assert!(done[5]);
        assert_eq!(o.result(), Some(&SelftestStatus::Pass));
        assert_eq!(o.into_output(), "ERR: select_cpu_dfl.c:40\n");
        let mut big = TestOutput::default();
        big.take("t", "TEST: t");
        for i in 0..10_000 {
            big.take("t", &format!("line {i} é"));
        }
        let kept = big.into_output();
        assert!(kept.len() <= MAX_TEST_OUTPUT);
        assert!(kept.ends_with("line 9999 é\n"));
    }

    #[test]
    fn statuses_say_what_counts_as_success() {
        assert!(SelftestStatus::Skip.is_success());
        assert!(!SelftestStatus::TimedOut { after_s: 1 }.is_success());
        assert_eq!(SelftestStatus::Crashed { code: 139 }.word(), "crash");
        let case = SelftestCase {
            name: "t".into(),
            status: SelftestStatus::TimedOut { after_s: 5 },
            duration_ms: 5000,
            output: String::new(),
        };
        let json = serde_json::to_string(&case).unwrap();
        assert!(json.contains(r#""status":"timed_out""#), "{json}");
        assert_eq!(serde_json::from_str::<SelftestCase>(&json).unwrap(), case);
    }
}
