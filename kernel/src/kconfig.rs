//! Kconfig fragments: parsing, the configuration hash that keys the cache,
//! and the check that every option a fragment asks for survived
//! `olddefconfig`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{IoContext, KernelError, Result};
use crate::option::{DroppedOption, OptionValue};

/// ktstr's own fragment, applied on top of `make tinyconfig`.
pub const KTSTR_KCONFIG: &str = include_str!("../ktstr.kconfig");

/// Bumped whenever the build recipe changes in a way that changes outputs,
/// so that old cache entries are not reused for new recipes.
pub const RECIPE_VERSION: u32 = 1;

/// One kconfig fragment: where it came from and its text.
#[derive(Debug, Clone)]
pub struct Fragment {
    /// A label for messages: the file path, or `ktstr.kconfig` for the
    /// embedded one.
    pub origin: PathBuf,
    /// The fragment's full text.
    pub text: String,
}

impl Fragment {
    /// ktstr's embedded fragment.
    pub fn ktstr() -> Self {
        Fragment {
            origin: PathBuf::from("ktstr.kconfig"),
            text: KTSTR_KCONFIG.to_string(),
        }
    }

    /// Reads a user fragment from disk, checking that it parses.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).at(path)?;
        let fragment = Fragment {
            origin: std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
            text,
        };
        fragment.options()?;
        Ok(fragment)
    }

    /// The options this fragment sets, in file order.
    pub fn options(&self) -> Result<Vec<(String, OptionValue)>> {
        let mut out = Vec::new();
        for (idx, raw) in self.text.lines().enumerate() {
            match parse_line(raw) {
                Line::Option(name, value) => out.push((name, value)),
                Line::Blank => {}
                Line::Invalid => {
                    return Err(KernelError::BadFragment {
                        path: self.origin.clone(),
                        line: idx + 1,
                        text: raw.trim().to_string(),
                    })
                }
            }
        }
        Ok(out)
    }
}

enum Line {
    Option(String, OptionValue),
    Blank,
    Invalid,
}

fn parse_line(raw: &str) -> Line {
    let line = raw.trim();
    if line.is_empty() {
        return Line::Blank;
    }
    if let Some(rest) = line.strip_prefix("# ") {
        if let Some(name) = rest.strip_suffix(" is not set") {
            if is_option_name(name) {
                return Line::Option(name.to_string(), OptionValue::NotSet);
            }
        }
        return Line::Blank;
    }
    if line.starts_with('#') {
        return Line::Blank;
    }
    match line.split_once('=') {
        Some((name, value)) if is_option_name(name) && !value.is_empty() => {
            Line::Option(name.to_string(), OptionValue::Set(value.to_string()))
        }
        _ => Line::Invalid,
    }
}

fn is_option_name(name: &str) -> bool {
    name.strip_prefix("CONFIG_").is_some_and(|rest| {
        !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Parses a complete `.config` into a map of option to value.
pub fn parse_config(text: &str) -> BTreeMap<String, OptionValue> {
    text.lines()
        .filter_map(|l| match parse_line(l) {
            Line::Option(n, v) => Some((n, v)),
            _ => None,
        })
        .collect()
}

/// Compares what the fragments ask for (later fragments override earlier
/// ones) with the final `.config`, returning every option that did not
/// survive.
pub fn dropped_options(fragments: &[Fragment], final_config: &str) -> Result<Vec<DroppedOption>> {
    let mut wanted: BTreeMap<String, (OptionValue, PathBuf)> = BTreeMap::new();
    for fragment in fragments {
        for (name, value) in fragment.options()? {
            wanted.insert(name, (value, fragment.origin.clone()));
        }
    }
    let have = parse_config(final_config);
    let mut dropped = Vec::new();
    for (name, (want, origin)) in wanted {
        let got = have.get(&name).cloned();
        let ok = match (&want, &got) {
            (OptionValue::NotSet, None) | (OptionValue::NotSet, Some(OptionValue::NotSet)) => true,
            (OptionValue::Set(w), Some(OptionValue::Set(g))) => w == g,
            _ => false,
        };
        if !ok {
            dropped.push(DroppedOption {
                name,
                wanted: want,
                got,
                origin,
            });
        }
    }
    Ok(dropped)
}

/// The hash of everything that determines the configuration: the recipe
/// version, the architecture, the tinyconfig base and each fragment's text.
/// Hex, full length.
pub fn config_hash(arch: &str, fragments: &[Fragment]) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "ktstr-recipe-{RECIPE_VERSION}\0{arch}\0tinyconfig\0"
    ));
    for fragment in fragments {
        h.update(fragment.text.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(text: &str) -> Fragment {
        Fragment {
            origin: PathBuf::from("f.kconfig"),
            text: text.to_string(),
        }
    }

    #[test]
    fn embedded_fragment_parses_and_asks_for_sched_ext() {
        let opts = Fragment::ktstr().options().unwrap();
        assert!(opts.contains(&(
            "CONFIG_SCHED_CLASS_EXT".into(),
            OptionValue::Set("y".into())
        )));
        assert!(opts.contains(&("CONFIG_VT".into(), OptionValue::NotSet)));
    }

    #[test]
    fn bad_line_is_reported_with_line_number() {
        let err = frag("CONFIG_A=y\nCONFIG_B\n").options().unwrap_err();
        assert_eq!(err.to_string(), "f.kconfig:2: not a kconfig line: CONFIG_B");
    }

    #[test]
    fn dropped_options_lists_each_missing_or_changed_option() {
        let frags = [frag(
            "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_N=64\n",
        )];
        let final_cfg = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_N=32\n";
        let dropped = dropped_options(&frags, final_cfg).unwrap();
        let names: Vec<_> = dropped.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["CONFIG_B", "CONFIG_N"]);
        assert_eq!(
            dropped[0].to_string(),
            "CONFIG_B=y (asked by f.kconfig): the final .config has CONFIG_B is not set"
        );
    }

    #[test]
    fn later_fragment_overrides_earlier() {
        let frags = [frag("CONFIG_A=y\n"), frag("# CONFIG_A is not set\n")];
        assert!(dropped_options(&frags, "").unwrap().is_empty());
        assert_eq!(dropped_options(&frags, "CONFIG_A=y\n").unwrap().len(), 1);
    }

    #[test]
    fn config_hash_depends_on_every_fragment() {
        let a = config_hash("x86_64", &[frag("CONFIG_A=y\n")]);
        let b = config_hash("x86_64", &[frag("CONFIG_A=y\n"), frag("CONFIG_B=y\n")]);
        let c = config_hash("aarch64", &[frag("CONFIG_A=y\n")]);
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, config_hash("x86_64", &[frag("CONFIG_A=y\n")]));
    }
}
