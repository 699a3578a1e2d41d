//! ktstr-sched: what ktstr knows about schedulers beyond their binary.
//!
//! - [`registry`]: `schedulers.toml`, one table per scheduler: its
//!   thresholds (the middle layer between ktstr's defaults and the
//!   scenario's), its attach timeout, default arguments, and the crate and
//!   version `ktstr sched install` builds.
//! - [`install`]: builds a scheduler crate with `cargo install` (clang-19
//!   for its BPF side) into the cache and finds installed binaries.

pub mod error;
pub mod install;
pub mod registry;

pub use error::SchedError;
pub use install::{
    install, installed, installed_names, reusable, InstallRequest, InstallSource, Installed,
};
pub use registry::{SchedulerEntry, SchedulersToml};
