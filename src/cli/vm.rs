//! `ktstr vm probe`: boot a VM and show what the guest saw.

use std::process::ExitCode;
use std::time::Duration;

use ktstr_proto::{Fault, Job, JobSpec};
use ktstr_vmm::session::{self, SessionIo};
use ktstr_vmm::VmOutcome;
use serde_json::{json, Value};

use ktstr_run::vm::{kernel_label, PreparedVm};

use super::guest::{self, VmArgs};
use super::layout_view::{layout_json, layout_lines};

/// VM subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum VmCommand {
    /// Boot a VM with the guest agent, print the CPU layout the guest saw
    /// and compare it with the declared topology (exit 1 if they differ).
    Probe(ProbeArgs),
}

/// Arguments of `vm probe`.
#[derive(Debug, clap::Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub vm: VmArgs,
    /// Seconds before the VM is killed (1 to 30 days).
    #[arg(long, default_value_t = 120, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=super::MAX_TIMEOUT_S))]
    pub timeout: u64,
    /// Make the guest agent fail on purpose (for testing ktstr itself):
    /// kernel-panic, agent-exit, hang or garbage.
    #[arg(long, hide = true, value_parser = parse_fault)]
    pub fault: Option<Fault>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Parses a hidden `--fault` value (kebab-case names of [`Fault`]).
pub fn parse_fault(s: &str) -> Result<Fault, String> {
    serde_json::from_value(Value::String(s.to_string())).map_err(|_| {
        format!("unknown fault `{s}` (kernel-panic, agent-exit, hang, garbage, panic-mid-run)")
    })
}

/// Runs a VM subcommand.
pub fn run(cmd: VmCommand, kernels_toml: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    match cmd {
        VmCommand::Probe(args) => probe(args, kernels_toml),
    }
}

fn probe(args: ProbeArgs, kernels_toml: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let kernel = guest::obtain_kernel(kernels_toml, args.vm.kernel.as_deref())?;
    let job = JobSpec {
        job: Job::Probe,
        fault: args.fault,
    };
    let timeout = Duration::from_secs(args.timeout);
    let cancel = guest::cancel_on_signals()?;
    let vm = guest::prepare(&args.vm, &kernel, job, false, Vec::new(), timeout, &cancel)?;
    let mut io = SessionIo::logged(vm.console_log.clone());
    io.cancel = cancel;
    let outcome = session::run(vm.backend.as_ref(), &vm.spec, io, &mut |_| {})?;
    let differences = outcome
        .report
        .as_ref()
        .map(|r| r.layout.differences(&vm.spec.topology.expected_layout()))
        .unwrap_or_default();
    let ok = outcome.is_clean() && differences.is_empty();
    if args.json {
        let v = probe_json(&vm, &outcome, &differences, &kernel_label(&kernel));
        outln!("{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        print_probe(&vm, &outcome, &differences)?;
    }
    if !outcome.is_clean() {
        errln!("error: {}", outcome.failure_report());
    } else if !differences.is_empty() {
        errln!(
            "error: the guest does not see topology {}:\n  {}",
            vm.spec.topology,
            differences.join("\n  ")
        );
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn probe_json(vm: &PreparedVm, o: &VmOutcome, differences: &[String], kernel: &str) -> Value {
    let mut v = match &o.report {
        Some(r) => layout_json(&r.layout),
        None => json!({}),
    };
    let extra = json!({
        "topology": vm.spec.topology.to_string(),
        "backend": o.backend,
        "probe": vm.probe,
        "kernel": kernel,
        "kernel_release": o.report.as_ref().map(|r| r.kernel_release.clone()),
        "sched_ext_state": o.report.as_ref().and_then(|r| r.sched_ext_state.clone()),
        "mem_total_kib": o.report.as_ref().map(|r| r.mem_total_kib),
        "matches_topology": o.report.is_some() && differences.is_empty(),
        "differences": differences,
        "outcome": o,
        "initramfs": { "key": vm.base.key, "cached": vm.base.cached, "files": vm.base.files },
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut v, extra) {
        map.extend(more);
    }
    v
}

fn print_probe(vm: &PreparedVm, o: &VmOutcome, differences: &[String]) -> std::io::Result<()> {
    let backend = match &vm.probe {
        Some(p) => format!("{} (auto: {})", o.backend, p.reason),
        None => o.backend.to_string(),
    };
    outln!("backend       {backend}")?;
    outln!(
        "topology      {} ({} CPUs)",
        vm.spec.topology,
        vm.spec.topology.cpus()
    )?;
    let Some(r) = &o.report else { return Ok(()) };
    outln!("kernel        {}", r.kernel_release)?;
    outln!(
        "sched_ext     {}",
        r.sched_ext_state.as_deref().unwrap_or("not in this kernel")
    )?;
    for line in layout_lines(&r.layout) {
        outln!("{line}")?;
    }
    outln!(
        "matches       {}",
        if differences.is_empty() { "yes" } else { "NO" }
    )?;
    outln!(
        "boot          agent ready {:.2} s, VM lifetime {:.2} s",
        o.ready_ms.unwrap_or(0.0) / 1000.0,
        o.lifetime_ms / 1000.0
    )?;
    for w in &r.warnings {
        outln!("warning       {w}")?;
    }
    Ok(())
}
