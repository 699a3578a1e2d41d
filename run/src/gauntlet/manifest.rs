//! `gauntlet.toml`: what a sweep runs. Read with toml's spans, so every
//! error names the file, line, column and key; semantic errors (a preset
//! that does not exist, a script that is not there) are all collected,
//! not just the first, before anything boots.
//!
//! ```toml
//! scenarios = ["scenarios/basic/*.rhai"]      # globs, relative to this file
//! presets = ["smt-2llc", "numa", "2n2l2c1t"]  # names, tags, topologies, "all"
//! kernels = ["default"]                        # kernels.toml names, keys, versions
//! schedulers = ["eevdf", "scx_simple"]         # "eevdf" is the kernel's own
//! repetitions = 1
//! duration = 4          # seconds, over each script's own
//! budget = 600          # seconds of estimated VM time to fit in
//! jobs = 2              # VMs at once (default: what the host fits)
//! selftests = true      # also the kernel's sched_ext selftests on each
//!                       # preset × kernel (or a filter: "select_cpu")
//! selftest_timeout = 120  # seconds per selftest
//!
//! [[scheduler]]         # a scheduler with arguments or an expectation
//! name = "scx_qmap"
//! args = ["-t", "3"]
//! expect = "fail"       # a fault-injection cell passes by failing
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};

use ktstr_plan::selftests::{SelftestSpec, DEFAULT_TEST_TIMEOUT_S};
use ktstr_topology::{presets, Topology};
use serde::Deserialize;
use toml::Spanned;

/// The most bytes a manifest may have.
pub const MAX_MANIFEST_BYTES: u64 = 1024 * 1024;

/// One problem with a manifest, at its place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{col}: {key}: {message}", path.display())]
pub struct ManifestError {
    /// The manifest.
    pub path: PathBuf,
    /// 1-based line (0 when the problem has no place).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// The key it is about (`presets`, `scheduler.expect`, ...).
    pub key: String,
    /// What is wrong.
    pub message: String,
}

/// Which topologies a sweep runs.
#[derive(Debug, Clone, PartialEq)]
pub enum PresetSelection {
    /// The presets of the default sweep (1 node, <= 12 LLCs, <= 192 CPUs).
    Default,
    /// Every preset.
    All,
    /// These, by label (a preset's name, or the topology written out).
    List(Vec<(String, Topology)>),
}

/// A scheduler the sweep runs every scenario under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerChoice {
    /// Its name (`eevdf` is the kernel's own).
    pub name: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its cells pass only by failing (fault injection).
    pub expect_fail: bool,
}

impl SchedulerChoice {
    /// Whether this is the kernel's own scheduler.
    pub fn is_eevdf(&self) -> bool {
        self.name == "eevdf"
    }

