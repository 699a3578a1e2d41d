//! ktstr-run: running jobs as a library. A [`JobRequest`] (a plan, its
//! topology, the kernel, the backend, limits) goes in; [`Runner::run`]
//! resolves the scheduler, prepares the initramfs, chooses the backend,
//! boots and drives the VM, collects what the guest reports, layers the
//! thresholds, judges, writes the typed [`Sidecar`], and returns a
//! [`JobResult`]. Progress goes through the kernel crate's `Observer`.
//!
//! Nothing here is global: each job has its own scratch directory, cancel
//! flag and console log, so one process can run several jobs at once
//! (the gauntlet does). Commands that are not plan jobs (`shell`,
//! `vm probe`, `bench boot`) prepare their VM with [`vm::prepare`] and
//! drive it themselves.
//!
//! - [`job`]: one plan job ([`Runner`], [`JobRequest`], [`JobResult`]).
//! - [`gauntlet`]: sweeps of many jobs from a manifest, in parallel.
//! - [`live`]: a live session (`ktstr repl`): one VM serving requests.
//! - [`vm`]: preparing any VM (initramfs, backend choice, guest agent).
//! - [`requirements`]: a plan's kernel requirements against the kernel.
//! - [`scheduler`]: the scheduler binary and how the guest launches it.
//! - [`thresholds`]: every threshold layer in one function.
//! - [`telemetry`]: what the guest sent, collected.
//! - [`sidecar`]: the typed, versioned record of a job.
//! - [`host`]: facts about the host.
//! - [`introspect`]: the kernel layout the host-side monitor reads with.
//! - [`snapshot`]: starting VMs from a snapshot of the booted guest.
//! - [`selftest`]: selftest jobs: the kernel's sched_ext selftests, one
//!   verdict per test.
//! - [`verifier`]: the verifier sweep (`ktstr verifier`) and its compare.

pub mod error;
pub mod gauntlet;
pub mod host;
pub mod introspect;
pub mod job;
pub mod live;
pub mod requirements;
pub mod scheduler;
pub mod selftest;
pub mod sidecar;
pub mod snapshot;
pub mod telemetry;
pub mod thresholds;
pub mod verifier;
pub mod vm;

pub use error::RunError;
pub use job::{JobRequest, JobResult, Runner};
pub use sidecar::{Repetition, Sidecar, SidecarError, SIDECAR_SCHEMA};
pub use telemetry::Telemetry;
