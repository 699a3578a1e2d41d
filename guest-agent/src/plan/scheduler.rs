//! A sched_ext scheduler's life in the guest: start it, wait until the
//! kernel says it is attached, watch it, stop it.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ktstr_plan::results::BpfDump;
use ktstr_proto::SchedulerLaunch;

use crate::error::{AgentError, Result};
use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::unistd::Pid;

const STATE: &str = "/sys/kernel/sched_ext/state";

/// How long a stopping scheduler has after SIGINT, then after SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How much longer a killed scheduler may take to exit before it is
/// reported stuck.
const STUCK_GRACE: Duration = Duration::from_secs(10);
/// The most bytes of a stuck scheduler's report.
const STUCK_REPORT_LIMIT: usize = 16 * 1024;
const OPS: &str = "/sys/kernel/sched_ext/root/ops";
/// How many times a scheduler was enabled since boot (6.12 on).
const ENABLE_SEQ: &str = "/sys/kernel/sched_ext/enable_seq";
const LOG: &str = "/tmp/ktstr-scheduler.log";

/// A scheduler process that has attached.
pub struct RunningScheduler {
    child: Child,
    name: String,
    /// Its global data, read when it was found detached.
    dump: Option<BpfDump>,
    /// Why it ended, when it had already ended by the time its attach was
    /// seen (the next [`RunningScheduler::check`] says so).
    ended: Option<String>,
}

/// sched_ext's count of enables since boot; None on kernels without it.
fn enable_seq() -> Option<u64> {
    read_trim(ENABLE_SEQ).parse().ok()
}

fn read_trim(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The last lines of the scheduler's output, after the lines where
/// libbpf names a program the kernel refused (the verifier's log between
/// them can run to thousands of lines).
fn log_tail() -> String {
    let text = fs::read_to_string(LOG).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("BPF program load failed"))
        .take(4)
        .collect();
    out.extend(&lines[lines.len().saturating_sub(20)..]);
    out.join("\n")
}

