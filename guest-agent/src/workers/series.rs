//! A worker's progress over time: cumulative iterations at every multiple
//! of [`SAMPLE_INTERVAL_MS`] of the guest's monotonic clock.
//!
//! The worker records nothing on a timer: at each progress point it fills
//! in every sample boundary passed since the previous one with the count
//! before this point (no progress happened in between, so that count is
//! exact). A starved worker therefore leaves a flat stretch in its series
//! once it runs again, or when it is stopped.

use ktstr_proto::{ProgressPoint, MAX_PROGRESS_POINTS, SAMPLE_INTERVAL_MS};

/// The series being recorded.
#[derive(Debug, Clone)]
pub struct ProgressSeries {
    next_boundary_ms: f64,
    points: Vec<ProgressPoint>,
}

/// The first boundary after `mono_ms`.
fn boundary_after(mono_ms: f64) -> f64 {
    (mono_ms / SAMPLE_INTERVAL_MS).floor() * SAMPLE_INTERVAL_MS + SAMPLE_INTERVAL_MS
}

impl ProgressSeries {
    /// A series starting at guest-monotonic time `mono_ms`.
    pub fn start(mono_ms: f64) -> Self {
        ProgressSeries {
            next_boundary_ms: boundary_after(mono_ms),
            points: Vec::new(),
        }
    }

    /// Time is `mono_ms`; `iterations` were completed before now.
    pub fn advance(&mut self, mono_ms: f64, iterations: u64) {
        while self.next_boundary_ms <= mono_ms {
            if self.points.len() >= MAX_PROGRESS_POINTS {
                // Full: stop recording (and stop looping over boundaries).
                self.next_boundary_ms = f64::INFINITY;
                return;
            }
            self.points.push(ProgressPoint {
                at_ms: self.next_boundary_ms,
                iterations,
            });
            self.next_boundary_ms += SAMPLE_INTERVAL_MS;
        }
    }

    /// The points recorded up to `mono_ms` with `iterations` done.
    pub fn finish(mut self, mono_ms: f64, iterations: u64) -> Vec<ProgressPoint> {
        self.advance(mono_ms, iterations);
        self.points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_passed_in_a_stall_keep_the_count_before_it() {
        let mut s = ProgressSeries::start(1010.0);
        s.advance(1100.0, 0);
        s.advance(1260.0, 5); // passes 1250
        s.advance(1900.0, 6); // stalled across 1500 and 1750
        let pts = s.finish(2010.0, 9); // passes 2000
        let got: Vec<(f64, u64)> = pts.iter().map(|p| (p.at_ms, p.iterations)).collect();
        assert_eq!(
            got,
            vec![(1250.0, 5), (1500.0, 6), (1750.0, 6), (2000.0, 9)]
        );
    }

    #[test]
    fn the_series_is_bounded() {
        let mut s = ProgressSeries::start(0.0);
        s.advance(1e12, 1);
        s.advance(2e12, 2);
        assert_eq!(s.finish(3e12, 3).len(), MAX_PROGRESS_POINTS);
    }
}
