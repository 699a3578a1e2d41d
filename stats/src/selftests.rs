//! The selftests table: one row per sched_ext selftest of each selftest
//! job (its configuration, the test, how it came out and how long it
//! took), so pass rates and durations compare across kernels and
//! topologies like any job's figures.

use polars::prelude::*;

use ktstr_run::Sidecar;

use crate::error::{frame, StatsError};
use crate::tables::key_columns;

/// Column builders for the selftests table.
#[derive(Default)]
pub(crate) struct SelftestCols {
    key: [Vec<String>; 8],
    job: Vec<String>,
    repetition: Vec<u32>,
    test: Vec<String>,
    status: Vec<String>,
    passed: Vec<bool>,
    duration_ms: Vec<u64>,
}

impl SelftestCols {
    /// Adds every selftest of job `s` (none for a scenario job), with
    /// `key`, its configuration columns.
    pub(crate) fn push(&mut self, key: &[String; 8], s: &Sidecar) {
        for c in &s.telemetry.selftests {
            for (col, v) in self.key.iter_mut().zip(key.iter()) {
                col.push(v.clone());
            }
            self.job.push(s.job.clone());
            self.repetition.push(s.repetition.index);
            self.test.push(c.name.clone());
            self.status.push(c.status.word().to_string());
            self.passed.push(c.status.is_success());
            self.duration_ms.push(c.duration_ms);
        }
    }

    /// The selftests table.
    pub(crate) fn finish(self) -> Result<DataFrame, StatsError> {
        let mut cols = key_columns(self.key);
        cols.extend([
            Column::new("job".into(), self.job),
            Column::new("repetition".into(), self.repetition),
            Column::new("test".into(), self.test),
            Column::new("status".into(), self.status),
            Column::new("passed".into(), self.passed),
            Column::new("duration_ms".into(), self.duration_ms),
        ]);
        DataFrame::new_infer_height(cols).map_err(frame("building the selftests table"))
    }
}