/// Kernel log lines about sched_ext (the exit reason lives there).
pub fn kernel_lines() -> String {
    let lines: Vec<String> = kmsg()
        .into_iter()
        .filter(|t| t.contains("sched_ext") || t.contains("scx_"))
        .collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// The last `n` lines of the kernel log.
pub fn dmesg(n: usize) -> String {
    let lines = kmsg();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Every record of the kernel log's buffer, as text.
fn kmsg() -> Vec<String> {
    let Ok(mut kmsg) = fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open("/dev/kmsg")
    else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 8192];
    while let Ok(n) = kmsg.read(&mut buf) {
        if n == 0 {
            break;
        }
        let rec = String::from_utf8_lossy(&buf[..n]);
        let text = rec.split_once(';').map_or(rec.as_ref(), |(_, t)| t).trim();
        lines.push(text.to_string());
    }
    lines
}

/// `/sys/kernel/sched_ext/state` and `root/ops` (empty when absent).
pub fn state_and_ops() -> (String, String) {
    (read_trim(STATE), read_trim(OPS))
}

/// kthreadd pinned to one CPU, its former affinity restored on drop: the
/// kthreads it creates meanwhile (sched_ext's enable helper) start there.
struct KthreaddPin {
    before: CpuSet,
}

/// kthreadd's PID.
const KTHREADD: i32 = 2;

impl KthreaddPin {
    fn new(cpu: u32) -> Result<Self> {
        let pid = Pid::from_raw(KTHREADD);
        let comm = read_trim("/proc/2/comm");
        if comm != "kthreadd" {
            return Err(AgentError::Scheduler(format!(
                "PID 2 is `{comm}`, not kthreadd"
            )));
        }
        let before = sched_getaffinity(pid)
            .map_err(|e| AgentError::Scheduler(format!("kthreadd's affinity: {e}")))?;
        let mut only = CpuSet::new();
        only.set(cpu as usize)
            .map_err(|e| AgentError::Scheduler(format!("enable_cpu {cpu}: {e}")))?;
        sched_setaffinity(pid, &only).map_err(|e| {
            AgentError::Scheduler(format!("pinning kthreadd to CPU {cpu} (enable_cpu): {e}"))
        })?;
        Ok(KthreaddPin { before })
    }
}

impl Drop for KthreaddPin {
    fn drop(&mut self) {
        let _ = sched_setaffinity(Pid::from_raw(KTHREADD), &self.before);
    }
}

/// Starts the scheduler and waits until `state` is `enabled` and
/// `root/ops` names it, or sched_ext's enable count shows it attached and
/// was already kicked out (then the first `check` says how it ended). A scheduler that exits first or never attaches is
/// an error carrying its output and the kernel's lines. With
/// `enable_cpu`, kthreadd stays pinned to that CPU until then.
pub fn start(launch: &SchedulerLaunch) -> Result<RunningScheduler> {
    let _pin = launch.enable_cpu.map(KthreaddPin::new).transpose()?;
    let seq_before = enable_seq();
    let log = File::create(LOG).map_err(|e| AgentError::io("create", LOG, e))?;
    let err = log.try_clone().map_err(|e| AgentError::io("dup", LOG, e))?;
    let mut child = Command::new(&launch.path)
        .args(&launch.args)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|e| AgentError::start(&launch.path, e))?;
    let deadline = Instant::now() + Duration::from_secs(launch.attach_timeout_s);
    loop {
        let attached =
            read_trim(STATE) == "enabled" && read_trim(OPS).starts_with(&launch.ops_name);
        // A scheduler may attach and be kicked out before the agent looks:
        // one that stalls the agent itself (scx_qmap -t 3 dropped init for
        // 5 s) is disabled by the watchdog before init runs again.
        let came_and_went = enable_seq()
            .zip(seq_before)
            .is_some_and(|(now, was)| now > was);
        if attached || came_and_went {
            let mut running = RunningScheduler {
                child,
                name: launch.ops_name.clone(),
                dump: None,
                ended: None,
            };
            if !attached {
                // Read now, while its process may still hold its maps.
                running.ended = running.check();
            }
            return Ok(running);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(AgentError::Scheduler(format!(
                "{} exited ({status}) before attaching\n{}\n{}",
                launch.path,
                log_tail(),
                kernel_lines()
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(AgentError::Scheduler(format!(
                "{} did not attach within {} s (state `{}`)\n{}\n{}",
                launch.path,
                launch.attach_timeout_s,
                read_trim(STATE),
                log_tail(),
                kernel_lines()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl RunningScheduler {
    /// Its global data as read when it was found detached, or else now
    /// (while it still runs), for the host's failure dump.
    pub fn take_dump(&mut self) -> BpfDump {
        self.dump
            .take()
            .unwrap_or_else(|| crate::bpf::dump_globals("end of run"))
    }

    /// None while the scheduler runs and is attached; else what happened.
    pub fn check(&mut self) -> Option<String> {
        if let Some(why) = self.ended.take() {
            return Some(why);
        }
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(format!(
                "scheduler {} exited ({status})\n{}\n{}",
                self.name,
                log_tail(),
                kernel_lines()
            ));
        }
        let mut state = read_trim(STATE);
        if state != "enabled" {
            // Read the scheduler's data while its process still holds
            // its maps: they go with it.
            self.dump = Some(crate::bpf::dump_globals("scheduler died"));
            // Let the kernel finish disabling and the scheduler print its
            // exit reason before both are read.
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                let exited = matches!(self.child.try_wait(), Ok(Some(_)));
                state = read_trim(STATE);
                if state == "disabled" && exited {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            return Some(format!(
                "scheduler {} was detached (sched_ext state `{state}`)\n{}\n{}",
                self.name,
                log_tail(),
                kernel_lines()
            ));
        }
        None
    }

    /// Stops the scheduler (SIGINT, then SIGKILL after 5 s); a report of
    /// where it is stuck when it still has not exited 5 s after that.
    pub fn stop(mut self) -> Option<String> {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        if self.exits_within(STOP_GRACE) {
            return None;
        }
        let _ = self.child.kill();
        if self.exits_within(STOP_GRACE) {
            return None;
        }
        // Killed and still there: stuck in the kernel (detaching from
        // sched_ext, most likely). Give it a last, longer chance (an
        // emulated guest under load is slow to disable), then say where
        // each of its threads is instead of waiting forever.
        if self.exits_within(STUCK_GRACE) {
            return None;
        }
        Some(format!(
            "the scheduler did not exit within {}s of SIGINT nor {}s of SIGKILL \
             (sched_ext state `{}`); its threads:\n{}\nthe kernel's view:\n{}",
            STOP_GRACE.as_secs(),
            (STOP_GRACE + STUCK_GRACE).as_secs(),
            read_trim(STATE),
            thread_stacks(pid.as_raw()),
            stuck_kernel_view()
        ))
    }

    /// Whether the scheduler process exits within `grace`.
    fn exits_within(&mut self, grace: Duration) -> bool {
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

/// Each thread of process `pid`: its state, wait channel and kernel stack
/// (empty for a thread running on a CPU: see the CPUs' backtraces).
fn thread_stacks(pid: i32) -> String {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return format!("(process {pid} is gone)");
    };
    let mut out = String::new();
    for t in tasks.flatten() {
        let dir = t.path();
        let stat = read_trim(&dir.join("stat").to_string_lossy());
        // The state follows the parenthesized name.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?");
        let wchan = read_trim(&dir.join("wchan").to_string_lossy());
        let stack = read_trim(&dir.join("stack").to_string_lossy());
        out.push_str(&format!(
            "thread {} state {state} wchan {wchan}\n{stack}\n",
            t.file_name().to_string_lossy()
        ));
    }
    out
}

/// Asks the kernel for every CPU's backtrace and the blocked tasks
/// (sysrq l and w), and returns the log's last lines, bounded.
fn stuck_kernel_view() -> String {
    for key in ["l", "w"] {
        let _ = fs::write("/proc/sysrq-trigger", key);
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut text = dmesg(150);
    if text.len() > STUCK_REPORT_LIMIT {
        let cut = text.len() - STUCK_REPORT_LIMIT;
        let cut = (cut..text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(cut);
        text = text[cut..].to_string();
    }
    text
}
