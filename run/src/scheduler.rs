//! The scheduler of a plan job: which binary goes into the guest, and how
//! the agent launches it (arguments, attach timeout, `enable_cpu`).
//!
//! Binaries: the kernel cache entry's sample schedulers first, then a
//! path, one installed with `ktstr sched install`, or a program on PATH.
//! Settings: the command line over the script over schedulers.toml.

use ktstr_kernel::BootKernel;
use ktstr_plan::SchedulerSpec;
use ktstr_proto::SchedulerLaunch;
use ktstr_sched::SchedulersToml;
use ktstr_topology::Topology;
use ktstr_vmm::initramfs::GuestFile;

/// Seconds a scheduler may take to attach unless schedulers.toml or the
/// request says otherwise (production schedulers need up to ~25 s under
/// TCG).
pub const ATTACH_TIMEOUT_S: u64 = 90;

/// The binary to ship and how the guest launches it; `Err` says why the
/// scheduler cannot run (not found, not a program, `enable_cpu` outside
/// the topology).
pub fn resolve(
    s: &SchedulerSpec,
    kernel: &BootKernel,
    registry: &SchedulersToml,
    attach_timeout: Option<u64>,
    topology: Topology,
) -> Result<(GuestFile, SchedulerLaunch), String> {
    let from_cache = match kernel {
        BootKernel::Entry(e) => e.scheduler(&s.name),
        BootKernel::Image { .. } => None,
    };
    let host = match from_cache {
        Some(p) => p,
        None => {
            ktstr_sched::on_host(&s.name).map_err(|why| format!("scheduler `{}` {why}", s.name))?
        }
    };
    let base = host
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let entry = registry.entry(&s.name);
    let args = match (&s.args, entry) {
        (a, Some(e)) if a.is_empty() => e.args.clone(),
        (a, _) => a.clone(),
    };
    let attach_timeout_s = attach_timeout
        .or_else(|| entry.and_then(|e| e.attach_timeout_s))
        .unwrap_or(ATTACH_TIMEOUT_S);
    let enable_cpu = entry.and_then(|e| e.enable_cpu);
    if let Some(cpu) = enable_cpu.filter(|&c| c >= topology.cpus()) {
        return Err(format!(
            "scheduler.{}.enable_cpu = {cpu} in schedulers.toml, but {topology} has CPUs 0-{}",
            s.name,
            topology.cpus() - 1
        ));
    }
    let guest_path = format!("/sched/{base}");
    Ok((
        GuestFile {
            host,
            guest: guest_path.clone(),
        },
        SchedulerLaunch {
            path: guest_path,
            ops_name: base.trim_start_matches("scx_").to_string(),
            args,
            attach_timeout_s,
            enable_cpu,
        },
    ))
}
