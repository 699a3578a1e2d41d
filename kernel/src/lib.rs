//! ktstr-kernel: the guest-kernel pipeline. Owns kernel sources (local
//! tarballs, trees, kernel.org releases with checksum verification),
//! `kernels.toml`, kconfig fragments and the check that none of their
//! options were dropped, the kernel + sched_ext sample scheduler (and
//! sched_ext selftests runner) build, and
//! the content-keyed on-disk cache with atomic, locked, verified entries.
//!
//! It must not depend on the VMM, the Rhai engine, the guest agent or the
//! CLI: it hands out file paths, and others boot them.

pub mod build;
pub mod cache;
pub mod download;
pub mod error;
pub mod kconfig;
pub mod kernels_toml;
pub mod layout;
pub mod manifest;
pub mod observer;
pub mod option;
pub mod prepare;
pub mod resolve;
pub mod runner;
pub mod selftests;
pub mod source;
#[cfg(feature = "test-support")]
pub mod testing;

pub use build::{build, BuildOutcome, BuildRequest, SAMPLE_SCHEDULERS};
pub use cache::{KernelCache, Lookup};
pub use error::{KernelError, Result};
pub use kernels_toml::KernelsToml;
pub use layout::CacheLayout;
pub use manifest::{CacheEntry, Manifest};
pub use observer::{Observer, Silent};
pub use resolve::{BootKernel, ImageFormat, Resolver, Target};
pub use source::{SourceSpec, DEBIAN_TARBALL, KERNEL_ORG_MIRROR};
