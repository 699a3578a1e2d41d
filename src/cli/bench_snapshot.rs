//! `ktstr bench boot --snapshot`: a cold boot to agent ready against a
//! restore from the snapshot of the same booted guest (loading its RAM
//! included), for each topology of the sweep, interleaved, same run.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use ktstr_kernel::{BootKernel, CacheLayout};
use ktstr_proto::{Job, JobSpec};
use ktstr_run::snapshot::BootMode;
use ktstr_topology::Topology;
use ktstr_vmm::session::{self, SessionIo};
use serde_json::{json, Value};

use super::bench::{check_clean, min_median, BootArgs};
use super::guest;
use super::progress::Progress;

/// One topology's figures, in milliseconds (min, median).
#[derive(Debug)]
struct Row {
    topology: String,
    vcpus: u32,
    runs: usize,
    cold_ready_ms: (f64, f64),
    restore_ready_ms: (f64, f64),
    /// The part of a restore spent loading and checking the snapshot.
    restore_load_ms: (f64, f64),
    /// The snapshot's own boot and save, once.
    snapshot_boot_ms: f64,
    speedup: f64,
}

impl Row {
    fn to_json(&self) -> Value {
        let mm = |(min, median): (f64, f64)| json!({"min": min, "median": median});
        json!({
            "topology": self.topology,
            "vcpus": self.vcpus,
            "runs": self.runs,
            "cold_ready_ms": mm(self.cold_ready_ms),
            "restore_ready_ms": mm(self.restore_ready_ms),
            "restore_load_ms": mm(self.restore_load_ms),
            "snapshot_boot_ms": self.snapshot_boot_ms,
            "speedup": self.speedup,
        })
    }
}

/// Runs the snapshot benchmark over `args.sweep` (or the one topology).
pub fn run(args: &BootArgs, kernel: &BootKernel) -> anyhow::Result<ExitCode> {
    let topologies: Vec<Topology> = if args.sweep.is_empty() {
        vec![args.vm.topology]
    } else {
        args.sweep.clone()
    };
    let bar = ProgressBar::new((topologies.len() * 2 * args.n) as u64).with_style(
        ProgressStyle::with_template("snapshot bench [{bar:30}] {pos}/{len} {msg}")
            .expect("template"),
    );
    let mut rows = Vec::new();
    for t in topologies {
        bar.set_message(t.to_string());
        rows.push(one_topology(args, kernel, t, &bar)?);
    }
    bar.finish_and_clear();
    if args.json {
        let rows: Vec<Value> = rows.iter().map(Row::to_json).collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "snapshot benchmark: {} runs each, kernel {}",
        args.n,
        ktstr_run::vm::kernel_label(kernel)
    )?;
    outln!("topology      vCPUs   cold boot (median)   restore (median)   load part   speedup")?;
    for r in &rows {
        outln!(
            "{:<12} {:>6}   {:>15.3} s   {:>14.3} s   {:>7.3} s   {:>6.1}x",
            r.topology,
            r.vcpus,
            r.cold_ready_ms.1 / 1000.0,
            r.restore_ready_ms.1 / 1000.0,
            r.restore_load_ms.1 / 1000.0,
            r.speedup
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn one_topology(
    args: &BootArgs,
    kernel: &BootKernel,
    topology: Topology,
    bar: &ProgressBar,
) -> anyhow::Result<Row> {
    let mut vm_args = args.vm.clone();
    vm_args.topology = topology;
    vm_args.no_snapshot = true;
    let job = JobSpec {
        job: Job::Probe,
        fault: None,
    };
    let timeout = Duration::from_secs(60 + 3 * u64::from(topology.cpus()));
    let cancel = guest::cancel_on_signals()?;
    let vm = guest::prepare(
        &vm_args,
        kernel,
        job.clone(),
        false,
        Vec::new(),
        timeout,
        &cancel,
    )?;
    let layout = CacheLayout::from_env()?;
    let restore = |spec: &mut ktstr_vmm::VmSpec| -> anyhow::Result<BootMode> {
        let backend = vm.backend.as_ref();
        let source = ktstr_run::snapshot::Source {
            kernel,
            base: &vm.base,
            cancel: Arc::clone(&cancel),
        };
        ktstr_run::snapshot::restore(spec, backend, &source, &job, &layout, &Progress::new())
            .map_err(|why| anyhow::anyhow!("no snapshot: {why}"))
    };
    // Take (or check) the snapshot once, outside the measurements.
    let snapshot_boot_ms = match restore(&mut vm.spec.clone())? {
        BootMode::Restored {
            snapshot_boot_ms, ..
        } => snapshot_boot_ms,
        BootMode::Cold { .. } => 0.0,
    };
    let (mut cold, mut restored, mut load) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..args.n {
        let mut io = SessionIo::logged(vm.spec.work_dir.join(format!("cold-{i}.log")));
        io.cancel = cancel.clone();
        let o = session::run(vm.backend.as_ref(), &vm.spec, io, &mut |_| {})?;
        check_clean(&o)?;
        cold.push(o.ready_ms.unwrap_or(0.0));
        bar.inc(1);
        let start = Instant::now();
        let mut spec = vm.spec.clone();
        restore(&mut spec)?;
        let loaded = start.elapsed().as_secs_f64() * 1000.0;
        let mut io = SessionIo::logged(vm.spec.work_dir.join(format!("restore-{i}.log")));
        io.cancel = cancel.clone();
        let o = session::run(vm.backend.as_ref(), &spec, io, &mut |_| {})?;
        check_clean(&o)?;
        restored.push(loaded + o.ready_ms.unwrap_or(0.0));
        load.push(loaded);
        bar.inc(1);
    }
    let (c, r) = (min_median(&mut cold), min_median(&mut restored));
    Ok(Row {
        topology: topology.to_string(),
        vcpus: topology.cpus(),
        runs: args.n,
        cold_ready_ms: c,
        restore_ready_ms: r,
        restore_load_ms: min_median(&mut load),
        snapshot_boot_ms,
        speedup: c.1 / r.1,
    })
}
