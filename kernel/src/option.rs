//! Kconfig option values and the options a build dropped: plain data that
//! the fragment parser produces and the pipeline's errors report.

use std::fmt;
use std::path::PathBuf;

/// The value a fragment or a `.config` gives one option.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OptionValue {
    /// `CONFIG_X=value` (value as written, e.g. `y`, `512`, `"str"`).
    Set(String),
    /// `# CONFIG_X is not set`.
    NotSet,
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Set(v) => write!(f, "={v}"),
            OptionValue::NotSet => write!(f, " is not set"),
        }
    }
}

/// An option a fragment asked for that the final configuration lacks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DroppedOption {
    /// The option, e.g. `CONFIG_E1000`.
    pub name: String,
    /// What the fragment asked for.
    pub wanted: OptionValue,
    /// What `.config` ended up with (`None`: absent entirely).
    pub got: Option<OptionValue>,
    /// The fragment that asked.
    pub origin: PathBuf,
}

impl fmt::Display for DroppedOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let got = match &self.got {
            Some(OptionValue::Set(v)) => format!("={v}"),
            Some(OptionValue::NotSet) | None => " is not set".to_string(),
        };
        write!(
            f,
            "{}{} (asked by {}): the final .config has {}{}",
            self.name,
            self.wanted,
            self.origin.display(),
            self.name,
            got
        )
    }
}
