//! `ktstr bench boot`: how long a ktstr VM takes to boot to its agent and
//! to end, beside a bare boot of the same kernel on the same backend to a
//! busybox init that powers off at once.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ktstr_proto::{Job, JobSpec};
use ktstr_vmm::initramfs::cpio::CpioWriter;
use ktstr_vmm::session::{self, SessionIo};
use ktstr_vmm::VmOutcome;
use serde_json::json;

use super::guest::{self, VmArgs};

/// Bench subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Boot time: ktstr VM (to agent ready, and whole lifetime) against a
    /// bare boot of the same kernel on the same backend, same run.
    Boot(BootArgs),
}

/// Arguments of `bench boot`.
#[derive(Debug, clap::Args)]
pub struct BootArgs {
    #[command(flatten)]
    pub vm: VmArgs,
    /// Runs of each kind (interleaved).
    #[arg(short, default_value_t = 5, value_name = "N")]
    pub n: usize,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    /// Measure a restore from a snapshot of the booted guest against a
    /// cold boot, both to agent ready.
    #[arg(long)]
    pub snapshot: bool,
    /// With --snapshot: the topologies to measure, comma-separated
    /// (default: --topology).
    #[arg(long, value_delimiter = ',', value_name = "T,T,...")]
    pub sweep: Vec<ktstr_topology::Topology>,
}

/// Runs a bench subcommand.
pub fn run(cmd: BenchCommand, kernels_toml: Option<&Path>) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Boot(args) => boot(args, kernels_toml),
    }
}

/// min and median of `xs` (which must not be empty).
pub(super) fn min_median(xs: &mut [f64]) -> (f64, f64) {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    let median = if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    };
    (xs[0], median)
}

fn boot(args: BootArgs, kernels_toml: Option<&Path>) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.n >= 1, "-n must be at least 1");
    let kernel = guest::obtain_kernel(kernels_toml, args.vm.kernel.as_deref())?;
    if args.snapshot {
        return super::bench_snapshot::run(&args, &kernel);
    }
    anyhow::ensure!(args.sweep.is_empty(), "--sweep goes with --snapshot");
    let mut args = args;
    args.vm.no_snapshot = true;
    let job = JobSpec {
        job: Job::Probe,
        fault: None,
    };
    let timeout = Duration::from_secs(120);
    let cancel = guest::cancel_on_signals()?;
    let vm = guest::prepare(&args.vm, &kernel, job, false, Vec::new(), timeout, &cancel)?;
    let mut bare_spec = vm.spec.clone();
    bare_spec.initramfs = vm.spec.work_dir.join("bare-initramfs");
    std::fs::write(
        &bare_spec.initramfs,
        bare_initramfs(&ktstr_run::vm::busybox()?)?,
    )?;
    let bar = ProgressBar::new(2 * args.n as u64).with_style(
        ProgressStyle::with_template("boot bench [{bar:30}] {pos}/{len} {msg}").expect("template"),
    );
    let (mut ready, mut life, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.n {
        for (spec, is_bare) in [(&vm.spec, false), (&bare_spec, true)] {
            let mut io = SessionIo::logged(vm.spec.work_dir.join(format!("console-{i}.log")));
            io.cancel = cancel.clone();
            let o = session::run(vm.backend.as_ref(), spec, io, &mut |_| {})?;
            bar.inc(1);
            if is_bare {
                anyhow::ensure!(
                    o.console_tail
                        .iter()
                        .any(|l| l.contains("reboot: Power down")),
                    "the bare VM did not power off: {}",
                    o.failure_report()
                );
                bare.push(o.lifetime_ms);
            } else {
                check_clean(&o)?;
                ready.push(o.ready_ms.unwrap_or(0.0));
                life.push(o.lifetime_ms);
            }
        }
    }
    bar.finish_and_clear();
    let (r, l, b) = (
        min_median(&mut ready),
        min_median(&mut life),
        min_median(&mut bare),
    );
    let figures = Figures {
        ready: r,
        lifetime: l,
        bare: b,
    };
    print_figures(&args, &vm, &ktstr_run::vm::kernel_label(&kernel), &figures)?;
    Ok(ExitCode::SUCCESS)
}

/// (min, median) in milliseconds of each measured quantity.
struct Figures {
    ready: (f64, f64),
    lifetime: (f64, f64),
    bare: (f64, f64),
}

fn print_figures(
    args: &BootArgs,
    vm: &ktstr_run::vm::PreparedVm,
    kernel: &str,
    f: &Figures,
) -> anyhow::Result<()> {
    let ratio = f.lifetime.1 / f.bare.1;
    if args.json {
        let v = json!({
            "backend": vm.backend.kind(),
            "topology": vm.spec.topology.to_string(),
            "kernel": kernel,
            "runs": args.n,
            "ktstr_ready_ms": {"min": f.ready.0, "median": f.ready.1},
            "ktstr_lifetime_ms": {"min": f.lifetime.0, "median": f.lifetime.1},
            "bare_lifetime_ms": {"min": f.bare.0, "median": f.bare.1},
            "lifetime_ratio": ratio,
        });
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    outln!(
        "boot benchmark: {} backend, {}, {} runs each, kernel {kernel}",
        vm.backend.kind(),
        vm.spec.topology,
        args.n,
    )?;
    outln!("                          min      median")?;
    for (name, (min, med)) in [
        ("ktstr: agent ready", f.ready),
        ("ktstr: VM lifetime", f.lifetime),
        ("bare boot: VM lifetime", f.bare),
    ] {
        outln!("{name:<24} {:>6.3} s {:>7.3} s", min / 1000.0, med / 1000.0)?;
    }
    outln!("lifetime ratio (median)  {ratio:.2}x")?;
    Ok(())
}

pub(super) fn check_clean(o: &VmOutcome) -> anyhow::Result<()> {
    anyhow::ensure!(o.is_clean(), "{}", o.failure_report());
    Ok(())
}

/// A gzip'd initramfs of static busybox whose /init powers off at once.
fn bare_initramfs(busybox: &Path) -> anyhow::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut w = CpioWriter::new(gz);
    w.char_device("/dev/console", 5, 1)?;
    w.file("/bin/busybox", 0o755, &std::fs::read(busybox)?)?;
    w.file(
        "/init",
        0o755,
        b"#!/bin/busybox sh\n/bin/busybox poweroff -f\n",
    )?;
    Ok(w.finish()?.finish()?)
}
