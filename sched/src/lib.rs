//! ktstr-sched: what ktstr knows about schedulers beyond their binary.
//!
//! - [`registry`]: `schedulers.toml`, one table per scheduler: its
//!   thresholds (the middle layer between ktstr's defaults and the
//!   scenario's), its attach timeout, default arguments, and the crate and
//!   version `ktstr sched install` builds.
//! - [`install`]: builds a scheduler crate with `cargo install` (clang-19
//!   for its BPF side) into the cache and finds installed binaries.
//! - [`locate`]: a scheduler's binary on the host (path, cache, PATH),
//!   checked to be an executable ELF program.

pub mod error;
pub mod install;
pub mod locate;
pub mod registry;

pub use error::SchedError;
pub use install::{
    install, installed, installed_names, reusable, InstallRequest, InstallSource, Installed,
};
pub use locate::{check_program, on_host};
pub use registry::{SchedulerEntry, SchedulersToml};
