//! The gauntlet's progress: on a terminal, an indicatif line per running
//! job under an overall bar with its ETA; otherwise one plain line per job
//! as it starts and ends. Both on stderr (stdout keeps the matrix or the
//! JSON).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use ktstr_run::gauntlet::{GauntletJob, PoolObserver};
use ktstr_run::{JobResult, RunError};

/// Draws a sweep's progress.
pub struct View {
    bars: Option<(MultiProgress, ProgressBar)>,
    running: Mutex<HashMap<String, ProgressBar>>,
    done: Mutex<usize>,
    total: usize,
}

impl View {
    /// A view of `total` jobs.
    pub fn new(total: usize) -> Self {
        let bars = std::io::stderr().is_terminal().then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let overall = multi.add(
                ProgressBar::new(total as u64).with_style(
                    ProgressStyle::with_template("gauntlet [{bar:30}] {pos}/{len} jobs, ETA {eta}")
                        .expect("template")
                        .progress_chars("=> "),
                ),
            );
            (multi, overall)
        });
        View {
            bars,
            running: Mutex::new(HashMap::new()),
            done: Mutex::new(0),
            total,
        }
    }

    /// Clears the bars.
    pub fn finish(&self) {
        if let Some((_, overall)) = &self.bars {
            overall.finish_and_clear();
        }
    }
}

fn label(job: &GauntletJob) -> String {
    format!(
        "{} {} {} ({})",
        job.cell.scenario, job.cell.preset, job.cell.scheduler, job.topology
    )
}

impl PoolObserver for View {
    fn started(&self, job: &GauntletJob, running: usize) {
        match &self.bars {
            Some((multi, _)) => {
                let bar = multi.add(
                    ProgressBar::new_spinner().with_style(
                        ProgressStyle::with_template("  {spinner} [{elapsed:>4}] {msg}")
                            .expect("template"),
                    ),
                );
                bar.set_message(label(job));
                bar.enable_steady_tick(Duration::from_millis(200));
                self.running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(job.key(), bar);
            }
            None => errln!("start {} ({running} running)", label(job)),
        }
    }

    fn finished(&self, job: &GauntletJob, result: &Result<JobResult, RunError>) {
        let n = {
            let mut d = self.done.lock().unwrap_or_else(|p| p.into_inner());
            *d += 1;
            *d
        };
        let line = match result {
            Ok(r) => format!(
                "[{n}/{}] {} [{:>5.1}s] {}",
                self.total,
                r.verdict.outcome.label(),
                r.seconds,
                label(job)
            ),
            Err(e) => format!("[{n}/{}] ERROR {}: {e}", self.total, label(job)),
        };
        match &self.bars {
            Some((multi, overall)) => {
                if let Some(bar) = self
                    .running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&job.key())
                {
                    bar.finish_and_clear();
                    multi.remove(&bar);
                }
                let _ = multi.println(line);
                overall.inc(1);
            }
            None => errln!("{line}"),
        }
    }
}
