//! Installing scheduler crates into the cache with `cargo install`, and
//! finding what is installed.
//!
//! ```text
//! $KTSTR_CACHE_DIR/schedulers/<binary>-<version>/bin/<binary>
//! $KTSTR_CACHE_DIR/schedulers/.staging-<binary>-<pid>/   while cargo runs
//! $KTSTR_CACHE_DIR/work/cargo-target/                    shared build dir
//! ```
//!
//! The build directory is shared between installs (`CARGO_TARGET_DIR`
//! overrides it), so reinstalling or installing a second version of the
//! same family reuses compiled dependencies. The BPF side of sched_ext
//! schedulers needs clang 19 (`BPF_CLANG`, `LIBCLANG_PATH`); both are set
//! when the Debian packages are present and the caller has not set them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ktstr_kernel::CacheLayout;

use crate::error::SchedError;

/// Where to build from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallSource {
    /// A crates.io crate, at a version or the newest.
    Crate {
        /// Crate name.
        name: String,
        /// Exact version (None: the newest).
        version: Option<String>,
    },
    /// A local crate directory (always rebuilt).
    Path(PathBuf),
}

/// One install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallRequest {
    /// The binary the crate installs (the scheduler's name).
    pub binary: String,
    /// What to build.
    pub source: InstallSource,
    /// Rebuild even if that version is installed.
    pub force: bool,
}

/// An installed scheduler.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Installed {
    /// Its name.
    pub name: String,
    /// The crate version.
    pub version: String,
    /// The binary.
    pub binary: PathBuf,
    /// Whether this call built it (false: it was already there).
    pub built: bool,
}

/// The directory of installed schedulers.
pub fn schedulers_dir(layout: &CacheLayout) -> PathBuf {
    layout.root().join("schedulers")
}

/// The installed scheduler `name`: at `version`, or the newest installed.
pub fn installed(layout: &CacheLayout, name: &str, version: Option<&str>) -> Option<Installed> {
    let dir = schedulers_dir(layout);
    let prefix = format!("{name}-");
    let mut found: Vec<Installed> = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let dir_name = e.file_name().to_string_lossy().into_owned();
            let v = dir_name.strip_prefix(&prefix)?.to_string();
            let binary = e.path().join("bin").join(name);
            binary.is_file().then_some(Installed {
                name: name.to_string(),
                version: v,
                binary,
                built: false,
            })
        })
        .filter(|i| version.is_none_or(|v| i.version == v))
        .collect();
    found.sort_by_key(|i| version_key(&i.version));
    found.pop()
}

/// The names of every installed scheduler, sorted.
pub fn installed_names(layout: &CacheLayout) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(schedulers_dir(layout))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let dir = e.file_name().to_string_lossy().into_owned();
            let (name, _) = dir.rsplit_once('-')?;
            (!name.starts_with('.') && e.path().join("bin").join(name).is_file())
                .then(|| name.to_string())
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A sort key for dotted versions ("1.10.0" after "1.9.3").
fn version_key(v: &str) -> Vec<(u64, String)> {
    v.split(['.', '-', '+'])
        .map(|p| (p.parse().unwrap_or(0), p.to_string()))
        .collect()
}

/// The installed scheduler `req` would reuse instead of building: its
/// pinned crate version, already installed, unless `force` is set.
pub fn reusable(layout: &CacheLayout, req: &InstallRequest) -> Option<Installed> {
    match &req.source {
        InstallSource::Crate {
            version: Some(v), ..
        } if !req.force => installed(layout, &req.binary, Some(v)),
        _ => None,
    }
}

/// Builds and installs `req` (unless that version is there already and
/// `force` is off). Cargo's progress goes to stderr.
pub fn install(layout: &CacheLayout, req: &InstallRequest) -> Result<Installed, SchedError> {
    let _lock = layout.lock(&format!("sched-{}", req.binary))?;
    if let Some(done) = reusable(layout, req) {
        return Ok(done);
    }
    let dir = schedulers_dir(layout);
    let staging = dir.join(format!(".staging-{}-{}", req.binary, std::process::id()));
    remove_dir(&staging)?;
    std::fs::create_dir_all(&staging).map_err(|e| SchedError::io(&staging, e))?;
    let result = build_into(layout, req, &staging);
    let version = match result {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let target = dir.join(format!("{}-{version}", req.binary));
    remove_dir(&target)?;
    std::fs::rename(&staging, &target).map_err(|e| SchedError::io(&target, e))?;
    Ok(Installed {
        name: req.binary.clone(),
        version,
        binary: target.join("bin").join(&req.binary),
        built: true,
    })
}

/// Runs cargo into `root`; returns the installed crate's version.
fn build_into(
    layout: &CacheLayout,
    req: &InstallRequest,
    root: &Path,
) -> Result<String, SchedError> {
    let mut cmd = cargo_command(layout)?;
    cmd.arg("install").arg("--root").arg(root).arg("--force");
    let (what, crate_name) = match &req.source {
        InstallSource::Crate { name, version } => {
            cmd.arg("--locked").arg(name);
            if let Some(v) = version {
                cmd.arg("--version").arg(v);
            }
            (name.clone(), name.clone())
        }
        InstallSource::Path(p) => {
            cmd.arg("--path").arg(p);
            (p.display().to_string(), String::new())
        }
    };
    let status = cmd
        .stdin(Stdio::null())
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| SchedError::io("cargo", e))?;
    if !status.success() {
        return Err(SchedError::CargoFailed {
            what,
            status: status.to_string(),
        });
    }
    let bin = root.join("bin").join(&req.binary);
    if !bin.is_file() {
        return Err(SchedError::NoBinary {
            what,
            binary: req.binary.clone(),
            found: list_dir(&root.join("bin")),
        });
    }
    installed_version(root, &crate_name)
}

