//! Reads one guest kernel's run queues from guest RAM with a
//! [`KernelLayout`]: kernel-image addresses and direct-map addresses are
//! translated to guest-physical ones (the guest boots with `nokaslr`, so
//! both bases are the kernel's defaults, checked against the kernel's own
//! variables), per-CPU variables through `__per_cpu_offset`.

use ktstr_plan::monitor::CpuSample;

use super::kernel_layout::{FieldAt, KernelLayout};
use super::{GuestMemory, IntrospectError};

/// Where the x86-64 kernel image is mapped (`__START_KERNEL_map`).
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// The kernel image mapping's size (`KERNEL_IMAGE_SIZE`, 1 GiB).
const KERNEL_IMAGE_SIZE: u64 = 1 << 30;
/// The direct map's base without KASLR, 4-level paging.
pub const DEFAULT_PAGE_OFFSET: u64 = 0xffff_8880_0000_0000;
/// The direct map's base without KASLR, 5-level paging (QEMU's `-cpu
/// max` offers LA57, and the kernel takes it).
pub const DEFAULT_PAGE_OFFSET_L5: u64 = 0xff11_0000_0000_0000;
/// The direct map's extent with 4-level paging (64 TiB; 5-level maps
/// more, but no guest here has 64 TiB of RAM).
const DIRECT_MAP_SIZE: u64 = 64 << 40;
/// The most CPUs a reader accepts (the kernel's `NR_CPUS` here).
const MAX_CPUS: usize = 8192;

/// A reader of one booted guest kernel.
#[derive(Debug)]
pub struct KernelReader<'m> {
    memory: &'m GuestMemory,
    layout: KernelLayout,
    page_offset: u64,
    phys_base: u64,
    rq_addrs: Vec<u64>,
}

impl<'m> KernelReader<'m> {
    /// Reads the kernel's bases and each CPU's run queue address; fails
    /// when they make no sense (a kernel not yet booted, another kernel
    /// than `layout` describes, a guest that scribbled over them).
    pub fn new(
        memory: &'m GuestMemory,
        layout: KernelLayout,
        cpus: usize,
    ) -> Result<Self, IntrospectError> {
        if cpus == 0 || cpus > MAX_CPUS {
            return Err(IntrospectError::Map(format!("{cpus} CPUs")));
        }
        let mut r = KernelReader {
            memory,
            layout,
            page_offset: DEFAULT_PAGE_OFFSET,
            phys_base: 0,
            rq_addrs: Vec::new(),
        };
        let phys_base = r.image_u64(r.layout.symbols.phys_base, "phys_base")?;
        if phys_base != 0 {
            return Err(IntrospectError::Map(format!(
                "phys_base is {phys_base:#x}: the kernel was relocated (booted without nokaslr?)"
            )));
        }
        let page_offset = r.image_u64(r.layout.symbols.page_offset_base, "page_offset_base")?;
        if page_offset != DEFAULT_PAGE_OFFSET && page_offset != DEFAULT_PAGE_OFFSET_L5 {
            return Err(IntrospectError::Map(format!(
                "page_offset_base is {page_offset:#x}, neither {DEFAULT_PAGE_OFFSET:#x} nor \
                 {DEFAULT_PAGE_OFFSET_L5:#x}: a randomized direct map (booted without nokaslr?)"
            )));
        }
        r.page_offset = page_offset;
        for cpu in 0..cpus {
            let at = r.layout.symbols.per_cpu_offset + 8 * cpu as u64;
            let offset = r.image_u64(at, "__per_cpu_offset")?;
            let rq = offset.wrapping_add(r.layout.symbols.runqueues);
            // Checked once here so that a bad offset says so by name.
            r.direct_pa(rq, "runqueues")?;
            r.rq_addrs.push(rq);
        }
        Ok(r)
    }

    /// The guest-physical address of kernel-image address `addr`.
    fn image_pa(&self, addr: u64, what: &str) -> Result<u64, IntrospectError> {
        match addr.checked_sub(START_KERNEL_MAP) {
            Some(off) if off < KERNEL_IMAGE_SIZE => Ok(off + self.phys_base),
            _ => Err(IntrospectError::Untranslatable {
                addr,
                what: what.into(),
            }),
        }
    }

    /// The guest-physical address of direct-map (or kernel-image) `addr`.
    fn direct_pa(&self, addr: u64, what: &str) -> Result<u64, IntrospectError> {
        match addr.checked_sub(self.page_offset) {
            Some(off) if off < DIRECT_MAP_SIZE => Ok(off),
            _ => self.image_pa(addr, what),
        }
    }

    fn image_u64(&self, addr: u64, what: &str) -> Result<u64, IntrospectError> {
        self.memory.read_u64(self.image_pa(addr, what)?)
    }

    fn field(&self, base: u64, f: FieldAt, what: &str) -> Result<u64, IntrospectError> {
        let pa = self.direct_pa(base.wrapping_add(f.offset), what)?;
        match f.size {
            4 => self.memory.read_u32(pa).map(u64::from),
            8 => self.memory.read_u64(pa),
            n => Err(IntrospectError::Btf(format!("{what} is {n} bytes"))),
        }
    }

    /// How many CPUs this reader reads.
    pub fn cpus(&self) -> usize {
        self.rq_addrs.len()
    }

    /// CPU `cpu`'s run queue now.
    pub fn cpu(&self, cpu: usize) -> Result<CpuSample, IntrospectError> {
        let rq = *self
            .rq_addrs
            .get(cpu)
            .ok_or_else(|| IntrospectError::Map(format!("no CPU {cpu}")))?;
        let l = &self.layout.rq;
        let opt = |f: Option<FieldAt>, what: &str| -> Result<Option<u32>, IntrospectError> {
            f.map(|f| self.field(rq, f, what).map(|v| v as u32))
                .transpose()
        };
        let curr = self.field(rq, l.curr, "rq.curr")?;
        let (curr_pid, curr_comm) = self.task(curr)?;
        Ok(CpuSample {
            nr_running: self.field(rq, l.nr_running, "rq.nr_running")? as u32,
            scx_nr_running: opt(l.scx_nr_running, "rq.scx.nr_running")?,
            local_dsq: opt(l.scx_local_dsq_nr, "rq.scx.local_dsq.nr")?,
            clock_ns: self.field(rq, l.clock, "rq.clock")?,
            curr_pid,
            curr_comm,
        })
    }

    /// The pid and name of the task at `task`.
    fn task(&self, task: u64) -> Result<(i32, String), IntrospectError> {
        let t = &self.layout.task;
        let pid = self.field(task, t.pid, "task_struct.pid")? as u32 as i32;
        let mut comm = [0u8; 16];
        let pa = self.direct_pa(task.wrapping_add(t.comm.offset), "task_struct.comm")?;
        self.memory.read(pa, &mut comm)?;
        let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
        Ok((pid, String::from_utf8_lossy(&comm[..end]).into_owned()))
    }
}
