//! `cargo bench -p ktstr-stats`: compare over a dataset of 1,000,000
//! per-worker rows (20,000 jobs of 50 workers: 10 scenarios x 2
//! schedulers x 1,000 repetitions), from opening the Parquet dataset to
//! the findings. Prints the seconds and rows per second (target: under
//! 2 s on the project's 2-core machines).

use std::path::Path;
use std::time::Instant;

use ktstr_run::Sidecar;
use ktstr_stats::compare::{compare_selections, Options};
use ktstr_stats::select::{parse_by, parse_filters};
use ktstr_stats::{metrics, Dataset, Tables};

const JOBS: usize = 20_000;
const WORKERS: usize = 50;

/// A small deterministic generator (no dependency, same data every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `JOBS` sidecars made from a real one, with varied values.
fn sidecars() -> Vec<Sidecar> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/run/wakeups-1n2l2c1t-scx_simple.json");
    let mut template = Sidecar::read(&path).expect("the fixture sidecar");
    let mut worker = template.telemetry.workers[0].clone();
    worker.progress.clear();
    template.telemetry.events.clear();
    let mut rng = Lcg(42);
    (0..JOBS)
        .map(|i| {
            let mut s = template.clone();
            s.plan.name = format!("scenario{}", (i / 2) % 10);
            s.job = format!("{} {} {}", s.plan.name, s.topology, i % 2);
            if let Some(spec) = s.scheduler.as_mut() {
                spec.name = format!("sched{}", i % 2);
            }
            s.run_id = format!("sched{}", i % 2);
            s.repetition.index = (i / 20) as u32 + 1;
            s.repetition.of = (JOBS / 20) as u32;
            s.telemetry.workers = (0..WORKERS)
                .map(|w| {
                    let mut r = worker.clone();
                    r.index = w as u32;
                    r.cgroup = format!("cg{}", w % 5);
                    r.iterations = (1000.0 + 100.0 * rng.next()) as u64;
                    r.cpu_time_ms = 900.0 + 50.0 * rng.next();
                    r.wake_p99_us =
                        500.0 + 200.0 * rng.next() + if i % 2 == 1 { 300.0 } else { 0.0 };
                    r.max_gap_ms = 5.0 + 10.0 * rng.next();
                    r
                })
                .collect();
            s
        })
        .collect()
}

fn main() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let t = Instant::now();
    let all = sidecars();
    let tables = Tables::from_sidecars(&all).expect("tables");
    drop(all);
    let rows = tables.workers.height();
    Dataset::write(dir.path(), tables).expect("written");
    println!(
        "setup: {rows} worker rows built and written in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let d = Dataset::open(dir.path()).expect("opened");
        let by = parse_by(&[]).expect("by");
        let by: Vec<String> = by.into_iter().filter(|c| c != "scheduler").collect();
        let chosen = metrics::chosen(&[]).expect("metrics");
        let opts = Options::new(by, chosen);
        let found = compare_selections(
            (&d.tables, &parse_filters("scheduler=sched0").unwrap()),
            (&d.tables, &parse_filters("scheduler=sched1").unwrap()),
            &opts,
        )
        .expect("compared");
        let secs = t.elapsed().as_secs_f64();
        best = best.min(secs);
        assert!(found
            .iter()
            .any(|r| r.metric == "wake_p99_us" && r.regression));
    }
    println!(
        "compare: {rows} worker rows in {best:.2} s (best of 3), {:.0} rows/s; target under 2 s",
        rows as f64 / best
    );
}
