//! `.d.rhai` definitions of the ktstr API, so editors complete, type-hint
//! and document scripts. Rhai's own generator writes them from the
//! engine's metadata, which every registration fills in.

use std::path::Path;

/// Writes the definition files for every registered function and type
/// into `dir`.
pub fn write_definitions(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in definition_files() {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// (file name, text) of every definition file: every function with its
/// parameter names and types, return type and doc comment, as registered
/// (see `api::def`).
pub fn definition_files() -> Vec<(String, String)> {
    crate::check::engine_for_definitions()
        .definitions()
        .with_headers(true)
        .include_standard_packages(false)
        .iter_files()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_name_every_api_function_with_its_types_and_docs() {
        let files = definition_files();
        let all: String = files.iter().map(|(_, t)| t.as_str()).collect();
        for want in [
            "fn cgroup(name: string, workers: int, work: Work) -> Cgroup;",
            "/// A cgroup of `workers` worker processes doing `work`, there from the",
            "fn get spread(stats: Stats) -> Metric;",
            "fn step(ops: array, hold: Hold) -> ();",
            "fn between(lo: float, hi: float) -> Predicate;",
            "op +(Metric, float) -> Metric;",
            "/// Runs only on topologies with at least `n` LLCs.",
        ] {
            assert!(all.contains(want), "{want} missing:\n{all}");
        }
        assert!(!all.contains("EvalAltResult"), "{all}");
        // Every function has a doc comment.
        let undocumented: Vec<&str> = all
            .split("\n\n")
            .filter(|block| block.contains("fn ") && !block.contains("///"))
            .collect();
        assert!(undocumented.is_empty(), "{undocumented:#?}");
    }
}
