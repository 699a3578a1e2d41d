//! Where the monitor finds what it reads in a guest kernel: symbol
//! addresses from the vmlinux ELF (`goblin`) and field offsets from its
//! BTF. Computed once per kernel; the run library caches it beside the
//! kernel cache entry it describes.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::btf_layout::{self, Field};
use super::IntrospectError;

/// The layout format; a cached layout of another format is recomputed.
pub const LAYOUT_FORMAT: u32 = 1;

/// Symbol addresses (kernel virtual) the monitor starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelSymbols {
    /// `runqueues`: the per-CPU `struct rq`, as an offset into each CPU's
    /// per-CPU area.
    pub runqueues: u64,
    /// `__per_cpu_offset`: the array of per-CPU area offsets.
    pub per_cpu_offset: u64,
    /// `page_offset_base`: the variable holding the direct map's base.
    pub page_offset_base: u64,
    /// `phys_base`: the variable holding where the image was loaded.
    pub phys_base: u64,
}

/// A field's byte offset and size, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldAt {
    /// Byte offset in its struct.
    pub offset: u64,
    /// Size in bytes.
    pub size: u64,
}

impl From<Field> for FieldAt {
    fn from(f: Field) -> Self {
        FieldAt {
            offset: f.offset,
            size: f.size,
        }
    }
}

/// The `struct rq` fields the monitor reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RqLayout {
    /// `nr_running`.
    pub nr_running: FieldAt,
    /// `clock`.
    pub clock: FieldAt,
    /// `curr` (a task pointer).
    pub curr: FieldAt,
    /// `scx.nr_running` (None without sched_ext).
    pub scx_nr_running: Option<FieldAt>,
    /// `scx.local_dsq.nr`.
    pub scx_local_dsq_nr: Option<FieldAt>,
}

/// The `struct task_struct` fields the monitor reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskLayout {
    /// `pid`.
    pub pid: FieldAt,
    /// `comm`.
    pub comm: FieldAt,
}

/// Everything the monitor needs to know about one kernel build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelLayout {
    /// [`LAYOUT_FORMAT`] when computed.
    pub format: u32,
    /// Symbol addresses.
    pub symbols: KernelSymbols,
    /// Run queue fields.
    pub rq: RqLayout,
    /// Task fields.
    pub task: TaskLayout,
}

impl KernelLayout {
    /// Reads the layout from a vmlinux with symbols and a `.BTF` section.
    pub fn from_vmlinux(path: &Path) -> Result<Self, IntrospectError> {
        let shown = path.display().to_string();
        let vmlinux_err = |reason: String| IntrospectError::Vmlinux {
            path: shown.clone(),
            reason,
        };
        let file = std::fs::File::open(path).map_err(|e| vmlinux_err(e.to_string()))?;
        // SAFETY: a read-only private mapping of a cache file nothing
        // rewrites in place (cache entries are replaced by rename); the
        // bytes are parsed, never trusted as references.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| vmlinux_err(e.to_string()))?;
        Self::from_elf_bytes(&map, &shown)
    }

    /// The same from the bytes of a vmlinux (`path` names it in errors).
    pub fn from_elf_bytes(bytes: &[u8], path: &str) -> Result<Self, IntrospectError> {
        let elf = goblin::elf::Elf::parse(bytes).map_err(|e| IntrospectError::Vmlinux {
            path: path.into(),
            reason: format!("not a usable ELF: {e}"),
        })?;
        let symbol = |name: &str| {
            elf.syms
                .iter()
                .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
                .map(|s| s.st_value)
                .ok_or_else(|| IntrospectError::MissingSymbol {
                    path: path.into(),
                    symbol: name.into(),
                })
        };
        let symbols = KernelSymbols {
            runqueues: symbol("runqueues")?,
            per_cpu_offset: symbol("__per_cpu_offset")?,
            page_offset_base: symbol("page_offset_base")?,
            phys_base: symbol("phys_base")?,
        };
        let btf_bytes = elf
            .section_headers
            .iter()
            .find(|h| elf.shdr_strtab.get_at(h.sh_name) == Some(".BTF"))
            .and_then(|h| {
                let start = usize::try_from(h.sh_offset).ok()?;
                let end = start.checked_add(usize::try_from(h.sh_size).ok()?)?;
                bytes.get(start..end)
            })
            .ok_or_else(|| IntrospectError::Btf(format!("{path} has no .BTF section")))?;
        Self::from_btf(symbols, btf_bytes)
    }

    /// Completes a layout from `symbols` and raw BTF bytes.
    pub fn from_btf(symbols: KernelSymbols, btf_bytes: &[u8]) -> Result<Self, IntrospectError> {
        let btf = btf_layout::parse(btf_bytes)?;
        let rq = |p: &str| btf_layout::field(&btf, "rq", p).map(FieldAt::from);
        let sized = |f: FieldAt, size: u64, what: &str| {
            if f.size == size {
                Ok(f)
            } else {
                Err(IntrospectError::Btf(format!(
                    "{what} is {} bytes, expected {size}",
                    f.size
                )))
            }
        };
        let layout = KernelLayout {
            format: LAYOUT_FORMAT,
            symbols,
            rq: RqLayout {
                nr_running: sized(rq("nr_running")?, 4, "rq.nr_running")?,
                clock: sized(rq("clock")?, 8, "rq.clock")?,
                curr: sized(rq("curr")?, 8, "rq.curr")?,
                scx_nr_running: rq("scx.nr_running").ok(),
                scx_local_dsq_nr: rq("scx.local_dsq.nr").ok(),
            },
            task: TaskLayout {
                pid: sized(
                    btf_layout::field(&btf, "task_struct", "pid")?.into(),
                    4,
                    "task_struct.pid",
                )?,
                comm: sized(
                    btf_layout::field(&btf, "task_struct", "comm")?.into(),
                    16,
                    "task_struct.comm",
                )?,
            },
        };
        Ok(layout)
    }
}
