//! What can go wrong reading, writing and comparing datasets. Every error
//! that comes from a file names it.

use std::path::PathBuf;

/// A stats error.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// A file or directory cannot be read or written.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// A sidecar cannot be read (another schema, not a sidecar).
    #[error(transparent)]
    Sidecar(#[from] ktstr_run::SidecarError),
    /// A Parquet file is corrupt, truncated or not Parquet.
    #[error("{}: not a readable Parquet table: {reason}", path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What Polars said.
        reason: String,
    },
    /// A dataset's manifest or tables are of another shape than this
    /// ktstr writes, or two datasets do not match.
    #[error("{}: {detail}", path.display())]
    Schema {
        /// The dataset (or table) at fault.
        path: PathBuf,
        /// What does not match.
        detail: String,
    },
    /// Nothing to work on.
    #[error("{}: {what}", path.display())]
    Empty {
        /// Where it was looked for.
        path: PathBuf,
        /// What is missing.
        what: String,
    },
    /// A run that is not there.
    #[error("no run `{name}` under {} (runs there: {known})", runs.display())]
    UnknownRun {
        /// What was asked for.
        name: String,
        /// The runs directory.
        runs: PathBuf,
        /// The runs it has.
        known: String,
    },
    /// A metric that is not in the registry.
    #[error("unknown metric `{name}` (metrics: {known})")]
    UnknownMetric {
        /// What was asked for.
        name: String,
        /// The known metrics.
        known: String,
    },
    /// A filter, `--by` column or gate that cannot be used.
    #[error("{what}: {why}")]
    BadArgument {
        /// The argument as given.
        what: String,
        /// Why it is refused.
        why: String,
    },
    /// A dataframe operation failed (a bug or an inconsistent dataset).
    #[error("{context}: {reason}")]
    Frame {
        /// What was being done.
        context: String,
        /// What Polars said.
        reason: String,
    },
    /// The HTML report cannot be drawn.
    #[error("drawing {plot}: {reason}")]
    Plot {
        /// The plot.
        plot: String,
        /// What went wrong.
        reason: String,
    },
}

/// Wraps a Polars error with what was being done.
pub fn frame(context: &str) -> impl Fn(polars::error::PolarsError) -> StatsError + '_ {
    move |e| StatsError::Frame {
        context: context.to_string(),
        reason: e.to_string(),
    }
}

/// Wraps an I/O error with its path.
pub fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> StatsError + '_ {
    move |error| StatsError::Io {
        path: path.to_path_buf(),
        error,
    }
}
