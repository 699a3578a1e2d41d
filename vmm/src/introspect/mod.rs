//! Reading the guest kernel from the host: guest RAM mapped read-only
//! ([`GuestMemory`]), the kernel's symbols and BTF field offsets
//! ([`KernelLayout`]), a reader of its run queues ([`KernelReader`]), the
//! sampling [`Monitor`], and the scheduler's BPF global data decoded with
//! the BTF the guest sends ([`decode_bpf_globals`]).

mod bpf_data;
mod btf_layout;
mod error;
mod guest_memory;
mod kernel_layout;
mod kernel_reader;
mod monitor;

pub use bpf_data::decode as decode_bpf_globals;
pub use error::IntrospectError;
pub use guest_memory::{ram_memfd, GuestMemory, RamBacking};
pub use kernel_layout::{
    FieldAt, KernelLayout, KernelSymbols, RqLayout, TaskLayout, LAYOUT_FORMAT,
};
pub use kernel_reader::{
    KernelReader, DEFAULT_PAGE_OFFSET, DEFAULT_PAGE_OFFSET_L5, START_KERNEL_MAP,
};
pub use monitor::{Monitor, MonitorConfig};

#[cfg(test)]
mod tests;
