//! ktstr-plan: what a scenario is and how its run is judged, as plain
//! data. No Rhai, no VM: the engine produces a [`Plan`], the guest agent
//! runs one, the host judges the [`results::RunResults`] against it.
//!
//! - [`plan`], [`topology_req`], [`cgroup`], [`steps`], [`work`],
//!   [`policy`], [`cpuset`]: the Plan and everything it is made of.
//! - [`claims`]: what a script says must hold, as metric expressions.
//! - [`results`]: what the workers measured ([`results::WorkerReport`],
//!   the one type both the guest and the host use) and
//!   [`results::RunResults`], the same grouped by cgroup for judging.
//! - [`series`]: metrics over the progress time series.
//! - [`monitor`]: the host's samples of the guest kernel's run queues.
//! - [`thresholds`]: the one registry of threshold names, their rule and
//!   defaults, and how the layers combine.
//! - [`verdict`]: default checks, claims, and the outcome.
//! - [`sched_exit`]: why a scheduler ended, in one line (the kernel's exit
//!   kind and message, a verifier rejection).
//! - [`selftests`]: the kernel's sched_ext selftests as a job: what it
//!   asks for, each test's result, and the runner's output read line by
//!   line.
//! - [`live`]: requests and answers of a live guest (the REPL) and the
//!   [`live::LiveGuest`] interface between the engine and the run library.

pub mod cgroup;
pub mod checks;
pub mod claims;
pub mod cpuset;
pub mod live;
pub mod measures;
pub mod monitor;
pub mod payload;
pub mod plan;
pub mod policy;
pub mod results;
pub mod sched_exit;
pub mod selftests;
pub mod series;
pub mod steps;
pub mod thresholds;
pub mod topology_req;
pub mod verdict;
pub mod work;

pub use cgroup::{check_cgroup_name, CgroupDef, MAX_CGROUP_NAME};
pub use plan::{
    check_duration, ExpectFail, KernelReq, Plan, SchedulerSpec, ShippedFile, SourcePos,
    DEFAULT_DURATION_S, GUEST_FILES_DIR, MAX_DURATION_S, MAX_SHIPPED_FILE_BYTES,
};
pub use steps::{Hold, Op, Step};
pub use topology_req::{TopologyConstraints, TopologyReq};

/// The crate's version, recorded in every Plan so results say which
/// version of ktstr produced them.
pub const PLAN_VERSION: &str = env!("CARGO_PKG_VERSION");
