//! Running a sweep's jobs in parallel, within what the host can give:
//! at most `jobs` VMs at once, their busy guest CPUs at most
//! [`EMULATION_BUSY_PER_CORE`] per host core, their memory within what the
//! host has free. A job that alone exceeds the CPU or memory share still
//! runs, by itself. Each job is told how many busy CPUs run beside it, so
//! its emulated time thresholds account for the load.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use ktstr_kernel::{BootKernel, Observer};
use ktstr_plan::thresholds::EMULATION_BUSY_PER_CORE;
use ktstr_vmm::probe::BackendChoice;
use ktstr_vmm::VmSpec;

use super::expand::GauntletJob;
use crate::error::RunError;
use crate::job::{JobRequest, JobResult, Runner};
use crate::thresholds::{busy_vcpus, host_cores};

/// What the pool may use of the host.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    /// VMs at once.
    pub jobs: usize,
    /// Busy guest CPUs at once.
    pub busy: u64,
    /// Guest memory at once, MiB.
    pub memory_mb: u64,
}

impl Capacity {
    /// This host's: `jobs` VMs (None: one per two host cores, at least
    /// one), [`EMULATION_BUSY_PER_CORE`] busy vCPUs per core, and 3/4 of
    /// the memory available now.
    pub fn of_host(jobs: Option<usize>) -> Self {
        let cores = host_cores();
        Capacity {
            jobs: jobs.unwrap_or((cores / 2).max(1)),
            busy: (cores as f64 * EMULATION_BUSY_PER_CORE) as u64,
            memory_mb: available_memory_mb() * 3 / 4,
        }
    }
}

/// `MemAvailable` of the host, MiB (a generous guess when unreadable).
fn available_memory_mb() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(16 * 1024, |kib| kib / 1024)
}

/// A job's claim on the host: busy guest CPUs and guest memory.
#[derive(Debug, Clone, Copy, Default)]
struct Claim {
    busy: u64,
    memory_mb: u64,
}

fn claim(job: &GauntletJob) -> Claim {
    Claim {
        // Selftests load the whole guest at times (init_enable_count
        // forks 1,024 tasks).
        busy: match job.selftests {
            Some(_) => u64::from(job.topology.cpus()),
            None => busy_vcpus(&job.plan, &job.topology),
        },
        memory_mb: u64::from(VmSpec::default_memory_mb(&job.topology)),
    }
}

/// Hears about jobs as they start and end (the CLI draws it).
pub trait PoolObserver: Sync {
    /// `job` starts (`running` jobs run now, this one included).
    fn started(&self, job: &GauntletJob, running: usize);
    /// `job` ended.
    fn finished(&self, job: &GauntletJob, result: &Result<JobResult, RunError>);
}

/// What every job of a sweep shares.
pub struct Shared<'a> {
    /// The runner.
    pub runner: &'a Runner,
    /// The kernel of each job (by the job's kernel identifier; None: the
    /// default).
    pub kernel: &'a (dyn Fn(Option<&str>) -> BootKernel + Sync),
    /// The backend.
    pub backend: BackendChoice,
    /// Start VMs from snapshots where the backend takes them.
    pub snapshot: bool,
    /// Set to stop: no new job starts, running VMs are stopped.
    pub cancel: Arc<AtomicBool>,
    /// Progress of the jobs' own work (kernel builds are done beforehand).
    pub observer: &'a dyn Observer,
}

/// A job and how it went.
pub type Ran = (GauntletJob, Result<JobResult, RunError>);

/// Each job's slot, filled when it ends.
type Slots = Mutex<Vec<Option<Ran>>>;

struct State {
    queue: VecDeque<(usize, GauntletJob)>,
    running: usize,
    held: Claim,
}

/// Runs every job, at most what `cap` allows at once; returns each job's
/// result in the jobs' order. Jobs not started when `shared.cancel` is set
/// are left out.
pub fn run(
    jobs: Vec<GauntletJob>,
    cap: Capacity,
    shared: &Shared,
    events: &dyn PoolObserver,
) -> Vec<Ran> {
    let n = jobs.len();
    let state = Mutex::new(State {
        queue: jobs.into_iter().enumerate().collect(),
        running: 0,
        held: Claim::default(),
    });
    let wake = Condvar::new();
    let done: Slots = Mutex::new((0..n).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..cap.jobs.max(1) {
            s.spawn(|| worker(&state, &wake, &done, cap, shared, events));
        }
    });
    done.into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Takes jobs that fit while there are any, and runs them.
fn worker(
    state: &Mutex<State>,
    wake: &Condvar,
    done: &Slots,
    cap: Capacity,
    shared: &Shared,
    events: &dyn PoolObserver,
) {
    loop {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        let (index, job, beside, running) = loop {
            if shared.cancel.load(Ordering::SeqCst) || st.queue.is_empty() {
                wake.notify_all();
                return;
            }
            if let Some(pos) = st.queue.iter().position(|(_, j)| fits(&st, claim(j), cap)) {
                let (index, job) = st.queue.remove(pos).expect("position is in range");
                let c = claim(&job);
                let beside = st.held.busy;
                st.running += 1;
                st.held.busy += c.busy;
                st.held.memory_mb += c.memory_mb;
                break (index, job, beside, st.running);
            }
            st = wake.wait(st).unwrap_or_else(|p| p.into_inner());
        };
        drop(st);
        events.started(&job, running);
        let result = run_one(&job, beside, shared);
        events.finished(&job, &result);
        let c = claim(&job);
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        st.running -= 1;
        st.held.busy -= c.busy;
        st.held.memory_mb -= c.memory_mb;
        done.lock().unwrap_or_else(|p| p.into_inner())[index] = Some((job, result));
        wake.notify_all();
    }
}

/// Whether a job claiming `c` may start now: nothing runs, or it fits
/// beside what does.
fn fits(st: &State, c: Claim, cap: Capacity) -> bool {
    st.running == 0
        || (st.running < cap.jobs
            && st.held.busy + c.busy <= cap.busy
            && st.held.memory_mb + c.memory_mb <= cap.memory_mb)
}

fn run_one(job: &GauntletJob, beside: u64, shared: &Shared) -> Result<JobResult, RunError> {
    let kernel = (shared.kernel)(job.kernel.as_deref());
    let mut req = match &job.selftests {
        Some(s) => JobRequest::selftests(s.clone(), job.topology, kernel),
        None => JobRequest::new(job.plan.clone(), job.topology, kernel),
    };
    req.backend = shared.backend;
    req.snapshot = shared.snapshot;
    req.repetition = job.repetition;
    req.cancel = Arc::clone(&shared.cancel);
    req.busy_beside = beside;
    req.expect_fail = job
        .expect_fail
        .then(|| "the manifest expects this cell to fail".to_string());
    shared.runner.run(req, shared.observer)
}
