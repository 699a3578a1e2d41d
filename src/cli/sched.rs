//! `ktstr sched install|list`, and where scheduler binaries and settings
//! come from for `check` and `run`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ktstr_kernel::{CacheLayout, SAMPLE_SCHEDULERS};
use ktstr_plan::thresholds::threshold_names;
use ktstr_sched::{
    install, installed, installed_names, reusable, InstallRequest, InstallSource, SchedulersToml,
};
use serde_json::json;

/// `sched` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SchedCommand {
    /// Build a scheduler crate (crates.io or a local path) into the cache
    /// with cargo and clang-19; `run --scheduler NAME` then finds it.
    Install(InstallArgs),
    /// Schedulers known to schedulers.toml, installed in the cache, or
    /// built with every kernel.
    List(ListArgs),
}

/// Arguments of `sched install`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// The scheduler (its binary's name), optionally with a crate version:
    /// `scx_bpfland` (schedulers.toml's pin, else the newest) or
    /// `scx_bpfland@1.1.4`.
    #[arg(value_name = "NAME[@VERSION]")]
    pub name: String,
    /// Build a local crate directory instead of crates.io.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Rebuild even if that version is installed.
    #[arg(long)]
    pub force: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `sched list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `sched` subcommand.
pub fn run(cmd: SchedCommand, toml: Option<&Path>) -> anyhow::Result<ExitCode> {
    let registry = registry(toml)?;
    let layout = CacheLayout::from_env()?;
    match cmd {
        SchedCommand::Install(args) => install_cmd(&layout, &registry, args),
        SchedCommand::List(args) => list_cmd(&layout, &registry, args.json),
    }
}

/// The given or nearest schedulers.toml (empty when there is none).
pub fn registry(toml: Option<&Path>) -> anyhow::Result<SchedulersToml> {
    let path = match toml {
        Some(p) => Some(p.to_path_buf()),
        None => super::kernel::find_nearest("schedulers.toml"),
    };
    let known = threshold_names();
    Ok(match path {
        Some(p) => SchedulersToml::load(&p, &known)?,
        None => SchedulersToml::default(),
    })
}

fn install_cmd(
    layout: &CacheLayout,
    registry: &SchedulersToml,
    args: InstallArgs,
) -> anyhow::Result<ExitCode> {
    let (name, version) = match args.name.split_once('@') {
        Some((n, v)) => (n.to_string(), Some(v.to_string())),
        None => (args.name.clone(), None),
    };
    if version.is_some() && args.path.is_some() {
        anyhow::bail!(
            "a version (@{}) and --path exclude each other",
            version.unwrap_or_default()
        );
    }
    let entry = registry.entry(&name);
    let source = match args.path {
        Some(p) => InstallSource::Path(p),
        None => InstallSource::Crate {
            name: entry
                .and_then(|e| e.crate_name.clone())
                .unwrap_or_else(|| name.clone()),
            version: version.or_else(|| entry.and_then(|e| e.version.clone())),
        },
    };
    let req = InstallRequest {
        binary: name.clone(),
        source,
        force: args.force,
    };
    if !args.json && reusable(layout, &req).is_none() {
        errln!("installing {name} (cargo install; cold builds take minutes)");
    }
    let done = install(layout, &req).with_context(|| format!("installing {name}"))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&done)?)?;
    } else {
        let how = if done.built {
            "installed"
        } else {
            "already installed"
        };
        outln!(
            "{how}: {} {} at {}",
            done.name,
            done.version,
            done.binary.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn list_cmd(
    layout: &CacheLayout,
    registry: &SchedulersToml,
    as_json: bool,
) -> anyhow::Result<ExitCode> {
    let mut names: Vec<String> = registry.entries.keys().cloned().collect();
    names.extend(SAMPLE_SCHEDULERS.iter().map(|s| s.to_string()));
    names.extend(installed_names(layout));
    names.sort();
    names.dedup();
    let rows: Vec<serde_json::Value> = names
        .iter()
        .map(|n| {
            let e = registry.entries.get(n);
            json!({
                "name": n,
                "sample": SAMPLE_SCHEDULERS.contains(&n.as_str()),
                "installed": installed(layout, n, None),
                "description": e.and_then(|e| e.description.clone()),
                "thresholds": e.map(|e| e.thresholds.clone()).unwrap_or_default(),
            })
        })
        .collect();
    if as_json {
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    for r in &rows {
        let whence = if r["sample"] == true {
            "built with every kernel".to_string()
        } else if let Some(v) = r["installed"]["version"].as_str() {
            format!("installed {v}")
        } else {
            "not installed (ktstr sched install)".to_string()
        };
        outln!(
            "{:<14} {whence:<36} {}",
            r["name"].as_str().unwrap_or(""),
            r["description"].as_str().unwrap_or("")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
