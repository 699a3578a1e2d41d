//! `ktstr kernel build | list | clean | path`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use ktstr_kernel::resolve::request_from_manifest;
use ktstr_kernel::{
    build, BootKernel, CacheEntry, CacheLayout, KernelCache, KernelsToml, Manifest, Resolver,
    Target, KERNEL_ORG_MIRROR,
};
use serde_json::{json, Value};

use super::progress::Progress;

/// Kernel subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KernelCommand {
    /// Build a kernel (or reuse its cache entry) with ktstr's config and the
    /// sample sched_ext schedulers.
    Build(BuildArgs),
    /// List cache entries, verifying each.
    List(JsonArg),
    /// Remove cache entries (all but the newest N with --keep N).
    Clean(CleanArgs),
    /// Print the image path a run would boot for ID.
    Path(PathArgs),
}

/// `--json` alone.
#[derive(Debug, clap::Args)]
pub struct JsonArg {
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kernel build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// kernels.toml name, version (downloaded), source tree or tarball;
    /// default: kernels.toml's `default`, else Debian's linux-source-6.12.
    pub id: Option<String>,
    /// A kconfig fragment applied after ktstr's own.
    #[arg(long, value_name = "FILE")]
    pub extra_kconfig: Option<PathBuf>,
    /// Parallel make jobs (default: all CPUs).
    #[arg(long, short)]
    pub jobs: Option<usize>,
    /// Rebuild even when a valid cache entry exists.
    #[arg(long)]
    pub force: bool,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kernel clean`.
#[derive(Debug, clap::Args)]
pub struct CleanArgs {
    /// Keep the N newest valid entries.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub keep: usize,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `kernel path`.
#[derive(Debug, clap::Args)]
pub struct PathArgs {
    /// Any kernel identifier (see `ktstr kernel build --help`), or a cache
    /// key, cache entry directory, bzImage or vmlinux.
    pub id: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Runs a kernel subcommand.
pub fn run(cmd: KernelCommand, kernels_toml: Option<&Path>) -> anyhow::Result<ExitCode> {
    let resolver = resolver(kernels_toml)?;
    match cmd {
        KernelCommand::Build(args) => build_cmd(&resolver, args),
        KernelCommand::List(args) => list_cmd(&resolver.cache, args.json),
        KernelCommand::Clean(args) => clean_cmd(&resolver.cache, args),
        KernelCommand::Path(args) => path_cmd(&resolver, args),
    }
}

/// The resolver for this invocation: cache from the environment, named
/// kernels from the given or nearest kernels.toml.
pub fn resolver(kernels_toml: Option<&Path>) -> anyhow::Result<Resolver> {
    let mirror =
        std::env::var("KTSTR_KERNEL_MIRROR").unwrap_or_else(|_| KERNEL_ORG_MIRROR.to_string());
    let named = kernels_toml_at(kernels_toml, &mirror)?;
    Ok(Resolver {
        cache: KernelCache::new(CacheLayout::from_env()?),
        named,
        mirror,
    })
}

/// The given or nearest kernels.toml, loaded and validated (None when
/// none is given and none is near).
pub fn kernels_toml_at(given: Option<&Path>, mirror: &str) -> anyhow::Result<Option<KernelsToml>> {
    let path = match given {
        Some(p) => Some(p.to_path_buf()),
        None => find_nearest("kernels.toml"),
    };
    Ok(path.map(|p| KernelsToml::load(&p, mirror)).transpose()?)
}

/// `name` in the current directory or the nearest parent that has it.
pub fn find_nearest(name: &str) -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors().map(|d| d.join(name)).find(|p| p.is_file())
}

fn build_cmd(resolver: &Resolver, args: BuildArgs) -> anyhow::Result<ExitCode> {
    let mut req = match resolver.target(args.id.as_deref())? {
        Target::Source(req) => req,
        Target::Ready(BootKernel::Entry(entry)) if args.extra_kconfig.is_none() && !args.force => {
            emit_build(&entry, true, None, args.json)?;
            return Ok(ExitCode::SUCCESS);
        }
        Target::Ready(BootKernel::Entry(entry)) => request_from_manifest(&entry.manifest),
        Target::Ready(BootKernel::Image { path, .. }) => {
            anyhow::bail!(
                "{} is a prebuilt image; there is nothing to build",
                path.display()
            )
        }
    };
    if args.extra_kconfig.is_some() {
        req.extra_kconfig = args.extra_kconfig;
    }
    req.jobs = args.jobs;
    req.force = args.force;
    let progress = Progress::new();
    let outcome = build(&resolver.cache, &req, &progress)?;
    if let Some(reason) = &outcome.rejected {
        errln!(
            "rebuilt corrupt cache entry {}: {reason}",
            outcome.entry.manifest.key
        );
    }
    emit_build(
        &outcome.entry,
        outcome.cached,
        outcome.rejected.as_deref(),
        args.json,
    )?;
    Ok(ExitCode::SUCCESS)
}

fn emit_build(
    entry: &CacheEntry,
    cached: bool,
    rejected: Option<&str>,
    json: bool,
) -> std::io::Result<()> {
    if json {
        let v = json!({ "cached": cached, "rejected": rejected, "entry": entry_json(&entry.dir, Some(&entry.manifest), None) });
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"))?;
    } else {
        let how = if cached { "cache hit" } else { "built" };
        outln!("{how}: {} ({})", entry.manifest.key, entry.dir.display())?;
        outln!("  bzImage   {}", entry.bzimage().display())?;
        outln!("  vmlinux   {}", entry.vmlinux().display())?;
        outln!("  schedulers {}", entry.manifest.schedulers.join(" "))?;
    }
    Ok(())
}

/// The stable JSON shape of one cache entry.
fn entry_json(dir: &Path, m: Option<&Manifest>, problem: Option<&str>) -> Value {
    let key = dir.file_name().map(|n| n.to_string_lossy().into_owned());
    let Some(m) = m else {
        return json!({ "key": key, "dir": dir, "valid": false, "problem": problem });
    };
    let size: u64 = m.files.iter().map(|f| f.size).sum();
    let schedulers: Vec<Value> = m
        .schedulers
        .iter()
        .map(|s| json!({ "name": s, "path": dir.join("sched").join(s) }))
        .collect();
    json!({
        "key": m.key,
        "dir": dir,
        "valid": problem.is_none(),
        "problem": problem,
        "version": m.version,
        "arch": m.arch,
        "source": { "kind": m.source.kind, "location": m.source.location, "content_id": m.source.content_id },
        "config_hash": m.config_hash,
        "fragments": m.fragments,
        "created_unix": m.created_unix,
        "build_seconds": m.build_seconds,
        "size_bytes": size,
        "bzimage": dir.join("bzImage"),
        "vmlinux": dir.join("vmlinux"),
        "config": dir.join("config"),
        "system_map": dir.join("System.map"),
        "schedulers": schedulers,
    })
}

fn list_cmd(cache: &KernelCache, json: bool) -> anyhow::Result<ExitCode> {
    let rows = cache.list(true)?;
    if json {
        let entries: Vec<Value> = rows
            .iter()
            .map(|r| {
                entry_json(
                    &cache.layout().entry_dir(&r.key),
                    r.manifest.as_ref(),
                    r.problem.as_deref(),
                )
            })
            .collect();
        let v = json!({ "cache_dir": cache.layout().kernels_dir(), "entries": entries });
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        outln!(
            "no kernels in {} (run `ktstr kernel build`)",
            cache.layout().kernels_dir().display()
        )?;
    }
    for r in rows {
        match (&r.manifest, &r.problem) {
            (Some(m), None) => outln!(
                "{:<36} {:<10} {:<8} {} schedulers  {}",
                r.key,
                m.version,
                format!("{:?}", m.source.kind).to_lowercase(),
                m.schedulers.len(),
                m.source.location
            )?,
            (_, Some(p)) => outln!("{:<36} INVALID: {p}", r.key)?,
            (None, None) => outln!("{:<36} INVALID", r.key)?,
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn clean_cmd(cache: &KernelCache, args: CleanArgs) -> anyhow::Result<ExitCode> {
    let removed = cache
        .clean(args.keep)
        .context("cleaning the kernel cache")?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&json!({ "removed": removed }))?
        )?;
    } else if removed.is_empty() {
        outln!("nothing to remove")?;
    } else {
        for key in removed {
            outln!("removed {key}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn path_cmd(resolver: &Resolver, args: PathArgs) -> anyhow::Result<ExitCode> {
    let kernel = resolver.locate(args.id.as_deref(), &ktstr_kernel::Silent)?;
    if args.json {
        let v = match &kernel {
            BootKernel::Entry(e) => json!({
                "image": kernel.boot_image(),
                "format": "bzimage",
                "entry": entry_json(&e.dir, Some(&e.manifest), None),
            }),
            BootKernel::Image { path, format } => {
                json!({ "image": path, "format": format, "entry": null })
            }
        };
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        outln!("{}", kernel.boot_image().display())?;
    }
    Ok(ExitCode::SUCCESS)
}
