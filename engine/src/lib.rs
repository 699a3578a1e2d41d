//! ktstr-engine: the Rhai front end of the scenario language. Owns the API
//! registered into Rhai, checking scripts before anything boots
//! (diagnostics with file, line and column), the catalog and the editor
//! definitions. What a checked script records is a [`ktstr_plan::Plan`]:
//! the Plan and everything judged against it live in `ktstr-plan`, which
//! knows no Rhai.
//!
//! It must not depend on the VMM, the kernel pipeline or the CLI: the
//! engine knows no VM. Every API function hands an [`backend::Action`] to a
//! [`backend::ScenarioBackend`]: the [`backend::Recorder`] builds a Plan;
//! any other backend sees each call as it happens (`run_with_backend`).

pub mod api;
pub mod backend;
pub mod catalog;
pub mod check;
pub mod defs;
pub mod diag;
pub mod repl;

pub use check::{check_file, check_source, run_with_backend, CheckOptions, Checked};
pub use diag::Diagnostic;
pub use ktstr_plan::Plan;

/// The crate's version, recorded in every Plan so results say which engine
/// produced them.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// ktstr's Rhai standard library, importable as `import "ktstr" as k;`.
pub const STDLIB: &str = include_str!("../../stdlib.rhai");
