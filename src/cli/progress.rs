//! Draws progress with indicatif on stderr (bars hidden when stderr is not
//! a terminal); a line reported outside any phase is printed as it is.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ktstr_kernel::Observer;

/// An [`Observer`] that shows one bar or spinner per phase.
pub struct Progress {
    bar: Mutex<Option<ProgressBar>>,
    lines: AtomicU64,
}

impl Progress {
    /// A new reporter.
    pub fn new() -> Self {
        Progress {
            bar: Mutex::new(None),
            lines: AtomicU64::new(0),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().expect("progress lock").as_ref() {
            f(bar);
        }
    }
}

impl Observer for Progress {
    fn phase(&self, name: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => ProgressBar::new(t).with_style(
                ProgressStyle::with_template("{prefix} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                    .expect("template")
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {wide_msg}")
                    .expect("template"),
            ),
        };
        bar.set_prefix(name.to_string());
        bar.enable_steady_tick(Duration::from_millis(200));
        self.lines.store(0, Ordering::Relaxed);
        if let Some(old) = self.bar.lock().expect("progress lock").replace(bar) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, done: u64) {
        self.with_bar(|b| b.set_position(done));
    }

    fn line(&self, text: &str) {
        let bar = self.bar.lock().expect("progress lock");
        match bar.as_ref() {
            Some(b) => {
                let n = self.lines.fetch_add(1, Ordering::Relaxed) + 1;
                b.set_message(format!("{n} lines | {text}"));
            }
            // Outside a phase a line is a notice of its own.
            None => errln!("{text}"),
        }
    }

    fn finish(&self, summary: &str) {
        if let Some(bar) = self.bar.lock().expect("progress lock").take() {
            let prefix = bar.prefix();
            bar.finish_and_clear();
            if !bar.is_hidden() {
                errln!("{prefix}: {summary} in {:.1}s", bar.elapsed().as_secs_f64());
            }
        }
    }
}
