//! `custom([...])`: the script's own loop of steps.

use std::os::unix::fs::FileExt;
use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use ktstr_plan::work::CustomStep;

use super::{sleep_sample, Run, IO_SYNC_BLOCKS};
use crate::workers::kinds::cpu::alu_rounds;
use crate::workers::probe::Probe;
use crate::workers::sys;

/// Runs the steps in order, one progress point per pass.
pub(super) fn custom(r: &Run, p: &mut Probe, steps: &[CustomStep]) -> Result<(), String> {
    let path = std::env::temp_dir().join(format!("ktstr-custom-{}", std::process::id()));
    let needs_file = steps.iter().any(|s| matches!(s, CustomStep::Io { .. }));
    let file = needs_file
        .then(|| std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display())))
        .transpose()?;
    let never = AtomicU32::new(0);
    let mut offset = 0u64;
    let result = (|| {
        while !r.done() {
            for step in steps {
                match step {
                    CustomStep::Spin { us } => {
                        let end = Instant::now() + Duration::from_micros(u64::from(*us));
                        while Instant::now() < end {
                            alu_rounds(64);
                        }
                    }
                    CustomStep::Sleep { us } => {
                        sleep_sample(p, Duration::from_micros(u64::from(*us)));
                    }
                    CustomStep::Yield => sys::yield_now(),
                    CustomStep::Io { kb } => {
                        let f = file.as_ref().expect("opened for io steps");
                        let block = vec![0x42u8; *kb as usize * 1024];
                        let span = (IO_SYNC_BLOCKS * 4096).max(block.len() as u64);
                        f.write_all_at(&block, offset)
                            .and_then(|_| f.sync_data())
                            .map_err(|e| format!("custom io: {e}"))?;
                        offset = (offset + block.len() as u64) % span;
                    }
                    CustomStep::FutexWait { us } => {
                        let d = Duration::from_micros(u64::from(*us));
                        let t = Instant::now();
                        sys::futex_wait(&never, 0, d);
                        p.wake(t.elapsed().saturating_sub(d));
                    }
                }
                if r.done() {
                    break;
                }
            }
            p.progress();
        }
        Ok(())
    })();
    if needs_file {
        let _ = std::fs::remove_file(&path);
    }
    result
}
