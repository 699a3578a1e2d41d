//! ktstr-engine: the Rhai scenario language. Owns the API registered into
//! Rhai, compiling and checking scripts before anything boots, and the
//! serializable Plan a checked script records.
//!
//! It must not depend on the VMM, the kernel pipeline or the CLI: the
//! engine knows no VM. Every API function hands an [`backend::Action`] to a
//! [`backend::ScenarioBackend`]: the [`backend::Recorder`] builds a Plan on
//! the host; the guest agent supplies a live backend for the REPL.

pub mod api;
pub mod backend;
pub mod catalog;
pub mod check;
pub mod claims;
pub mod cpuset;
pub mod defs;
pub mod diag;
pub mod plan;
pub mod policy;
pub mod results;
pub mod series;
pub mod verdict;
pub mod work;

pub use check::{check_file, check_source, run_with_backend, CheckOptions, Checked};
pub use diag::Diagnostic;
pub use plan::Plan;

/// The crate's version, recorded in every Plan so results say which engine
/// produced them.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// ktstr's Rhai standard library, importable as `import "ktstr" as k;`.
pub const STDLIB: &str = include_str!("../../stdlib.rhai");
