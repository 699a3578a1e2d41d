//! Argument definitions and dispatch for every `ktstr` subcommand.

#[macro_use]
pub(crate) mod output;

mod bench;
mod bench_snapshot;
mod completions;
mod gauntlet;
mod gauntlet_view;
mod guest;
mod kernel;
mod layout_view;
mod progress;
mod repl;
mod repl_input;
mod run;
mod sched;
mod scripts;
mod selftest;
mod shell;
mod stats;
mod stats_view;
mod terminal;
mod thresholds;
mod topo;
mod verifier;
mod vm;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use output::{is_closed_pipe, CLOSED_PIPE_EXIT};

/// ktstr: test Linux schedulers (sched_ext and EEVDF) in VMs of any CPU
/// topology.
#[derive(Debug, Parser)]
#[command(name = "ktstr", version, about, propagate_version = true)]
pub struct Cli {
    /// The kernels.toml with named kernels (default: ./kernels.toml or the
    /// nearest one in a parent directory).
    #[arg(long, global = true, env = "KTSTR_KERNELS_TOML", value_name = "FILE")]
    pub kernels_toml: Option<PathBuf>,

    /// The schedulers.toml with per-scheduler settings (default:
    /// ./schedulers.toml or the nearest one in a parent directory).
    #[arg(
        long,
        global = true,
        env = "KTSTR_SCHEDULERS_TOML",
        value_name = "FILE"
    )]
    pub schedulers_toml: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

/// Top-level subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, list, locate and clean guest kernels.
    #[command(subcommand)]
    Kernel(kernel::KernelCommand),
    /// Run scenario scripts in VMs and judge them (exit 0 pass/skip,
    /// 1 fail, 2 inconclusive).
    Run(run::RunArgs),
    /// Sweep scenarios over topologies, schedulers and kernels from a
    /// manifest, in parallel (exit 1 if a cell failed its expectation).
    Gauntlet(gauntlet::GauntletArgs),
    /// Results as data: summaries, import, merge, A/B compare (exit 1
    /// on a regression), noise and an HTML report.
    Stats(stats::StatsArgs),
    /// Install and list schedulers.
    #[command(subcommand)]
    Sched(sched::SchedCommand),
    /// Check scenario scripts before anything boots (exit 1 on errors).
    Check(scripts::CheckArgs),
    /// Print the Plan a script records.
    Plan(scripts::PlanArgs),
    /// List the scenario catalog.
    List(scripts::ListArgs),
    /// Every verdict threshold in force (for a script, a scheduler, a
    /// backend) and the layer each value came from.
    Thresholds(thresholds::ThresholdsArgs),
    /// Load a scheduler on kernels × topologies and report each BPF
    /// program's verified instructions (exit 1 on a rejection, or with
    /// --compare on a regression).
    Verifier(verifier::VerifierArgs),
    /// The kernel's sched_ext selftests in a VM, one verdict per test
    /// (exit 1 if a test failed, timed out, crashed or did not run).
    Selftest(selftest::SelftestArgs),
    /// Write `.d.rhai` definitions of the scenario API for editors.
    Defs(scripts::DefsArgs),
    /// Boot VMs and look at what the guest sees.
    #[command(subcommand)]
    Vm(vm::VmCommand),
    /// A busybox shell in a VM (interactive, or --exec CMD).
    Shell(shell::ShellArgs),
    /// A live Rhai session in a booted VM: scenario functions run at once
    /// (exit 1 if a statement failed).
    Repl(repl::ReplArgs),
    /// The host's own CPU layout (same shape as `vm probe`).
    Topo(kernel::JsonArg),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print a shell completion script.
    Completions(completions::CompletionsArgs),
}

/// The longest VM timeout a command takes, in seconds (30 days).
pub const MAX_TIMEOUT_S: u64 = 30 * 24 * 3600;

/// Paths a command reads besides its own arguments.
#[derive(Debug, Clone, Copy)]
pub struct Manifests<'a> {
    /// kernels.toml (None: the nearest).
    pub kernels: Option<&'a Path>,
    /// schedulers.toml (None: the nearest).
    pub schedulers: Option<&'a Path>,
}

impl Manifests<'_> {
    /// Loads and validates both (the given ones must exist), so a broken
    /// manifest is reported before anything else happens.
    pub fn validate(&self) -> anyhow::Result<()> {
        sched::registry(self.schedulers)?;
        kernel::kernels_toml_at(self.kernels, ktstr_kernel::KERNEL_ORG_MIRROR)?;
        Ok(())
    }
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let manifests = Manifests {
        kernels: cli.kernels_toml.as_deref(),
        schedulers: cli.schedulers_toml.as_deref(),
    };
    match cli.command {
        Command::Kernel(cmd) => kernel::run(cmd, cli.kernels_toml.as_deref()),
        Command::Run(args) => run::run(args, manifests),
        Command::Gauntlet(args) => gauntlet::run(args, manifests),
        Command::Stats(args) => stats::run(args),
        Command::Sched(cmd) => sched::run(cmd, cli.schedulers_toml.as_deref()),
        Command::Check(args) => scripts::check(&args, manifests),
        Command::Plan(args) => scripts::plan(&args, manifests),
        Command::List(args) => scripts::list(&args),
        Command::Thresholds(args) => thresholds::run(&args, manifests),
        Command::Verifier(args) => verifier::run(&args, manifests),
        Command::Selftest(args) => selftest::run(&args, manifests),
        Command::Defs(args) => scripts::defs(&args),
        Command::Vm(cmd) => vm::run(cmd, cli.kernels_toml.as_deref()),
        Command::Shell(args) => shell::run(args, cli.kernels_toml.as_deref()),
        Command::Repl(args) => repl::run(args, manifests),
        Command::Topo(args) => topo::run(&args),
        Command::Bench(cmd) => bench::run(cmd, cli.kernels_toml.as_deref()),
        Command::Completions(args) => completions::run(&args),
    }
}
