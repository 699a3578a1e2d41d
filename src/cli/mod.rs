//! Argument definitions and dispatch for every `ktstr` subcommand.

mod completions;
mod kernel;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ktstr: test Linux schedulers (sched_ext and EEVDF) in VMs of any CPU
/// topology.
#[derive(Debug, Parser)]
#[command(name = "ktstr", version, about, propagate_version = true)]
pub struct Cli {
    /// The kernels.toml with named kernels (default: ./kernels.toml or the
    /// nearest one in a parent directory).
    #[arg(long, global = true, env = "KTSTR_KERNELS_TOML", value_name = "FILE")]
    pub kernels_toml: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, list, locate and clean guest kernels.
    #[command(subcommand)]
    Kernel(kernel::KernelCommand),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Kernel(cmd) => kernel::run(cmd, cli.kernels_toml.as_deref()),
        Command::Completions(args) => completions::run(&args),
    }
}
