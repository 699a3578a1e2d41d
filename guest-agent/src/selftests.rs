//! The kernel's sched_ext selftests: list the runner's tests, then run
//! each selected test in a runner of its own process group, reading its
//! output as it comes, killing it at the per-test limit, and reporting
//! each test as it starts and ends.

use std::io::{BufRead, BufReader};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ktstr_plan::selftests::{
    parse_listing, SelftestCase, SelftestInfo, SelftestSpec, SelftestStatus, TestOutput,
};
use ktstr_proto::GuestMessage;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::channel::Channel;
use crate::error::{AgentError, Result};
use crate::exec::GUEST_PATH;
use crate::run::send;

/// A `-t` filter no test name holds: with `-s` the runner then prints
/// every test as skipped, which lists them without running any.
const LIST_FILTER: &str = "ktstr:list-only";

/// How long listing the tests may take.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a runner's output is read after it exited.
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// How often a running test's runner is checked for having exited.
const POLL: Duration = Duration::from_millis(200);

/// How long the previous test's scheduler may take to leave before the
/// next test starts (sched_ext disables asynchronously).
const DISABLE_WAIT: Duration = Duration::from_secs(10);

/// Runs the selected tests of `runner`; returns 0 when every one passed
/// or was skipped, else 1.
pub fn run(runner: &str, spec: &SelftestSpec, channel: &Arc<Mutex<Channel>>) -> Result<i32> {
    let tests: Vec<SelftestInfo> = list(runner)?
        .into_iter()
        .filter(|t| spec.selects(&t.name))
        .collect();
    if tests.is_empty() {
        return Err(AgentError::Job(match &spec.filter {
            Some(f) => format!("no selftest of {runner} matches `{f}`"),
            None => format!("{runner} lists no selftests"),
        }));
    }
    send(
        channel,
        &GuestMessage::SelftestList {
            tests: tests.clone(),
        },
    );
    let limit = Duration::from_secs(spec.test_timeout_s.max(1));
    let mut failed = false;
    for t in &tests {
        send(
            channel,
            &GuestMessage::SelftestStarted {
                name: t.name.clone(),
            },
        );
        let case = run_one(runner, &t.name, limit)?;
        failed |= !case.status.is_success();
        send(
            channel,
            &GuestMessage::SelftestCase {
                case: Box::new(case),
            },
        );
    }
    Ok(i32::from(failed))
}

/// The runner's tests, in its order.
fn list(runner: &str) -> Result<Vec<SelftestInfo>> {
    let (mut child, lines) = start(runner, &["-s", "-t", LIST_FILTER])?;
    let deadline = Instant::now() + LIST_TIMEOUT;
    let mut text = String::new();
    loop {
        match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if text.len() < (1 << 20) => {
                text.push_str(&line);
                text.push('\n');
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                stop(&mut child);
                return Err(AgentError::Job(format!(
                    "{runner} did not list its tests within {} s",
                    LIST_TIMEOUT.as_secs()
                )));
            }
        }
    }
    let code = exit_code(&mut child);
    let tests = parse_listing(&text);
    if tests.is_empty() && code != 0 {
        let tail: String = text.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
        return Err(AgentError::Job(format!(
            "{runner} -s -t {LIST_FILTER} exited with {code}: {tail}"
        )));
    }
    Ok(tests)
}

/// Runs test `name` in a runner of its own, killed after `limit`. The
/// runner's `-t` is a substring match, so it may go on to other tests
/// whose names contain `name`: it is left to finish them (they are run
/// and judged on their own too), because killing a runner while its
/// scheduler is being enabled left a 16-vCPU guest hung on the next test.
fn run_one(runner: &str, name: &str, limit: Duration) -> Result<SelftestCase> {
    let started = Instant::now();
    let (mut child, lines) = start(runner, &["-t", name])?;
    let mut out = TestOutput::default();
    let deadline = started + limit;
    let mut timed_out = false;
    let mut result_at: Option<Instant> = None;
    // Set once the runner has exited: what it wrote is read a little
    // longer (a process it left behind may hold the pipe open).
    let mut exited_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = exited_at.is_none();
            break;
        }
        if exited_at.is_some_and(|at| now >= at + EXIT_GRACE) {
            break;
        }
        match lines.recv_timeout(deadline.saturating_duration_since(now).min(POLL)) {
            Ok(line) => {
                if out.take(name, &line) {
                    result_at = Some(Instant::now());
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                if exited_at.is_none() && matches!(child.try_wait(), Ok(Some(_))) {
                    exited_at = Some(Instant::now());
                }
            }
        }
    }
    let duration_ms = result_at
        .unwrap_or_else(Instant::now)
        .duration_since(started)
        .as_millis() as u64;
    let status = match (out.result().cloned(), timed_out) {
        (Some(status), killed) => {
            if killed {
                out.push("ktstr: the runner went on to other tests and was killed at the limit");
            }
            stop(&mut child);
            status
        }
        (None, true) => {
            stop(&mut child);
            SelftestStatus::TimedOut {
                after_s: limit.as_secs(),
            }
        }
        (None, false) => SelftestStatus::Crashed {
            code: exit_code(&mut child),
        },
    };
    // Whatever the runner left behind goes with it.
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    if let Some(state) = wait_sched_ext_disabled(DISABLE_WAIT) {
        out.push(&format!(
            "ktstr: sched_ext still {state} {} s after the test",
            DISABLE_WAIT.as_secs()
        ));
    }
    Ok(SelftestCase {
        name: name.to_string(),
        status,
        duration_ms,
        output: out.into_output(),
    })
}

/// Starts `runner args` in a process group of its own with stdout and
/// stderr on one pipe, and a thread sending its output line by line.
fn start(runner: &str, args: &[&str]) -> Result<(Child, mpsc::Receiver<String>)> {
    let (read, write) =
        nix::unistd::pipe().map_err(|e| AgentError::io("pipe", runner, e.into()))?;
    let write2: OwnedFd = write
        .try_clone()
        .map_err(|e| AgentError::io("dup", runner, e))?;
    let child = Command::new(runner)
        .args(args)
        .env("PATH", GUEST_PATH)
        .env("HOME", "/tmp")
        .current_dir("/tmp")
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(write2))
        .process_group(0)
        .spawn()
        .map_err(|e| AgentError::start(runner, e))?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(std::fs::File::from(read)).split(b'\n') {
            let Ok(line) = line else { return };
            let text = String::from_utf8_lossy(&line)
                .trim_end_matches('\r')
                .to_string();
            if tx.send(text).is_err() {
                return;
            }
        }
    });
    Ok((child, rx))
}

/// Kills `child`'s whole process group and reaps it.
fn stop(child: &mut Child) {
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.wait();
}

/// `child`'s exit code once it ends (128 + signal when killed by one);
/// its output has ended, so it is ending.
fn exit_code(child: &mut Child) -> i32 {
    match child.wait() {
        Ok(s) => crate::exec::exit_code(s),
        Err(_) => -1,
    }
}

/// Waits until sched_ext is disabled (or absent); the state it was left
/// in when it was not within `limit`.
fn wait_sched_ext_disabled(limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    loop {
        let state = std::fs::read_to_string("/sys/kernel/sched_ext/state")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "disabled".into());
        if state == "disabled" {
            return None;
        }
        if Instant::now() >= deadline {
            return Some(state);
        }
        thread::sleep(Duration::from_millis(50));
    }
}
