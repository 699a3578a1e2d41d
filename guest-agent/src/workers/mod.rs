//! Worker processes. The agent starts each worker as `/init --worker
//! SPEC`: the worker waits on its stdin for a start byte (so the agent can
//! move it into its cgroup first), sets its name, nice, policy and
//! affinity, runs its work until stdin closes, and writes its
//! [`WorkerReport`] as one JSON line on stdout. While it runs, each
//! [`REPORT_BYTE`] on its stdin makes it write its report so far as a line
//! too (a live session's `stats()`); the last line is the final report.

pub mod kinds;
pub mod probe;
pub mod series;
pub mod sys;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ktstr_plan::policy::Policy;
use ktstr_plan::work::Work;
use ktstr_proto::WorkerReport;
use serde::{Deserialize, Serialize};

/// The flag that selects worker mode.
pub const WORKER_FLAG: &str = "--worker";
/// The byte that opens a worker's gate.
const START_BYTE: u8 = b's';
/// The byte that asks a running worker for its report so far.
pub const REPORT_BYTE: u8 = b'r';
/// The longest report line read from a worker.
const MAX_REPORT_LINE: u64 = 4 << 20;

/// What one worker does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// Its cgroup's name.
    pub cgroup: String,
    /// Its index in the cgroup.
    pub index: u32,
    /// The work.
    pub work: Work,
    /// Nice value.
    pub nice: i32,
    /// Scheduling policy.
    pub policy: Policy,
    /// CPUs to restrict itself to (None: the cgroup's).
    pub cpus: Option<Vec<u32>>,
    /// Process name.
    pub comm: Option<String>,
}

/// Entry point of `--worker SPEC`.
pub fn worker_main(spec_json: &str) -> ExitCode {
    let spec: WorkerSpec = match serde_json::from_str(spec_json) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ktstr worker: bad spec: {e}");
            return ExitCode::from(2);
        }
    };
    let mut gate = [0u8; 1];
    if std::io::stdin().read_exact(&mut gate).is_err() {
        return ExitCode::from(3);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(AtomicBool::new(false));
    spawn_stdin_watcher(Arc::clone(&stop), Arc::clone(&asked));
    let on_demand = probe::OnDemand {
        flag: asked,
        cgroup: spec.cgroup.clone(),
        index: spec.index,
        out: Box::new(std::io::stdout()),
    };
    let report = run_worker(&spec, &stop, Some(on_demand));
    let mut line = serde_json::to_vec(&report).expect("reports serialize");
    line.push(b'\n');
    let mut out = std::io::stdout();
    if out.write_all(&line).and_then(|_| out.flush()).is_err() {
        return ExitCode::from(4);
    }
    ExitCode::SUCCESS
}