    /// `name arg arg`, as reports show it.
    pub fn label(&self) -> String {
        std::iter::once(self.name.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The file.
    pub path: PathBuf,
    /// Every scenario script, in order, each once.
    pub scenarios: Vec<PathBuf>,
    /// Which topologies.
    pub presets: PresetSelection,
    /// Kernel identifiers (empty: the default kernel).
    pub kernels: Vec<String>,
    /// Schedulers (empty: each script's own).
    pub schedulers: Vec<SchedulerChoice>,
    /// Runs of each job.
    pub repetitions: u32,
    /// Seconds each job runs, over the script's own.
    pub duration: Option<f64>,
    /// Seconds of estimated VM time to fit in.
    pub budget: Option<f64>,
    /// VMs at once.
    pub jobs: Option<u32>,
    /// The kernel's sched_ext selftests, one job per preset × kernel ×
    /// repetition (None: not run).
    pub selftests: Option<SelftestSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestToml {
    #[serde(default)]
    scenarios: Vec<Spanned<String>>,
    #[serde(default)]
    presets: Vec<Spanned<String>>,
    #[serde(default)]
    kernels: Vec<Spanned<String>>,
    #[serde(default)]
    schedulers: Vec<Spanned<String>>,
    #[serde(default)]
    scheduler: Vec<SchedulerToml>,
    repetitions: Option<Spanned<u32>>,
    duration: Option<Spanned<f64>>,
    budget: Option<Spanned<f64>>,
    jobs: Option<Spanned<u32>>,
    selftests: Option<Spanned<toml::Value>>,
    selftest_timeout: Option<Spanned<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SchedulerToml {
    name: Spanned<String>,
    #[serde(default)]
    args: Vec<String>,
    expect: Option<Spanned<String>>,
}

/// Answers the questions a manifest raises that need the host: whether a
/// scheduler can be found, whether a kernel identifier means anything.
pub struct Lookups<'a> {
    /// `Err(why)` for a scheduler that cannot run.
    pub scheduler: &'a dyn Fn(&str) -> Result<(), String>,
    /// `Err(why)` for a kernel identifier that names no kernel.
    pub kernel: &'a dyn Fn(&str) -> Result<(), String>,
}

/// Collects errors with their places in one file.
struct Errors<'a> {
    path: &'a Path,
    text: &'a str,
    out: Vec<ManifestError>,
}

impl Errors<'_> {
    fn at(&mut self, span: Range<usize>, key: &str, message: impl Into<String>) {
        let (line, col) = line_col(self.text, span.start);
        self.out.push(ManifestError {
            path: self.path.to_path_buf(),
            line,
            col,
            key: key.to_string(),
            message: message.into(),
        });
    }
}

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// Reads and validates the manifest at `path`: every error found, or the
/// manifest.
pub fn load(path: &Path, lookups: &Lookups) -> Result<Manifest, Vec<ManifestError>> {
    let whole = |message: String| {
        vec![ManifestError {
            path: path.to_path_buf(),
            line: 0,
            col: 0,
            key: "file".into(),
            message,
        }]
    };
    let meta = std::fs::metadata(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(whole(format!(
            "{} bytes; a manifest is a small file",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| whole(format!("cannot read: {e}")))?;
    parse(path, &text, lookups)
}

/// Validates the manifest `text` read from `path`.
pub fn parse(path: &Path, text: &str, lookups: &Lookups) -> Result<Manifest, Vec<ManifestError>> {
    let mut errors = Errors {
        path,
        text,
        out: Vec::new(),
    };
    let raw: ManifestToml = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().to_string();
            let key = key_of(&message);
            errors.at(span, &key, message);
            return Err(errors.out);
        }
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let selftests = selftests(&raw, &mut errors);
    if raw.scenarios.is_empty() && selftests.is_none() {
        errors.at(
            0..0,
            "scenarios",
            "names no scenario script (nor selftests = true)",
        );
    }
    let manifest = Manifest {
        path: path.to_path_buf(),
        scenarios: scenarios(&raw.scenarios, dir, &mut errors),
        presets: preset_selection(&raw.presets, &mut errors),
        kernels: kernels(&raw.kernels, lookups, &mut errors),
        schedulers: schedulers(&raw, lookups, &mut errors),
        repetitions: positive(raw.repetitions, "repetitions", 1, 1000, &mut errors).unwrap_or(1),
        duration: seconds(raw.duration, "duration", 3600.0, &mut errors),
        budget: seconds(raw.budget, "budget", 7.0 * 24.0 * 3600.0, &mut errors),
        jobs: positive(raw.jobs, "jobs", 1, 256, &mut errors),
        selftests,
    };
    if errors.out.is_empty() {
        Ok(manifest)
    } else {
        Err(errors.out)
    }
}

/// The key a toml error message is about (`unknown field `x``), else the
/// file.
fn key_of(message: &str) -> String {
    message
        .split('`')
        .nth(1)
        .filter(|_| message.contains("field"))
        .unwrap_or("manifest")
        .to_string()
}

fn scenarios(globs: &[Spanned<String>], dir: &Path, e: &mut Errors) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for g in globs {
        let pattern = dir.join(g.get_ref());
        let found: Vec<PathBuf> = match glob::glob(&pattern.to_string_lossy()) {
            Ok(paths) => paths.flatten().filter(|p| p.is_file()).collect(),
            Err(err) => {
                e.at(g.span(), "scenarios", format!("`{}`: {err}", g.get_ref()));
                continue;
            }
        };
        if found.is_empty() {
            let what = if g.get_ref().contains(['*', '?', '[']) {
                "matches no file"
            } else {
                "no such file"
            };
            e.at(g.span(), "scenarios", format!("`{}`: {what}", g.get_ref()));
        }
        let mut found = found;
        found.sort();
        for p in found {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn preset_selection(items: &[Spanned<String>], e: &mut Errors) -> PresetSelection {
    if items.is_empty() {
        return PresetSelection::Default;
    }
    if items.len() == 1 && items[0].get_ref() == "all" {
        return PresetSelection::All;
    }
    let mut out: Vec<(String, Topology)> = Vec::new();
    for item in items {
        let name = item.get_ref().as_str();
        let found: Vec<(String, Topology)> = if let Some(t) = presets::by_name(name) {
            vec![(name.to_string(), t)]
        } else if presets::TAGS.contains(&name) {
            presets::presets()
                .into_iter()
                .filter(|(_, t)| presets::in_default_sweep(t) || name == "numa")
                .filter(|(_, t)| presets::tags(t).contains(&name))
                .map(|(n, t)| (n.to_string(), t))
                .collect()
        } else if let Ok(t) = name.parse::<Topology>() {
            vec![(t.to_string(), t)]
        } else {
            e.at(
                item.span(),
                "presets",
                format!(
                    "`{name}` is not a preset, a tag ({}), a topology (NnNlNcNt) or `all`",
                    presets::TAGS.join(", ")
                ),
            );
            continue;
        };
        for f in found {
            if !out.iter().any(|(_, t)| *t == f.1) {
                out.push(f);
            }
        }
    }
    PresetSelection::List(out)
}

fn kernels(items: &[Spanned<String>], lookups: &Lookups, e: &mut Errors) -> Vec<String> {
    let mut out = Vec::new();
    for k in items {
        match (lookups.kernel)(k.get_ref()) {
            Ok(()) => out.push(k.get_ref().clone()),
            Err(why) => e.at(k.span(), "kernels", why),
        }
    }
    out
}

fn schedulers(raw: &ManifestToml, lookups: &Lookups, e: &mut Errors) -> Vec<SchedulerChoice> {
    let mut out = Vec::new();
    let check = |name: &Spanned<String>, key: &str, e: &mut Errors| {
        let n = name.get_ref();
        if n == "eevdf" {
            return true;
        }
        match (lookups.scheduler)(n) {
            Ok(()) => true,
            Err(why) => {
                e.at(name.span(), key, format!("scheduler `{n}` {why}"));
                false
            }
        }
    };
    for s in &raw.schedulers {
        if check(s, "schedulers", e) {
            out.push(SchedulerChoice {
                name: s.get_ref().clone(),
                args: Vec::new(),
                expect_fail: false,
            });
        }
    }
    for s in &raw.scheduler {
        let expect_fail = match s.expect.as_ref().map(|x| (x, x.get_ref().as_str())) {
            None | Some((_, "pass")) => false,
            Some((_, "fail")) => true,
            Some((x, other)) => {
                let msg = format!("`{other}` is not an outcome to expect (\"pass\" or \"fail\")");
                e.at(x.span(), "scheduler.expect", msg);
                false
            }
        };
        if check(&s.name, "scheduler.name", e) {
            out.push(SchedulerChoice {
                name: s.name.get_ref().clone(),
                args: s.args.clone(),
                expect_fail,
            });
        }
    }
    out
}

/// `selftests = true | false | "filter"` and `selftest_timeout`.
fn selftests(raw: &ManifestToml, e: &mut Errors) -> Option<SelftestSpec> {
    let timeout = positive(raw.selftest_timeout.clone(), "selftest_timeout", 1, 3600, e);
    let Some(v) = &raw.selftests else {
        if let Some(t) = &raw.selftest_timeout {
            e.at(t.span(), "selftest_timeout", "set without selftests = true");
        }
        return None;
    };
    let filter = match v.get_ref() {
        toml::Value::Boolean(false) => return None,
        toml::Value::Boolean(true) => None,
        toml::Value::String(f) if !f.trim().is_empty() => Some(f.clone()),
        other => {
            e.at(
                v.span(),
                "selftests",
                format!("{other} is not true, false or a test-name filter"),
            );
            return None;
        }
    };
    Some(SelftestSpec {
        filter,
        test_timeout_s: timeout.map_or(DEFAULT_TEST_TIMEOUT_S, u64::from),
    })
}

fn positive(v: Option<Spanned<u32>>, key: &str, min: u32, max: u32, e: &mut Errors) -> Option<u32> {
    let v = v?;
    let n = *v.get_ref();
    if n < min || n > max {
        e.at(v.span(), key, format!("{n} is not between {min} and {max}"));
        return None;
    }
    Some(n)
}

fn seconds(v: Option<Spanned<f64>>, key: &str, max: f64, e: &mut Errors) -> Option<f64> {
    let v = v?;
    let s = *v.get_ref();
    if !(s > 0.0 && s <= max) {
        e.at(
            v.span(),
            key,
            format!("{s} is not more than 0 s and at most {max} s"),
        );
        return None;
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookups() -> Lookups<'static> {
        Lookups {
            scheduler: &|n| {
                if n.starts_with("scx_") {
                    Ok(())
                } else {
                    Err("not found".into())
                }
            },
            kernel: &|k| {
                if k == "default" {
                    Ok(())
                } else {
                    Err(format!("no kernel matches `{k}`"))
                }
            },
        }
    }

    fn parse_in(dir: &Path, text: &str) -> Result<Manifest, Vec<ManifestError>> {
        std::fs::write(dir.join("a.rhai"), "").unwrap();
        std::fs::write(dir.join("b.rhai"), "").unwrap();
        parse(&dir.join("g.toml"), text, &lookups())
    }

    #[test]
    fn a_manifest_expands_globs_presets_tags_and_schedulers() {
        let dir = tempfile::tempdir().unwrap();
        let m = parse_in(
            dir.path(),
            "scenarios = [\"*.rhai\", \"a.rhai\"]\npresets = [\"smt-2llc\", \"odd-llc\", \"2n2l2c1t\"]\n\
             schedulers = [\"eevdf\"]\nrepetitions = 2\n\n[[scheduler]]\nname = \"scx_qmap\"\n\
             args = [\"-t\", \"3\"]\nexpect = \"fail\"\n",
        )
        .unwrap();
        let names: Vec<_> = m.scenarios.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["a.rhai", "b.rhai"]);
        let PresetSelection::List(p) = &m.presets else {
            panic!()
        };
        let labels: Vec<&str> = p.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(labels[0], "smt-2llc");
        assert!(
            labels.contains(&"odd-3llc") && labels.contains(&"2n2l2c1t"),
            "{labels:?}"
        );
        assert_eq!(m.schedulers[1].label(), "scx_qmap -t 3");
        assert!(m.schedulers[1].expect_fail && !m.schedulers[0].expect_fail);
        assert_eq!(m.repetitions, 2);
    }

    #[test]
    fn selftests_need_no_scenarios_and_expand_per_preset_and_kernel() {
        let dir = tempfile::tempdir().unwrap();
        let m = parse_in(
            dir.path(),
            "presets = [\"tiny-2llc\", \"2n2l2c1t\"]\nselftests = \"dsq\"\nselftest_timeout = 30\n",
        )
        .unwrap();
        let spec = m.selftests.clone().unwrap();
        assert_eq!(
            (spec.filter.as_deref(), spec.test_timeout_s),
            (Some("dsq"), 30)
        );
        let (jobs, unfit) = super::super::expand::expand(&m, &[]);
        assert!(unfit.is_empty());
        let cells: Vec<String> = jobs.iter().map(|j| j.cell.key()).collect();
        assert_eq!(
            cells,
            [
                "selftests::tiny-2llc::sched_ext selftests::default",
                "selftests::2n2l2c1t::sched_ext selftests::default"
            ]
        );
        assert!(jobs
            .iter()
            .all(|j| j.selftests.as_ref().is_some_and(|s| s.spec == spec)));
        let m = parse_in(dir.path(), "scenarios = [\"a.rhai\"]\nselftests = true\n").unwrap();
        assert_eq!(m.selftests.unwrap().filter, None);
        let m = parse_in(dir.path(), "scenarios = [\"a.rhai\"]\nselftests = false\n").unwrap();
        assert!(m.selftests.is_none());
        for (text, key, line) in [
            ("selftests = 3\n", "selftests", 1),
            (
                "scenarios = [\"a.rhai\"]\nselftest_timeout = 9\n",
                "selftest_timeout",
                2,
            ),
            ("presets = [\"tiny-2llc\"]\n", "scenarios", 1),
        ] {
            let errs = parse_in(dir.path(), text).unwrap_err();
            assert_eq!(
                (errs[0].key.as_str(), errs[0].line),
                (key, line),
                "{text}: {errs:?}"
            );
        }
    }

    #[test]
    fn every_broken_part_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let errs = parse_in(dir.path(), "scenarios = [\"a.rhai\"]\nprest = [\"x\"]\n").unwrap_err();
        assert_eq!(errs.len(), 1);
        let e = errs[0].to_string();
        assert!(
            e.contains("g.toml:2:1: prest: unknown field `prest`"),
            "{e}"
        );
        let errs = parse_in(dir.path(), "scenarios = \"a.rhai\"\n").unwrap_err();
        assert!(errs[0].to_string().contains("g.toml:1:13"), "{}", errs[0]);
        let errs = parse_in(
            dir.path(),
            "scenarios = [\"a.rhai\", \"gone.rhai\"]\npresets = [\"huge\"]\nschedulers = [\"nosuch\"]\n\
             kernels = [\"9.9.x\"]\n[[scheduler]]\nname = \"scx_x\"\nexpect = \"maybe\"\n",
        )
        .unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let want = [
            "g.toml:1:24: scenarios: `gone.rhai`: no such file",
            "g.toml:2:12: presets: `huge` is not a preset",
            "g.toml:4:12: kernels: no kernel matches `9.9.x`",
            "g.toml:3:15: schedulers: scheduler `nosuch` not found",
            "g.toml:7:10: scheduler.expect: `maybe` is not an outcome",
        ];
        for w in want {
            assert!(shown.iter().any(|s| s.contains(w)), "{w} not in {shown:#?}");
        }
        assert_eq!(shown.len(), want.len(), "{shown:#?}");
    }
}
