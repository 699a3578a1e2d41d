//! The human and JSON output of one job: its line, and on anything but a
//! pass the reasons, a stats block and the sidecar's path.

use ktstr_plan::verdict::Outcome;
use ktstr_run::{JobResult, Telemetry};
use serde_json::json;

/// The job as `--json` prints it.
pub fn to_json(r: &JobResult) -> serde_json::Value {
    let mut v = json!({
        "job": r.label, "seconds": r.seconds,
        "verdict": r.verdict, "sidecar": r.sidecar,
    });
    if r.repetition.of > 1 {
        v["repeat"] = json!({"run": r.repetition.index, "of": r.repetition.of});
    }
    v
}

/// The stats block: totals, then one line per cgroup.
pub fn stats_lines(t: &Telemetry) -> Vec<String> {
    let workers = &t.workers;
    let mut cpus: Vec<u32> = workers.iter().flat_map(|w| w.cpus_used.clone()).collect();
    cpus.sort_unstable();
    cpus.dedup();
    let migrations: u64 = workers.iter().map(|w| w.migrations).sum();
    let worst_gap = workers.iter().map(|w| w.max_gap_ms).fold(0.0, f64::max);
    let mut lines = vec![format!(
        "workers {}  cpus {}  migrations {migrations}  worst gap {worst_gap:.0} ms",
        workers.len(),
        ktstr_topology::cpulist::format(&cpus)
    )];
    let mut names: Vec<&str> = workers.iter().map(|w| w.cgroup.as_str()).collect();
    names.dedup();
    for name in names {
        let ws: Vec<_> = workers.iter().filter(|w| w.cgroup == name).collect();
        let it: u64 = ws.iter().map(|w| w.iterations).sum();
        let cpu: f64 = ws.iter().map(|w| w.cpu_time_ms).sum();
        let gap = ws.iter().map(|w| w.max_gap_ms).fold(0.0, f64::max);
        lines.push(format!(
            "  {name}: {} workers, {it} iterations, {cpu:.0} ms CPU, worst gap {gap:.0} ms",
            ws.len()
        ));
    }
    lines
}

/// One line per job; on anything but a pass, the reasons, the stats
/// block and the sidecar's path.
pub fn print_result(r: &JobResult) -> std::io::Result<()> {
    let run = match r.repetition {
        rep if rep.of > 1 => format!(" (run {}/{})", rep.index, rep.of),
        _ => String::new(),
    };
    outln!(
        "{} [{:>5.1}s] {}{run}",
        r.verdict.outcome.label(),
        r.seconds,
        r.label
    )?;
    for note in &r.verdict.notes {
        outln!("    note: {note}")?;
    }
    if r.verdict.outcome == Outcome::Pass {
        return Ok(());
    }
    for reason in &r.verdict.reasons {
        outln!("    {}", reason.replace('\n', "\n    "))?;
    }
    if r.vm.is_some() {
        for s in stats_lines(&r.telemetry) {
            outln!("    {s}")?;
        }
    }
    if let Some(p) = &r.sidecar {
        outln!("    sidecar: {}", p.display())?;
    }
    Ok(())
}
