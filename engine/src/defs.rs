//! `.d.rhai` definitions of the ktstr API, so editors complete and
//! type-hint scripts.

use std::path::Path;

/// Writes the definition files for every registered function and type
/// into `dir` (Rhai's own generator: `__static__.d.rhai`, `__scope__.d.rhai`
/// and friends, plus `ktstr.d.rhai` for the registered API).
pub fn write_definitions(dir: &Path) -> std::io::Result<()> {
    let engine = crate::check::engine_for_definitions();
    engine
        .definitions()
        .with_headers(true)
        .include_standard_packages(false)
        .write_to_dir(dir)
}

/// The definitions of the registered API as one text.
pub fn definitions_text() -> String {
    let engine = crate::check::engine_for_definitions();
    engine
        .definitions()
        .with_headers(true)
        .include_standard_packages(false)
        .single_file()
}
