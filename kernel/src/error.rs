//! Typed errors of the kernel pipeline. Every message is one line unless it
//! lists several items (dropped options, build log tail), and every message
//! names the file, URL or field it is about.

use std::path::PathBuf;

use crate::option::DroppedOption;

/// Everything that can go wrong while resolving, fetching, configuring,
/// building or caching a guest kernel.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A source tarball path that does not exist.
    #[error("kernel source tarball {path}: not found")]
    TarballMissing {
        /// The path the user gave.
        path: PathBuf,
    },
    /// A source tarball that cannot be decompressed or read as tar, or holds
    /// no kernel tree.
    #[error("kernel source tarball {path}: {reason}")]
    TarballCorrupt {
        /// The tarball.
        path: PathBuf,
        /// What was wrong, on one line.
        reason: String,
    },
    /// A directory that is not a kernel source tree.
    #[error("kernel source tree {path}: {reason}")]
    BadTree {
        /// The directory.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A network fetch that failed.
    #[error("download {url}: {reason}")]
    Download {
        /// The URL fetched.
        url: String,
        /// What failed.
        reason: String,
    },
    /// A downloaded file whose SHA-256 differs from the published sum.
    #[error("checksum mismatch for {file}: {origin} lists {expected}, the download has {actual}")]
    Checksum {
        /// The file that was checked.
        file: String,
        /// Where the expected sum came from.
        origin: String,
        /// Expected hex digest.
        expected: String,
        /// Actual hex digest.
        actual: String,
    },
    /// The published checksum list does not mention the file.
    #[error("{origin} has no checksum for {file}")]
    ChecksumMissing {
        /// The file looked up.
        file: String,
        /// The checksum list.
        origin: String,
    },
    /// Options a fragment asked for that `olddefconfig` dropped or changed.
    #[error("kernel config dropped {} option(s) the fragments ask for (their dependencies are off):\n{}",
        .0.len(), .0.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n"))]
    DroppedOptions(Vec<DroppedOption>),
    /// A kconfig fragment line that is neither an option nor a comment.
    #[error("{path}:{line}: not a kconfig line: {text}")]
    BadFragment {
        /// The fragment file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The offending text.
        text: String,
    },
    /// A build step (make, merge_config.sh) that exited non-zero.
    #[error("{step} failed ({status}); full log: {log}\n{tail}")]
    BuildStep {
        /// The step, as a short description.
        step: String,
        /// Exit status description.
        status: String,
        /// Path of the complete log.
        log: PathBuf,
        /// The last lines of the log.
        tail: String,
    },
    /// A build step that ran but did not produce an expected file.
    #[error("{step} finished but {path} is missing")]
    MissingOutput {
        /// The step.
        step: String,
        /// The expected output.
        path: PathBuf,
    },
    /// An entry's selftests runner must be built but its source is gone.
    #[error("the source tree of kernel {key} is no longer on disk, so its selftests runner cannot be built; `ktstr kernel build --force` rebuilds the entry with it")]
    SourceGone {
        /// The entry's cache key.
        key: String,
    },
    /// A tool the pipeline needs is not installed.
    #[error("required tool `{tool}` not found on PATH ({hint})")]
    MissingTool {
        /// The program name.
        tool: String,
        /// How to get it.
        hint: String,
    },
    /// An I/O error on a named path. (The error is a field, not a
    /// `source`: the message already says it, and a chain printer would
    /// repeat it.)
    #[error("{path}: {error}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// `kernels.toml` is malformed; the message names the field.
    #[error("{path}: {message}")]
    KernelsToml {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A `--kernel ID` that matches nothing.
    #[error("no kernel matches `{id}`: not a kernels.toml name, cache key, version, source tree, tarball, bzImage or vmlinux")]
    UnknownKernel {
        /// The identifier given.
        id: String,
    },
    /// A kernel that resolves to a source which has not been built yet.
    #[error("kernel `{id}` is not built yet (cache key {key}); run `ktstr kernel build {id}`")]
    NotBuilt {
        /// The identifier given.
        id: String,
        /// The cache key it would have.
        key: String,
    },
    /// A cache entry that exists but cannot be used (a corrupt manifest, a
    /// file that is missing or differs from its recorded hash).
    #[error("kernel `{id}`: its cache entry {key} is not usable: {reason} (`{rebuild}` rebuilds it, `ktstr kernel clean` removes it)")]
    InvalidEntry {
        /// The identifier given (`(default)` for the default kernel).
        id: String,
        /// The command that rebuilds it.
        rebuild: String,
        /// The entry's cache key.
        key: String,
        /// Why it is not usable.
        reason: String,
    },
    /// No source was given and the default one is not installed.
    #[error("no kernel source given and the default {path} is missing (apt-get install linux-source-6.12, or pass a tarball, tree or version)")]
    NoDefaultSource {
        /// The default tarball path.
        path: PathBuf,
    },
    /// `KTSTR_CACHE_DIR` is set to nothing.
    #[error("KTSTR_CACHE_DIR is set but empty: unset it for the default cache ($XDG_CACHE_HOME/ktstr) or name a directory")]
    EmptyCacheDir,
    /// No cache directory could be determined.
    #[error("cannot determine a cache directory: set KTSTR_CACHE_DIR or XDG_CACHE_HOME")]
    NoCacheDir,
}

impl KernelError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        KernelError::Io {
            path: path.into(),
            error,
        }
    }
}

/// Result alias for the kernel pipeline.
pub type Result<T> = std::result::Result<T, KernelError>;

/// Extension to attach a path to `std::io::Result`.
pub(crate) trait IoContext<T> {
    /// Maps the error to [`KernelError::Io`] naming `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| KernelError::io(path, e))
    }
}
