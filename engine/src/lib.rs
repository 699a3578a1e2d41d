//! ktstr-engine: the Rhai scenario language. Owns the API registered into
//! Rhai, compiling and checking scripts before anything boots, and the
//! serializable Plan a checked script records.
//!
//! It must not depend on the VMM, the kernel pipeline or the CLI: the
//! engine knows no VM. The guest agent links it to run the same API live.

/// The crate's version, recorded in every Plan so results say which engine
/// produced them.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
