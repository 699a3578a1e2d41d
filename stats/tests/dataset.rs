//! Datasets from real sidecars (a gauntlet run's, in tests/data/run):
//! import, read back, merge of shards equal to the whole, and clear
//! errors naming the file for corrupt Parquet, another schema and
//! foreign sidecars.

use std::path::{Path, PathBuf};

use ktstr_stats::{Dataset, StatsError};
use polars::prelude::*;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/run")
}

/// The fixture imported into a fresh directory.
fn imported(dir: &Path) -> Dataset {
    let tables = Dataset::tables_of_sidecars(&fixture()).expect("tables");
    Dataset::write(dir, tables).expect("written")
}

/// `df` sorted by every column that identifies a row.
fn sorted(df: &DataFrame, by: &[&str]) -> DataFrame {
    df.clone()
        .lazy()
        .sort(by.to_vec(), SortMultipleOptions::default())
        .collect()
        .unwrap()
}

#[test]
fn sidecars_become_five_tables_that_read_back_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let d = imported(tmp.path());
    let t = &d.tables;
    assert_eq!(t.jobs.height(), 4, "gauntlet.json is not a job");
    let workers: usize = t
        .jobs
        .column("workers")
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .flatten()
        .map(|n| n as usize)
        .sum();
    assert_eq!(t.workers.height(), workers);
    assert!(t.progress.height() > t.workers.height());
    for column in [
        "scenario",
        "preset",
        "scheduler",
        "throughput",
        "wake_p99_us",
        "spread_pct",
        "ready_ms",
    ] {
        assert!(t.jobs.column(column).is_ok(), "jobs has no {column}");
    }
    // Spinners never sleep: no wake latency (null), not 0 µs.
    let spin = t
        .workers
        .clone()
        .lazy()
        .filter(col("cgroup").eq(lit("spin")))
        .collect()
        .unwrap();
    assert!(spin.height() > 0);
    assert_eq!(
        spin.column("wake_p99_us").unwrap().null_count(),
        spin.height()
    );
    let again = Dataset::open(tmp.path()).expect("opened");
    for name in ktstr_stats::tables::TABLES {
        assert!(
            again
                .tables
                .get(name)
                .unwrap()
                .equals_missing(d.tables.get(name).unwrap()),
            "{name}"
        );
    }
    assert_eq!(again.manifest.runs, ["1796173617-29225"]);
}

#[test]
fn shards_merge_to_the_whole_and_a_job_twice_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = imported(&tmp.path().join("whole"));
    let mut shards = Vec::new();
    for (i, names) in [
        ["steady-1n2l2c1t-eevdf", "wakeups-1n2l2c1t-scx_simple"],
        ["steady-1n2l2c1t-scx_simple", "wakeups-1n2l2c1t-eevdf"],
    ]
    .iter()
    .enumerate()
    {
        let dir = tmp.path().join(format!("shard{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        for n in names {
            std::fs::copy(
                fixture().join(format!("{n}.json")),
                dir.join(format!("{n}.json")),
            )
            .unwrap();
        }
        let tables = Dataset::tables_of_sidecars(&dir).unwrap();
        shards.push(Dataset::write(&dir.join("stats"), tables).unwrap());
    }
    let merged = Dataset::merge(&shards).expect("merged");
    let keys = [
        ("jobs", vec!["job", "repetition"]),
        ("cgroups", vec!["job", "repetition", "cgroup"]),
        ("workers", vec!["job", "repetition", "cgroup", "index"]),
        (
            "progress",
            vec!["job", "repetition", "cgroup", "index", "at_ms"],
        ),
    ];
    for (name, by) in keys {
        let (a, b) = (merged.get(name).unwrap(), whole.tables.get(name).unwrap());
        assert!(
            sorted(a, &by).equals_missing(&sorted(b, &by)),
            "{name} differs"
        );
    }
    let twice = Dataset::merge(&[shards[0].clone(), shards[0].clone()])
        .unwrap_err()
        .to_string();
    assert!(
        twice.contains("is already in an earlier dataset"),
        "{twice}"
    );
}

