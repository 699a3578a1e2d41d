//! `.d.rhai` definitions of the ktstr API, so editors complete and
//! type-hint scripts. Rhai's own generator writes them; return types of
//! functions that can fail are restored from the engine's metadata (the
//! generator cannot read them from native closures).

use std::collections::HashMap;
use std::path::Path;

use crate::check::{signatures_pretty, Signatures};

/// Writes the definition files for every registered function and type
/// into `dir`.
pub fn write_definitions(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in definition_files() {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(())
}

/// (file name, text) of every definition file.
pub fn definition_files() -> Vec<(String, String)> {
    let engine = crate::check::engine_for_definitions();
    let returns = return_types(&Signatures::of(&engine));
    engine
        .definitions()
        .with_headers(true)
        .include_standard_packages(false)
        .iter_files()
        .map(|(name, text)| (name, fix_returns(&text, &returns)))
        .collect()
}

/// `name(params)` to return type, from pretty signatures.
fn return_types(sigs: &Signatures) -> HashMap<String, String> {
    signatures_pretty(sigs)
        .into_iter()
        .filter_map(|s| {
            let (head, ret) = s.split_once(" -> ")?;
            Some((head.to_string(), ret.to_string()))
        })
        .collect()
}

fn fix_returns(text: &str, returns: &HashMap<String, String>) -> String {
    text.lines()
        .map(|line| {
            let Some(body) = line.strip_suffix(" -> EvalAltResult>>;") else {
                return line.to_string();
            };
            let Some((kind, head)) = ["fn ", "op "]
                .iter()
                .find_map(|k| body.strip_prefix(k).map(|h| (k, h)))
            else {
                return line.to_string();
            };
            let key = head
                .replace("_: ", "")
                .replace(", ", ",")
                .replace(',', ", ")
                .replacen("get ", "get$", 1);
            match returns.get(&key) {
                Some(ret) => format!("{kind}{head} -> {ret};"),
                None => line.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_name_every_api_function_with_its_types() {
        let files = definition_files();
        let all: String = files.iter().map(|(_, t)| t.as_str()).collect();
        for want in [
            "fn cgroup(_: string, _: int, _: Work) -> Cgroup;",
            "fn get spread(_: Stats) -> Metric;",
            "fn step(_: array, _: Hold)",
            "fn between(_: float, _: float) -> Predicate;",
        ] {
            assert!(all.contains(want), "{want} missing:\n{all}");
        }
        assert!(!all.contains("EvalAltResult"), "{all}");
    }
}
