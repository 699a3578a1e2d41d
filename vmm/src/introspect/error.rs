//! Errors of reading the guest kernel from the host.

/// Why the guest kernel cannot be read (or read any further). None of these
/// stops a run: the monitor reports itself unavailable and says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrospectError {
    /// A guest-physical range lies outside guest RAM.
    #[error("guest-physical {gpa:#x}+{len} is outside guest RAM")]
    OutOfRange {
        /// The first byte asked for.
        gpa: u64,
        /// How many bytes.
        len: usize,
    },
    /// A kernel virtual address is in no region the host can translate.
    #[error("kernel address {addr:#x} ({what}) is not in the kernel image or the direct map")]
    Untranslatable {
        /// The address.
        addr: u64,
        /// What was being read.
        what: String,
    },
    /// The vmlinux file could not be read or is not a usable ELF.
    #[error("{path}: {reason}")]
    Vmlinux {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A symbol the monitor needs is missing from the vmlinux.
    #[error("{path}: no symbol `{symbol}` (a vmlinux without symbols cannot be introspected)")]
    MissingSymbol {
        /// The file.
        path: String,
        /// The symbol.
        symbol: String,
    },
    /// The kernel's BTF is missing, corrupt or lacks a type or field.
    #[error("BTF: {0}")]
    Btf(String),
    /// Guest RAM could not be mapped.
    #[error("mapping guest RAM: {0}")]
    Map(String),
}
