//! Errors of the scheduler registry and installer.

use std::path::PathBuf;

/// What can go wrong reading schedulers.toml or installing a scheduler.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    /// A file could not be read or written. (The error is a field, not a
    /// `source`: the message already says it, and a chain printer would
    /// repeat it.)
    #[error("{path}: {error}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// schedulers.toml does not parse or has an unknown field.
    #[error("{path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// toml's message (it names the line, column and field).
        message: String,
    },
    /// A value in schedulers.toml is out of range.
    #[error("{path}: scheduler.{name}.{field}: {message}")]
    Field {
        /// The file.
        path: PathBuf,
        /// The scheduler table.
        name: String,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The kernel cache layout (root directory, locks) failed.
    #[error(transparent)]
    Cache(#[from] ktstr_kernel::KernelError),
    /// A tool the install needs is missing.
    #[error("{tool} not found: {hint}")]
    MissingTool {
        /// The program.
        tool: String,
        /// How to get it.
        hint: String,
    },
    /// `cargo install` failed.
    #[error("cargo install of {what} failed ({status}); its output is above")]
    CargoFailed {
        /// The crate or path.
        what: String,
        /// Its exit status.
        status: String,
    },
    /// The install produced no binary of the expected name.
    #[error("cargo installed {what} but no binary named `{binary}` (it installed: {found})")]
    NoBinary {
        /// The crate or path.
        what: String,
        /// The binary looked for.
        binary: String,
        /// What it did install.
        found: String,
    },
}

impl SchedError {
    pub(crate) fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        SchedError::Io {
            path: path.into(),
            error,
        }
    }
}
