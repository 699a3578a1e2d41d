//! The scenario catalog: every `.rhai` file under a directory, with the
//! one-line description from its leading `//!` comment.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// One scenario file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// `category/name` (path under the root without `.rhai`).
    pub id: String,
    /// The file.
    pub path: PathBuf,
    /// Its first `//!` line, or empty.
    pub description: String,
}

/// Every `.rhai` file under `root`, sorted by id.
pub fn list(root: &Path) -> std::io::Result<Vec<CatalogEntry>> {
    let mut out = Vec::new();
    walk(root, root, &mut out)?;
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<CatalogEntry>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "rhai") {
            let text = std::fs::read_to_string(&path)?;
            let id = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .with_extension("")
                .to_string_lossy()
                .into_owned();
            out.push(CatalogEntry {
                id,
                description: description(&text),
                path,
            });
        }
    }
    Ok(())
}

/// The first `//!` line of a script.
pub fn description(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("//!"))
        .map(|d| d.trim().to_string())
        .unwrap_or_default()
}
