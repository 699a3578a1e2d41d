//! `schedulers.toml`: what ktstr should know about each scheduler.
//!
//! ```toml
//! [scheduler.scx_bpfland]
//! description = "vruntime-based, favours interactive tasks"
//! crate = "scx_bpfland"          # what `ktstr sched install scx_bpfland` builds
//! version = "1.1.4"              # pinned version (default: the newest)
//! args = []                      # default arguments (--sched-arg replaces them)
//! attach_timeout_s = 90          # how long it may take to attach
//! enable_cpu = 0                 # CPU the kernel's enable helper must start on
//! thresholds = { max_gap_ms = 3000 }   # between ktstr's defaults and the scenario's
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::SchedError;

/// The most seconds an attach timeout may be.
pub const MAX_ATTACH_TIMEOUT_S: u64 = 3600;

/// One `[scheduler.NAME]` table.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerEntry {
    /// Free text shown by `sched list`.
    pub description: Option<String>,
    /// The crates.io crate that builds it (default: the table's name).
    #[serde(rename = "crate")]
    pub crate_name: Option<String>,
    /// The crate version to install (default: the newest).
    pub version: Option<String>,
    /// Arguments used when neither the script nor `--sched-arg` gives any.
    #[serde(default)]
    pub args: Vec<String>,
    /// Seconds it may take to attach.
    pub attach_timeout_s: Option<u64>,
    /// The CPU the kernel's sched_ext enable helper must be created on
    /// (see `ktstr_proto::SchedulerLaunch::enable_cpu`).
    pub enable_cpu: Option<u32>,
    /// Its thresholds (names as in the verdict: `max_gap_ms`, ...).
    #[serde(default)]
    pub thresholds: BTreeMap<String, f64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    #[serde(default)]
    scheduler: BTreeMap<String, SchedulerEntry>,
}

/// A loaded, validated schedulers.toml.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulersToml {
    /// Where it was read from (None: empty, no file).
    pub path: Option<PathBuf>,
    /// Scheduler name to its entry.
    pub entries: BTreeMap<String, SchedulerEntry>,
}

impl SchedulersToml {
    /// Reads and validates `path`; `known_thresholds` are the threshold
    /// names the verdict understands.
    pub fn load(path: &Path, known_thresholds: &[&str]) -> Result<Self, SchedError> {
        let text = std::fs::read_to_string(path).map_err(|e| SchedError::io(path, e))?;
        Self::parse(&text, path, known_thresholds)
    }

    /// Parses and validates `text` (read from `path`).
    pub fn parse(text: &str, path: &Path, known_thresholds: &[&str]) -> Result<Self, SchedError> {
        let file: FileToml = toml::from_str(text).map_err(|e| SchedError::Toml {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        for (name, entry) in &file.scheduler {
            validate(path, name, entry, known_thresholds)?;
        }
        Ok(SchedulersToml {
            path: Some(path.to_path_buf()),
            entries: file.scheduler,
        })
    }

    /// The entry for the scheduler named `name` (a bare name, or the file
    /// name of a path such as `/opt/bin/scx_foo`).
    pub fn entry(&self, name: &str) -> Option<&SchedulerEntry> {
        let base = Path::new(name)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())?;
        self.entries.get(&base)
    }
}

fn validate(path: &Path, name: &str, e: &SchedulerEntry, known: &[&str]) -> Result<(), SchedError> {
    let bad = |field: String, message: String| SchedError::Field {
        path: path.to_path_buf(),
        name: name.to_string(),
        field,
        message,
    };
    if let Some(t) = e.attach_timeout_s {
        if t == 0 || t > MAX_ATTACH_TIMEOUT_S {
            return Err(bad(
                "attach_timeout_s".into(),
                format!("{t} is not between 1 and {MAX_ATTACH_TIMEOUT_S}"),
            ));
        }
    }
    for (k, v) in &e.thresholds {
        if !known.contains(&k.as_str()) {
            return Err(bad(
                format!("thresholds.{k}"),
                format!("unknown threshold (known: {})", known.join(", ")),
            ));
        }
        if !v.is_finite() || *v < 0.0 {
            return Err(bad(
                format!("thresholds.{k}"),
                format!("{v} is not a finite number >= 0"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &["max_gap_ms", "max_spread_pct"];

    fn parse(text: &str) -> Result<SchedulersToml, SchedError> {
        SchedulersToml::parse(text, Path::new("schedulers.toml"), KNOWN)
    }

    #[test]
    fn entries_parse_and_are_found_by_name_or_path() {
        let t = parse(
            "[scheduler.scx_bpfland]\ncrate = \"scx_bpfland\"\nversion = \"1.1.4\"\n\
             attach_timeout_s = 60\nthresholds = { max_gap_ms = 3000 }\n",
        )
        .unwrap();
        let e = t.entry("/opt/bin/scx_bpfland").unwrap();
        assert_eq!(e.version.as_deref(), Some("1.1.4"));
        assert_eq!(e.thresholds["max_gap_ms"], 3000.0);
        assert_eq!(e.enable_cpu, None);
        assert!(t.entry("scx_other").is_none());
        let central = parse("[scheduler.scx_central]\nenable_cpu = 0\n").unwrap();
        assert_eq!(central.entry("scx_central").unwrap().enable_cpu, Some(0));
        let e = parse("[scheduler.scx_central]\nenable_cpu = -1\n").unwrap_err();
        assert!(e.to_string().contains("enable_cpu"), "{e}");
    }

    #[test]
    fn bad_fields_are_named() {
        let e = parse("[scheduler.x]\nthresholds = { max_gaps = 1 }\n").unwrap_err();
        assert!(
            e.to_string()
                .contains("scheduler.x.thresholds.max_gaps: unknown threshold"),
            "{e}"
        );
        let e = parse("[scheduler.x]\nattach_timeout_s = 0\n").unwrap_err();
        assert!(
            e.to_string().contains("scheduler.x.attach_timeout_s"),
            "{e}"
        );
        let e = parse("[scheduler.x]\nversoin = \"1\"\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `versoin`"), "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
