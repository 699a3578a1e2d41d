//! The files one check reads: the scenario, the files it imports and the
//! stdlib, each under the name its diagnostics give, so an error is shown
//! with the line of the file it is in.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The most bytes a script (or an imported file) may have.
pub const MAX_SCRIPT_BYTES: u64 = 1024 * 1024;

/// The name the stdlib's positions are reported under.
pub const STDLIB_FILE: &str = "ktstr:stdlib.rhai";

/// File name to text, for every file of one check.
#[derive(Debug, Clone, Default)]
pub struct ScriptFiles {
    texts: BTreeMap<String, Arc<str>>,
}

/// The files of one check, shared by the API (claim labels), the import
/// resolver and the diagnostics.
pub type SharedFiles = Arc<Mutex<ScriptFiles>>;

impl ScriptFiles {
    /// Records `text` as the contents of `name`.
    pub fn add(&mut self, name: &str, text: &str) {
        self.texts.insert(name.to_string(), Arc::from(text));
    }

    /// The text of `name`, if the check read it.
    pub fn text(&self, name: &str) -> Option<Arc<str>> {
        self.texts.get(name).cloned()
    }

    /// Every file, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.texts.iter().map(|(k, v)| (k.as_str(), &**v))
    }
}

/// Reads a script: at most [`MAX_SCRIPT_BYTES`] (a device such as
/// `/dev/zero` is not read without end), UTF-8, a leading byte-order mark
/// dropped.
pub fn read_script(path: &Path) -> Result<String, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err("cannot read: it is a directory".into());
    }
    let mut bytes = Vec::new();
    file.take(MAX_SCRIPT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(format!(
            "the script is larger than {} KiB; scenarios are small files",
            MAX_SCRIPT_BYTES / 1024
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })?;
    Ok(strip_bom(&text).to_string())
}

/// `text` without a leading UTF-8 byte-order mark.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_are_capped_checked_and_unmarked() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.rhai");
        std::fs::write(&big, vec![b'/'; MAX_SCRIPT_BYTES as usize + 1]).unwrap();
        assert!(read_script(&big)
            .unwrap_err()
            .contains("larger than 1024 KiB"));
        let zero = read_script(Path::new("/dev/zero")).unwrap_err();
        assert!(zero.contains("larger than"), "{zero}");
        let bom = dir.path().join("bom.rhai");
        std::fs::write(&bom, "\u{feff}let x = 1;").unwrap();
        assert_eq!(read_script(&bom).unwrap(), "let x = 1;");
        let bin = dir.path().join("bin.rhai");
        std::fs::write(&bin, [b'a', 0xff, b'b']).unwrap();
        assert!(read_script(&bin).unwrap_err().contains("offset 1"));
        assert!(read_script(dir.path()).unwrap_err().contains("directory"));
    }
}
