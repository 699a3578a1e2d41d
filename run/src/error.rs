//! What can stop the run library before or while it boots a VM. A VM that
//! did run and failed is not an error: it is a [`crate::JobResult`] whose
//! verdict says so.

use std::path::PathBuf;

/// Errors of preparing and running jobs.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The VM layer failed (initramfs, backend, launching).
    #[error(transparent)]
    Vm(#[from] ktstr_vmm::VmError),
    /// The kernel cache failed (its layout, a lock).
    #[error(transparent)]
    Kernel(#[from] ktstr_kernel::KernelError),
    /// A file the library writes or reads failed. (The error is a field,
    /// not a source: the message already says it.)
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// Something the guest needs is not on this host (the guest agent,
    /// busybox).
    #[error("{0}")]
    Missing(String),
}

impl RunError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        RunError::Io {
            path: path.into(),
            error,
        }
    }
}