/// `cargo` with the build directory and clang 19 set up.
fn cargo_command(layout: &CacheLayout) -> Result<Command, SchedError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    if Command::new(&cargo).arg("--version").output().is_err() {
        return Err(SchedError::MissingTool {
            tool: "cargo".into(),
            hint: "install Rust (https://rustup.rs) or set CARGO".into(),
        });
    }
    let mut cmd = Command::new(cargo);
    if std::env::var_os("CARGO_TARGET_DIR").is_none() {
        cmd.env("CARGO_TARGET_DIR", layout.root().join("work/cargo-target"));
    }
    if std::env::var_os("BPF_CLANG").is_none() {
        if Command::new("clang-19").arg("--version").output().is_err() {
            return Err(SchedError::MissingTool {
                tool: "clang-19".into(),
                hint: "apt-get install clang-19 llvm-19 (or set BPF_CLANG)".into(),
            });
        }
        cmd.env("BPF_CLANG", "clang-19");
    }
    let llvm19 = Path::new("/usr/lib/llvm-19/lib");
    if std::env::var_os("LIBCLANG_PATH").is_none() && llvm19.is_dir() {
        cmd.env("LIBCLANG_PATH", llvm19);
    }
    Ok(cmd)
}

/// The version cargo recorded in `root/.crates.toml` for `crate_name`
/// (any crate when the name is empty, as for path installs).
fn installed_version(root: &Path, crate_name: &str) -> Result<String, SchedError> {
    let path = root.join(".crates.toml");
    let text = std::fs::read_to_string(&path).map_err(|e| SchedError::io(&path, e))?;
    let doc: toml::Table = toml::from_str(&text).map_err(|e| SchedError::Toml {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let v1 = doc.get("v1").and_then(|v| v.as_table());
    v1.into_iter()
        .flat_map(|t| t.keys())
        .filter_map(|key| {
            let mut parts = key.split(' ');
            let (name, version) = (parts.next()?, parts.next()?);
            (crate_name.is_empty() || name == crate_name).then(|| version.to_string())
        })
        .next()
        .ok_or_else(|| SchedError::Toml {
            path,
            message: format!("no entry for `{crate_name}`"),
        })
}

fn list_dir(dir: &Path) -> String {
    let names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

fn remove_dir(path: &Path) -> Result<(), SchedError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(SchedError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_install(layout: &CacheLayout, name: &str, version: &str) {
        let bin = schedulers_dir(layout).join(format!("{name}-{version}/bin"));
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(bin.join(name), b"#!/bin/sh\n").unwrap();
    }

    #[test]
    fn the_newest_installed_version_wins_unless_one_is_asked_for() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = CacheLayout::at(tmp.path());
        assert!(installed(&layout, "scx_x", None).is_none());
        fake_install(&layout, "scx_x", "1.9.3");
        fake_install(&layout, "scx_x", "1.10.0");
        fake_install(&layout, "scx_xy", "9.0.0");
        assert_eq!(installed(&layout, "scx_x", None).unwrap().version, "1.10.0");
        assert_eq!(
            installed(&layout, "scx_x", Some("1.9.3")).unwrap().version,
            "1.9.3"
        );
        assert!(installed(&layout, "scx_x", Some("2.0.0")).is_none());
    }

    #[test]
    fn versions_come_from_cargos_record() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join(".crates.toml"),
            "[v1]\n\"scx_bpfland 1.1.4 (registry+https://github.com/rust-lang/crates.io-index)\" = [\"scx_bpfland\"]\n",
        )
        .unwrap();
        assert_eq!(
            installed_version(tmp.path(), "scx_bpfland").unwrap(),
            "1.1.4"
        );
        assert_eq!(installed_version(tmp.path(), "").unwrap(), "1.1.4");
        assert!(installed_version(tmp.path(), "other").is_err());
    }
}
