//! `kernels.toml`: named kernels a user can pass as `--kernel NAME`.
//!
//! ```toml
//! default = "debian-6.12"
//!
//! [kernel.debian-6.12]
//! tarball = "/usr/src/linux-source-6.12.tar.xz"
//!
//! [kernel.stable]
//! version = "6.12.58"          # downloaded, checksum-verified
//! mirror = "https://cdn.kernel.org/pub/linux/kernel"   # optional
//!
//! [kernel.dev]
//! tree = "~/src/linux"
//! extra_kconfig = "dev.kconfig"   # relative to this file
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{KernelError, Result};
use crate::source::{is_version, SourceSpec};

/// One `[kernel.NAME]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedKernelToml {
    /// A local source tarball.
    pub tarball: Option<String>,
    /// A local source tree.
    pub tree: Option<String>,
    /// A release to download.
    pub version: Option<String>,
    /// Mirror for `version`.
    pub mirror: Option<String>,
    /// A fragment applied after ktstr's.
    pub extra_kconfig: Option<String>,
    /// Free text shown by `kernel list`.
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    default: Option<String>,
    #[serde(default)]
    kernel: BTreeMap<String, NamedKernelToml>,
}

/// A validated named kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedKernel {
    /// Its name.
    pub name: String,
    /// What it builds from.
    pub source: SourceSpec,
    /// Extra fragment, resolved to an absolute path.
    pub extra_kconfig: Option<PathBuf>,
    /// Free text.
    pub description: Option<String>,
}

/// A validated `kernels.toml`.
#[derive(Debug, Clone, Default)]
pub struct KernelsToml {
    /// The file it came from.
    pub path: PathBuf,
    /// The name used when no `--kernel` is given.
    pub default: Option<String>,
    /// Named kernels.
    pub kernels: BTreeMap<String, NamedKernel>,
}

impl KernelsToml {
    /// Reads and validates `path`.
    pub fn load(path: &Path, default_mirror: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| KernelError::KernelsToml {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path, default_mirror)
    }

    /// Parses and validates `text` as the file `path`.
    pub fn parse(text: &str, path: &Path, default_mirror: &str) -> Result<Self> {
        let err = |message: String| KernelError::KernelsToml {
            path: path.to_path_buf(),
            message,
        };
        let raw: FileToml =
            toml::from_str(text).map_err(|e| err(e.to_string().trim_end().to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut kernels = BTreeMap::new();
        for (name, k) in raw.kernel {
            let field = |f: &str| format!("kernel.{name}.{f}");
            let given: Vec<&str> = [
                ("tarball", &k.tarball),
                ("tree", &k.tree),
                ("version", &k.version),
            ]
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(n, _)| *n)
            .collect();
            let source =
                match (&k.tarball, &k.tree, &k.version) {
                    (Some(t), None, None) => SourceSpec::Tarball(expand(base, t)),
                    (None, Some(t), None) => SourceSpec::Tree(expand(base, t)),
                    (None, None, Some(v)) if is_version(v) => SourceSpec::Release {
                        version: v.clone(),
                        mirror: k
                            .mirror
                            .clone()
                            .unwrap_or_else(|| default_mirror.to_string()),
                    },
                    (None, None, Some(v)) => {
                        return Err(err(format!(
                            "{}: `{v}` is not a kernel version (e.g. 6.12.58)",
                            field("version")
                        )))
                    }
                    _ => {
                        return Err(err(format!(
                        "kernel.{name}: set exactly one of `tarball`, `tree`, `version` (found {})",
                        if given.is_empty() { "none".to_string() } else { given.join(", ") }
                    )))
                    }
                };
            if k.mirror.is_some() && k.version.is_none() {
                return Err(err(format!(
                    "{}: only meaningful with `version`",
                    field("mirror")
                )));
            }
            kernels.insert(
                name.clone(),
                NamedKernel {
                    name: name.clone(),
                    source,
                    extra_kconfig: k.extra_kconfig.as_deref().map(|p| expand(base, p)),
                    description: k.description,
                },
            );
        }
        if let Some(d) = &raw.default {
            if !kernels.contains_key(d) {
                return Err(err(format!("default: no [kernel.{d}] table in this file")));
            }
        }
        Ok(KernelsToml {
            path: path.to_path_buf(),
            default: raw.default,
            kernels,
        })
    }
}

/// Expands `~/` and makes relative paths relative to `base`.
fn expand(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = dirs::home_dir() {
            return home.join(rest);
        }
    }
    base.join(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<KernelsToml> {
        KernelsToml::parse(text, Path::new("/etc/k/kernels.toml"), "https://m")
    }

    #[test]
    fn parses_all_source_kinds() {
        let t = parse(
            "default = \"a\"\n[kernel.a]\ntarball = \"src.tar.xz\"\n[kernel.b]\ntree = \"/l\"\nextra_kconfig = \"x.kconfig\"\n[kernel.c]\nversion = \"6.12.58\"\n",
        )
        .unwrap();
        assert_eq!(
            t.kernels["a"].source,
            SourceSpec::Tarball("/etc/k/src.tar.xz".into())
        );
        assert_eq!(
            t.kernels["b"].extra_kconfig.as_deref(),
            Some(Path::new("/etc/k/x.kconfig"))
        );
        assert_eq!(
            t.kernels["c"].source,
            SourceSpec::Release {
                version: "6.12.58".into(),
                mirror: "https://m".into()
            }
        );
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("[kernel.a]\ntarball = \"x\"\ntree = \"y\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "kernel.a: set exactly one of `tarball`, `tree`, `version` (found tarball, tree)"
            ),
            "{e}"
        );
        let e = parse("[kernel.a]\nversion = \"6.x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kernel.a.version: `6.x` is not a kernel version"),
            "{e}"
        );
        let e = parse("default = \"zz\"\n").unwrap_err().to_string();
        assert!(e.contains("default: no [kernel.zz]"), "{e}");
        let e = parse("[kernel.a]\ntarbal = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown field `tarbal`") && e.contains("line 2"),
            "{e}"
        );
        let e = parse("[kernel.a]\ntree = \"x\"\nmirror = \"m\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kernel.a.mirror: only meaningful with `version`"),
            "{e}"
        );
    }
}
