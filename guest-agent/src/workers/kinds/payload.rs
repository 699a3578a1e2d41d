//! `payload(program, args)`: a real program run by the worker, in the
//! worker's cgroup with its nice, policy and affinity (a child inherits
//! them), its output kept (the tail) and its own metrics read from it.

use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ktstr_plan::payload::{self, PayloadReport, PayloadRun, MAX_PAYLOAD_OUTPUT};

use super::Run;
use crate::workers::probe::Probe;

/// How long a stopped payload has between SIGTERM and SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);

/// The tail of everything a payload wrote, shared by its two readers.
type Tail = Arc<Mutex<Vec<u8>>>;

fn keep_tail(tail: &Tail, mut from: impl Read + Send + 'static) -> thread::JoinHandle<()> {
    let tail = Arc::clone(tail);
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                return;
            }
            let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
            t.extend_from_slice(&buf[..n]);
            if t.len() > 2 * MAX_PAYLOAD_OUTPUT {
                let cut = t.len() - MAX_PAYLOAD_OUTPUT;
                t.drain(..cut);
            }
        }
    })
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid with a plain signal number.
    unsafe { nix::libc::kill(child.id() as i32, sig) };
}

/// Runs the payload until it exits or the run ends; records what it did.
pub(super) fn payload(r: &Run, p: &mut Probe, run: &PayloadRun) -> Result<(), String> {
    let (program, path) = (run.program.as_str(), run.path.as_str());
    let mut cmd = Command::new(path);
    cmd.args(&run.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("PATH", "/files:/bin:/sbin:/usr/bin");
    // SAFETY: the pre-exec hook only calls prctl, which is
    // async-signal-safe: the payload dies with its worker.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::prctl(nix::libc::PR_SET_PDEATHSIG, nix::libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| format!("payload {path}: {e}"))?;
    let tail: Tail = Arc::default();
    let readers: Vec<_> = [
        child.stdout.take().map(|o| keep_tail(&tail, o)),
        child.stderr.take().map(|e| keep_tail(&tail, e)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let (status, stopped) = wait(&mut child, r)?;
    for t in readers {
        let _ = t.join();
    }
    let bytes = tail.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let start = bytes.len().saturating_sub(MAX_PAYLOAD_OUTPUT);
    let output = String::from_utf8_lossy(&bytes[start..]).into_owned();
    p.progress();
    p.set_payload(PayloadReport {
        program: program.to_string(),
        exit_code: status.code(),
        signal: status.signal(),
        stopped,
        metrics: payload::metrics(program, &output),
        output,
    });
    Ok(())
}

/// Waits for the payload; at the run's end sends SIGTERM, then SIGKILL
/// after [`TERM_GRACE`]. Returns its status and whether ktstr stopped it.
fn wait(child: &mut Child, r: &Run) -> Result<(std::process::ExitStatus, bool), String> {
    let mut term_at: Option<Instant> = None;
    loop {
        if let Some(s) = child.try_wait().map_err(|e| format!("payload: {e}"))? {
            return Ok((s, term_at.is_some()));
        }
        match term_at {
            None if r.done() => {
                signal(child, nix::libc::SIGTERM);
                term_at = Some(Instant::now());
            }
            Some(t) if t.elapsed() > TERM_GRACE => {
                signal(child, nix::libc::SIGKILL);
                let s = child.wait().map_err(|e| format!("payload: {e}"))?;
                return Ok((s, true));
            }
            _ => {}
        }
        thread::sleep(Duration::from_millis(20));
    }
}
