//! ktstr-topology: the CPU topology a test declares and the layout a
//! machine actually has.
//!
//! [`Topology`] is the declaration (`2n4l2c1t`: NUMA nodes, LLCs, cores per
//! LLC, threads per core). [`CpuLayout`] is what an operating system shows:
//! online CPUs, LLC groups, SMT sibling groups, NUMA nodes and their
//! distances. [`Topology::expected_layout`] says which layout a VM of that
//! topology must show; [`sysfs::read_layout`] reads one from a sysfs tree
//! (the host's or, inside a guest, the guest's). This crate is shared by the
//! engine, the VMM, the guest agent and the CLI, and depends on none of them.

pub mod cpulist;
mod error;
mod layout;
pub mod presets;
mod spec;
pub mod sysfs;

pub use error::TopologyError;
pub use layout::{CpuLayout, NumaNode};
pub use spec::{CpuPosition, Topology, LOCAL_DISTANCE, REMOTE_DISTANCE};
