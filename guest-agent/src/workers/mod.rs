//! Worker processes. The agent starts each worker as `/init --worker
//! SPEC`: the worker waits on its stdin for a start byte (so the agent can
//! move it into its cgroup first), sets its name, nice, policy and
//! affinity, runs its work until stdin closes, and writes its
//! [`WorkerReport`] as JSON on stdout.

pub mod kinds;
pub mod probe;
pub mod series;
pub mod sys;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ktstr_plan::policy::Policy;
use ktstr_plan::work::Work;
use ktstr_proto::WorkerReport;
use serde::{Deserialize, Serialize};

/// The flag that selects worker mode.
pub const WORKER_FLAG: &str = "--worker";

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
    let watcher = Arc::clone(&stop);
    thread::spawn(move || {
        let mut buf = [0u8; 16];
        let _ = std::io::stdin().read(&mut buf);
        watcher.store(true, Ordering::SeqCst);
    });
    let report = run_worker(&spec, &stop);
    let json = serde_json::to_string(&report).expect("reports serialize");
    let mut out = std::io::stdout();
    if out
        .write_all(json.as_bytes())
        .and_then(|_| out.flush())
        .is_err()
    {
        return ExitCode::from(4);
    }
    ExitCode::SUCCESS
}

/// Sets up the process as `spec` says and runs its work until `stop`.
pub fn run_worker(spec: &WorkerSpec, stop: &AtomicBool) -> WorkerReport {
    // The probe starts once the worker is where its spec puts it: a CPU it
    // ran on before its affinity was set is neither used nor left.
    let ready = setup(spec);
    let mut probe = probe::Probe::start();
    let result = ready.and_then(|_| {
        let run = kinds::Run { stop, until: None };
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

/// A worker process as the agent holds it. Dropping it kills and reaps
/// the process.
pub struct Worker {
    child: Child,
    spec: WorkerSpec,
    started: bool,
}

impl Worker {
    /// Starts `exe --worker SPEC`, held at its gate.
    pub fn spawn(exe: &Path, spec: WorkerSpec) -> std::io::Result<Self> {
        let json = serde_json::to_string(&spec).expect("specs serialize");
        let child = Command::new(exe)
            .arg(WORKER_FLAG)
            .arg(json)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Worker {
            child,
            spec,
            started: false,
        })
    }

    /// The worker's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens the gate: the worker starts its work.
    pub fn start(&mut self) -> std::io::Result<()> {
        let stdin = self
            .child
            .stdin
            .as_mut()
            .ok_or(std::io::ErrorKind::BrokenPipe)?;
        stdin.write_all(b"s")?;
        stdin.flush()?;
        self.started = true;
        Ok(())
    }

    /// Whether the gate was opened.
    pub fn started(&self) -> bool {
        self.started
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

    /// Waits up to `timeout` for the report of a worker told to stop.
    pub fn collect(mut self, timeout: Duration) -> WorkerReport {
        let mut stdout = self.child.stdout.take();
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(out) = stdout.as_mut() {
                let _ = out.take(1 << 20).read_to_string(&mut text);
            }
            let _ = tx.send(text);
        });
        let deadline = Instant::now() + timeout;
        let text = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let mut report = match text.ok().map(|t| serde_json::from_str::<WorkerReport>(&t)) {
            Some(Ok(r)) => r,
            Some(Err(e)) => self.failed(format!("worker sent no report ({e})")),
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
