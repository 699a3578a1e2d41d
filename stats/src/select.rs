//! Filters (`scheduler=scx_simple`, `kernel^=6.12`) and `--by` columns:
//! parsed, checked against the columns a dataset has, and applied.

use polars::prelude::*;
use serde::Serialize;

use crate::error::StatsError;
use crate::tables::KEY_COLUMNS;

/// The columns filters and `--by` may name: the configuration and the job.
pub fn selectable() -> Vec<&'static str> {
    let mut v = KEY_COLUMNS.to_vec();
    v.push("job");
    v
}

/// The default `--by`: a cell is a scenario on a preset under a scheduler
/// and kernel.
pub const DEFAULT_BY: &[&str] = &["scenario", "preset", "scheduler", "kernel"];

/// How a filter matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// `column=value`: equal.
    Equal,
    /// `column^=value`: starts with.
    Prefix,
}

/// One filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filter {
    /// The column.
    pub column: String,
    /// How it matches.
    pub how: Match,
    /// The value.
    pub value: String,
}

/// Whether `text` is a filter list rather than a run name.
pub fn is_filter(text: &str) -> bool {
    text.contains('=')
}

/// Parses `k=v[,k2^=v2...]`.
pub fn parse_filters(text: &str) -> Result<Vec<Filter>, StatsError> {
    let bad = |why: String| StatsError::BadArgument {
        what: format!("filter `{text}`"),
        why,
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let (column, how, value) = if let Some((k, v)) = part.split_once("^=") {
            (k, Match::Prefix, v)
        } else if let Some((k, v)) = part.split_once('=') {
            (k, Match::Equal, v)
        } else {
            return Err(bad(format!(
                "`{part}` is not COLUMN=VALUE or COLUMN^=PREFIX"
            )));
        };
        let column = column.trim();
        if !selectable().contains(&column) {
            return Err(bad(format!(
                "no column `{column}` (columns: {})",
                selectable().join(", ")
            )));
        }
        out.push(Filter {
            column: column.to_string(),
            how,
            value: value.trim().to_string(),
        });
    }
    Ok(out)
}

/// Parses a `--by` list (comma-separated, or given several times).
pub fn parse_by(items: &[String]) -> Result<Vec<String>, StatsError> {
    if items.is_empty() {
        return Ok(DEFAULT_BY.iter().map(|s| s.to_string()).collect());
    }
    let mut out = Vec::new();
    for c in items.iter().flat_map(|s| s.split(',')) {
        let c = c.trim();
        if !selectable().contains(&c) {
            return Err(StatsError::BadArgument {
                what: format!("--by {c}"),
                why: format!("no such column (columns: {})", selectable().join(", ")),
            });
        }
        if !out.iter().any(|o| o == c) {
            out.push(c.to_string());
        }
    }
    Ok(out)
}

/// The rows of `df` that every filter matches, as a lazy frame. A prefix
/// becomes the values of the column that start with it.
pub fn apply(df: &DataFrame, filters: &[Filter]) -> Result<LazyFrame, StatsError> {
    let mut lf = df.clone().lazy();
    for f in filters {
        let c = col(f.column.as_str());
        let values: Vec<String> = match f.how {
            Match::Equal => vec![f.value.clone()],
            Match::Prefix => {
                let column = df
                    .column(&f.column)
                    .and_then(|c| c.str().cloned())
                    .map_err(crate::error::frame("filtering"))?;
                let set: std::collections::BTreeSet<&str> = column
                    .iter()
                    .flatten()
                    .filter(|v| v.starts_with(&f.value))
                    .collect();
                set.into_iter().map(str::to_string).collect()
            }
        };
        let matches = values
            .iter()
            .map(|v| c.clone().eq(lit(v.as_str())))
            .reduce(|a, b| a.or(b))
            .unwrap_or(lit(false));
        lf = lf.filter(matches);
    }
    Ok(lf)
}

/// `filters` as text again (`scheduler=scx_simple`).
pub fn describe(filters: &[Filter]) -> String {
    filters
        .iter()
        .map(|f| {
            let op = match f.how {
                Match::Equal => "=",
                Match::Prefix => "^=",
            };
            format!("{}{op}{}", f.column, f.value)
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_unknown_columns_are_named() {
        let f = parse_filters("scheduler=scx_simple,kernel^=6.12").unwrap();
        assert_eq!(f[1].how, Match::Prefix);
        assert_eq!(describe(&f), "scheduler=scx_simple,kernel^=6.12");
        let e = parse_filters("sched=x").unwrap_err().to_string();
        assert!(e.contains("no column `sched`"), "{e}");
        assert!(parse_filters("scheduler").is_err());
        assert_eq!(parse_by(&[]).unwrap(), DEFAULT_BY);
        assert_eq!(
            parse_by(&["scenario,preset".into(), "scenario".into()]).unwrap(),
            ["scenario", "preset"]
        );
        assert!(parse_by(&["cgroup".into()]).is_err());
    }
}