/// Reads the worker's stdin after the gate: [`REPORT_BYTE`] asks for the
/// report so far, end of file (or an error) stops the worker.
fn spawn_stdin_watcher(stop: Arc<AtomicBool>, asked: Arc<AtomicBool>) {
    thread::spawn(move || {
        let mut buf = [0u8; 64];
        loop {
            match std::io::stdin().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if buf[..n].contains(&REPORT_BYTE) {
                        asked.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
        stop.store(true, Ordering::SeqCst);
    });
}

/// Sets up the process as `spec` says and runs its work until `stop`;
/// with `on_demand`, a report so far is written whenever it is asked for.
pub fn run_worker(
    spec: &WorkerSpec,
    stop: &AtomicBool,
    on_demand: Option<probe::OnDemand>,
) -> WorkerReport {
    // The probe starts once the worker is where its spec puts it: a CPU it
    // ran on before its affinity was set is neither used nor left.
    let ready = setup(spec);
    let mut probe = probe::Probe::start();
    if let Some(d) = on_demand {
        probe.report_on_demand(d);
    }
    let result = ready.and_then(|_| {
        let run = kinds::Run {
            stop,
            until: None,
            index: spec.index,
        };
        kinds::run(&spec.work, &run, &mut probe)
    });
    let mut report = probe.finish(&spec.cgroup, spec.index);
    report.error = result.err();
    report
}

fn setup(spec: &WorkerSpec) -> Result<(), String> {
    if let Some(comm) = &spec.comm {
        let name = std::ffi::CString::new(comm.as_str()).map_err(|e| e.to_string())?;
        // SAFETY: PR_SET_NAME reads a NUL-terminated string that outlives
        // the call.
        unsafe { nix::libc::prctl(nix::libc::PR_SET_NAME, name.as_ptr()) };
    }
    if spec.nice != 0 {
        sys::set_nice(spec.nice).map_err(|e| format!("nice {}: {e}", spec.nice))?;
    }
    let (policy, prio) = sys::policy_numbers(spec.policy);
    if spec.policy != Policy::Normal {
        sys::set_policy(policy, prio).map_err(|e| format!("policy {:?}: {e}", spec.policy))?;
    }
    if let Some(cpus) = &spec.cpus {
        sys::set_affinity(cpus).map_err(|e| format!("affinity {cpus:?}: {e}"))?;
    }
    Ok(())
}

/// The lines a worker wrote, as its reader thread saw them.
#[derive(Debug, Default)]
struct Lines {
    /// Lines read so far.
    count: u64,
    /// The newest line.
    last: Option<String>,
    /// Its stdout is closed.
    eof: bool,
}

/// A worker's stdout, read on a thread of its own so that neither a
/// report asked for nor the final one can block the agent.
type Reader = Arc<(Mutex<Lines>, Condvar)>;

fn spawn_reader(stdout: Option<ChildStdout>) -> Reader {
    let reader: Reader = Arc::default();
    let shared = Arc::clone(&reader);
    thread::spawn(move || {
        let mut out = stdout.map(BufReader::new);
        loop {
            let mut line = Vec::new();
            let n = match out.as_mut() {
                Some(o) => o
                    .by_ref()
                    .take(MAX_REPORT_LINE)
                    .read_until(b'\n', &mut line)
                    .unwrap_or(0),
                None => 0,
            };
            let (lock, cv) = &*shared;
            let mut l = lock.lock().unwrap_or_else(|p| p.into_inner());
            if n == 0 {
                l.eof = true;
                cv.notify_all();
                return;
            }
            l.count += 1;
            l.last = Some(String::from_utf8_lossy(&line).trim_end().to_string());
            cv.notify_all();
        }
    });
    reader
}

/// A worker process as the agent holds it. Dropping it kills and reaps
/// the process.
pub struct Worker {
    child: Child,
    spec: WorkerSpec,
    started: bool,
    lines: Reader,
}

impl Worker {
    /// Starts `exe --worker SPEC`, held at its gate.
    pub fn spawn(exe: &Path, spec: WorkerSpec) -> std::io::Result<Self> {
        let json = serde_json::to_string(&spec).expect("specs serialize");
        let mut child = Command::new(exe)
            .arg(WORKER_FLAG)
            .arg(json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let lines = spawn_reader(child.stdout.take());
        Ok(Worker {
            child,
            spec,
            started: false,
            lines,
        })
    }

    /// The worker's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens the gate: the worker starts its work.
    pub fn start(&mut self) -> std::io::Result<()> {
        self.write(START_BYTE)?;
        self.started = true;
        Ok(())
    }

    fn write(&mut self, byte: u8) -> std::io::Result<()> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or(std::io::ErrorKind::BrokenPipe)?;
        stdin.write_all(&[byte])?;
        stdin.flush()
    }

    /// Whether the gate was opened.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Asks the running worker for its report so far; the token to wait
    /// for the answer with ([`Worker::report_so_far`]). None when its stdin
    /// is closed.
    pub fn ask_report(&mut self) -> Option<u64> {
        let before = self.lock_lines().count;
        self.write(REPORT_BYTE).ok()?;
        Some(before)
    }

    /// The answer to [`Worker::ask_report`] (`asked` is its token), waited
    /// on until `deadline`: a worker blocked between progress points
    /// answers at its next one. When it has not answered by then, the last
    /// report it wrote (None if none).
    pub fn report_so_far(&self, asked: u64, deadline: Instant) -> Option<WorkerReport> {
        let l = self.wait_lines(deadline, |l| l.count == asked && !l.eof);
        let text = l.last.clone()?;
        serde_json::from_str(&text).ok()
    }

    /// The lines, once `waiting` is false or `deadline` has passed.
    fn wait_lines(
        &self,
        deadline: Instant,
        mut waiting: impl FnMut(&mut Lines) -> bool,
    ) -> std::sync::MutexGuard<'_, Lines> {
        let (lock, cv) = &*self.lines;
        let l = lock.lock().unwrap_or_else(|p| p.into_inner());
        let left = deadline.saturating_duration_since(Instant::now());
        cv.wait_timeout_while(l, left, |l| waiting(l))
            .unwrap_or_else(|p| p.into_inner())
            .0
    }

    fn lock_lines(&self) -> std::sync::MutexGuard<'_, Lines> {
        self.lines.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells the worker to stop (closes its stdin) without waiting.
    pub fn request_stop(&mut self) {
        drop(self.child.stdin.take());
    }

    /// Stops the worker and collects its report; a worker that does not
    /// answer within `timeout` is killed and reported as such.
    pub fn stop(mut self, timeout: Duration) -> WorkerReport {
        self.request_stop();
        self.collect(timeout)
    }

    /// Waits up to `timeout` for the final report of a worker told to
    /// stop: the last line it wrote before closing its stdout.
    pub fn collect(mut self, timeout: Duration) -> WorkerReport {
        let deadline = Instant::now() + timeout;
        let last = {
            let l = self.wait_lines(deadline, |l| !l.eof);
            l.eof.then(|| l.last.clone())
        };
        let mut report = match last.map(|t| t.map(|t| serde_json::from_str::<WorkerReport>(&t))) {
            Some(Some(Ok(r))) => r,
            Some(Some(Err(e))) => self.failed(format!("worker sent no report ({e})")),
            Some(None) => self.failed("worker sent no report".to_string()),
            None => self.failed(format!("worker did not stop within {timeout:?}; killed")),
        };
        let _ = self.child.kill();
        if let Ok(status) = self.child.wait() {
            if !status.success() && report.error.is_none() {
                report.error = Some(format!("worker exited with {status}"));
            }
        }
        report
    }

    fn failed(&self, error: String) -> WorkerReport {
        WorkerReport {
            cgroup: self.spec.cgroup.clone(),
            index: self.spec.index,
            pid: self.child.id(),
            error: Some(error),
            ..WorkerReport::default()
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
