//! Errors of starting and driving VMs.

use std::path::PathBuf;

/// What can stop a VM from being started or driven. How a VM that did run
/// ended (panic, timeout, ...) is not an error but a [`crate::VmEnd`].
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// A file or directory operation failed. (The error is a field, not a
    /// `source`: the message already says it, and a chain printer would
    /// repeat it.)
    #[error("{}: {error}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// The backend program is not installed.
    #[error("{program} not found on PATH: {hint}")]
    MissingProgram {
        /// What was looked for.
        program: String,
        /// How to get it.
        hint: String,
    },
    /// The backend cannot run this VM (topology, memory, ...).
    #[error("the {backend} backend cannot run this VM: {reason}")]
    Unsupported {
        /// The backend.
        backend: String,
        /// Why.
        reason: String,
    },
    /// The backend process could not be started or talked to.
    #[error("starting the VM failed: {0}")]
    Launch(String),
    /// A binary for the initramfs could not be read or its libraries found.
    #[error("initramfs: {0}")]
    Initramfs(String),
    /// A snapshot could not be taken, loaded or restored.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// A KVM ioctl (or guest memory setup) of the own VMM failed.
    #[error("KVM {op}: {message}")]
    Kvm {
        /// What was being done.
        op: &'static str,
        /// The error.
        message: String,
    },
}

impl VmError {
    /// A failed KVM operation.
    pub fn kvm(op: &'static str, e: impl std::fmt::Display) -> Self {
        VmError::Kvm {
            op,
            message: e.to_string(),
        }
    }
}

/// Attaches a path to an I/O error.
pub(crate) trait IoAt<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, VmError>;
}

impl<T> IoAt<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, VmError> {
        self.map_err(|error| VmError::Io {
            path: path.into(),
            error,
        })
    }
}