/// The error of opening `dir` after `spoil` did its damage.
fn spoiled(spoil: impl Fn(&Path)) -> String {
    let tmp = tempfile::tempdir().unwrap();
    imported(tmp.path());
    spoil(tmp.path());
    match Dataset::open(tmp.path()) {
        Ok(_) => "opened".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn corrupt_truncated_or_foreign_files_are_clear_errors_naming_the_file() {
    let workers = |d: &Path| d.join("workers.parquet");
    let e = spoiled(|d| {
        let bytes = std::fs::read(workers(d)).unwrap();
        std::fs::write(workers(d), &bytes[..bytes.len() / 2]).unwrap();
    });
    assert!(
        e.contains("workers.parquet: not a readable Parquet table"),
        "{e}"
    );
    let e =
        spoiled(|d| std::fs::write(workers(d), b"PAR1 this is not parquet at all PAR1").unwrap());
    assert!(
        e.contains("workers.parquet: not a readable Parquet table"),
        "{e}"
    );
    let e = spoiled(|d| std::fs::remove_file(workers(d)).unwrap());
    assert!(e.contains("workers.parquet: No such file"), "{e}");
    // Bytes flipped all over the file: an error naming it, never a panic.
    for step in [7usize, 13, 101, 997] {
        let e = spoiled(|d| {
            let mut bytes = std::fs::read(workers(d)).unwrap();
            for i in (0..bytes.len()).step_by(step) {
                bytes[i] ^= 0x5a;
            }
            std::fs::write(workers(d), bytes).unwrap();
        });
        assert!(e.contains("workers.parquet"), "step {step}: {e}");
    }
    // Another table in the place of this one: its columns do not match.
    let e = spoiled(|d| {
        std::fs::copy(d.join("jobs.parquet"), workers(d))
            .map(drop)
            .unwrap()
    });
    assert!(
        e.contains("workers.parquet: the workers table has columns"),
        "{e}"
    );
    let e = spoiled(|d| {
        let m = d.join("dataset.json");
        let text = std::fs::read_to_string(&m)
            .unwrap()
            .replace("\"schema\": 3", "\"schema\": 9");
        std::fs::write(m, text).unwrap();
    });
    assert!(
        e.contains("dataset.json: dataset schema 9, but this ktstr reads schema 3"),
        "{e}"
    );
}

#[test]
fn a_sidecar_of_another_schema_is_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture().join("steady-1n2l2c1t-eevdf.json");
    let text = std::fs::read_to_string(src)
        .unwrap()
        .replacen("\"schema\": 1", "\"schema\": 2", 1);
    std::fs::write(tmp.path().join("old.json"), text).unwrap();
    let e = Dataset::tables_of_sidecars(tmp.path()).unwrap_err();
    assert!(matches!(e, StatsError::Sidecar(_)));
    let e = e.to_string();
    assert!(
        e.contains("old.json: sidecar schema 2, but this ktstr reads schema 1"),
        "{e}"
    );
    let empty = tempfile::tempdir().unwrap();
    let e = Dataset::tables_of_sidecars(empty.path())
        .unwrap_err()
        .to_string();
    assert!(e.contains("no sidecars"), "{e}");
}

#[test]
fn the_monitors_samples_become_a_long_table_per_cpu() {
    use ktstr_plan::monitor::{CpuSample, MonitorReport, MonitorSample};
    let path = std::fs::read_dir(fixture())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "json") && !p.ends_with("gauntlet.json"))
        .unwrap();
    let mut s = ktstr_run::Sidecar::read(&path).unwrap();
    let cpu = |nr: u32, pid: i32| CpuSample {
        nr_running: nr,
        scx_nr_running: None,
        local_dsq: None,
        clock_ns: 5,
        curr_pid: pid,
        curr_comm: "w".into(),
    };
    s.vm.monitor = Some(MonitorReport {
        period_ms: 100,
        samples: vec![
            MonitorSample {
                at_ms: 0,
                cpus: vec![cpu(1, 7), cpu(2, 8)],
            },
            MonitorSample {
                at_ms: 100,
                cpus: vec![cpu(3, 9), cpu(0, 0)],
            },
        ],
        ..MonitorReport::default()
    });
    let tables = ktstr_stats::tables::Tables::from_sidecars(&[s]).unwrap();
    let m = &tables.monitor;
    assert_eq!(m.height(), 4);
    let nr: Vec<u32> = m
        .column("nr_running")
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(nr, [1, 2, 3, 0]);
    let cpus: Vec<u32> = m
        .column("cpu")
        .unwrap()
        .u32()
        .unwrap()
        .iter()
        .flatten()
        .collect();
    assert_eq!(cpus, [0, 1, 0, 1]);
    // It survives the round trip through Parquet.
    let tmp = tempfile::tempdir().unwrap();
    Dataset::write(tmp.path(), tables.clone()).unwrap();
    let again = Dataset::open(tmp.path()).unwrap();
    assert!(again.tables.monitor.equals_missing(&tables.monitor));
}
