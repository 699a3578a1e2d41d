//! The scenario catalog: every `.rhai` file under a directory, with the
//! one-line description from its leading `//!` comment.
//!
//! Symbolic links are followed, but each directory is walked once (by
//! device and inode), so a link loop cannot hang the walk or list a file
//! twice; a file that cannot be read is listed with its problem instead
//! of failing the whole listing.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::check::read_script;

/// How deep below the root the walk goes.
pub const MAX_DEPTH: usize = 32;

/// One scenario file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogEntry {
    /// `category/name` (path under the root without `.rhai`).
    pub id: String,
    /// The file.
    pub path: PathBuf,
    /// Its first `//!` line, or empty.
    pub description: String,
    /// Why the file could not be read (not UTF-8, too large, a broken
    /// link, ...), if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Every `.rhai` file under `root`, sorted by id. Only an unreadable
/// `root` is an error.
pub fn list(root: &Path) -> std::io::Result<Vec<CatalogEntry>> {
    let mut walk = Walk {
        root,
        seen: HashSet::new(),
        out: Vec::new(),
    };
    let meta = std::fs::metadata(root)?;
    if !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{} is not a directory", root.display()),
        ));
    }
    walk.seen.insert((meta.dev(), meta.ino()));
    walk.dir(root, 0)?;
    walk.out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(walk.out)
}

struct Walk<'a> {
    root: &'a Path,
    seen: HashSet<(u64, u64)>,
    out: Vec<CatalogEntry>,
}

impl Walk<'_> {
    fn dir(&mut self, dir: &Path, depth: usize) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let is_rhai = path.extension().is_some_and(|e| e == "rhai");
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => {
                    let fresh = self.seen.insert((m.dev(), m.ino()));
                    if fresh && depth < MAX_DEPTH {
                        if let Err(e) = self.dir(&path, depth + 1) {
                            self.problem(&path, format!("cannot list: {e}"));
                        }
                    }
                }
                Ok(_) if is_rhai => self.file(&path),
                Ok(_) => {}
                Err(e) if is_rhai => self.problem(&path, format!("cannot read: {e}")),
                Err(_) => {}
            }
        }
        Ok(())
    }

    fn file(&mut self, path: &Path) {
        match read_script(path) {
            Ok(text) => {
                let entry = self.entry(path, description(&text), None);
                self.out.push(entry);
            }
            Err(why) => self.problem(path, why),
        }
    }

    fn problem(&mut self, path: &Path, why: String) {
        let entry = self.entry(path, String::new(), Some(why));
        self.out.push(entry);
    }

    fn entry(&self, path: &Path, description: String, problem: Option<String>) -> CatalogEntry {
        let id = path
            .strip_prefix(self.root)
            .unwrap_or(path)
            .with_extension("")
            .to_string_lossy()
            .into_owned();
        CatalogEntry {
            id,
            path: path.to_path_buf(),
            description,
            problem,
        }
    }
}

/// The first `//!` line of a script.
pub fn description(text: &str) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("//!"))
        .map(|d| d.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn link_loops_are_walked_once_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("a.rhai"), "//! A scenario\n").unwrap();
        symlink(".", root.join("x")).unwrap();
        symlink(".", root.join("y")).unwrap();
        symlink("self", root.join("self")).unwrap();
        symlink("gone.rhai", root.join("broken.rhai")).unwrap();
        std::fs::write(root.join("bin.rhai"), [0xffu8, 0xfe]).unwrap();
        let entries = list(root).unwrap();
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "bin", "broken"], "{entries:#?}");
        assert_eq!(entries[0].description, "A scenario");
        assert!(entries[1].problem.as_deref().unwrap().contains("not UTF-8"));
        assert!(entries[2]
            .problem
            .as_deref()
            .unwrap()
            .contains("cannot read"));
        assert!(list(&root.join("a.rhai")).is_err());
    }
}
