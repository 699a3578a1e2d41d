//! A dataset on disk: the five tables as Parquet files beside a small
//! manifest (`dataset.json`: schema version, the runs it holds, row
//! counts). Written for every run (`<run dir>/stats/`), made from loose
//! sidecars by `import`, unioned by `merge`; every table read back is
//! checked against the schema this ktstr writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_io::prelude::{ParquetReader, ParquetWriter, SerReader};
use serde::{Deserialize, Serialize};

use ktstr_run::Sidecar;

use crate::error::{io, StatsError};
use crate::tables::{Tables, JOB_ID, TABLES};

/// The dataset schema this ktstr writes and reads (2: the monitor table;
/// 3: the selftests table).
pub const DATASET_SCHEMA: u32 = 3;

/// The manifest's file name.
pub const MANIFEST: &str = "dataset.json";

/// What a dataset holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`DATASET_SCHEMA`] when written.
    pub schema: u32,
    /// The runs whose jobs it holds.
    pub runs: Vec<String>,
    /// Rows per table.
    pub rows: BTreeMap<String, usize>,
    /// The ktstr that wrote it.
    pub ktstr: String,
}

/// A dataset read into memory.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Its directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its tables.
    pub tables: Tables,
}

/// File names of a run directory that are not sidecars.
const NOT_SIDECARS: [&str; 2] = ["gauntlet.json", MANIFEST];

impl Dataset {
    /// Writes `tables` as a dataset into `dir` (created if need be).
    pub fn write(dir: &Path, mut tables: Tables) -> Result<Dataset, StatsError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut rows = BTreeMap::new();
        for name in TABLES {
            let path = dir.join(format!("{name}.parquet"));
            let df = match name {
                "jobs" => &mut tables.jobs,
                "cgroups" => &mut tables.cgroups,
                "workers" => &mut tables.workers,
                "progress" => &mut tables.progress,
                "monitor" => &mut tables.monitor,
                _ => &mut tables.selftests,
            };
            rows.insert(name.to_string(), df.height());
            let file = File::create(&path).map_err(io(&path))?;
            ParquetWriter::new(file)
                .finish(df)
                .map_err(|e| StatsError::Parquet {
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
        }
        let manifest = Manifest {
            schema: DATASET_SCHEMA,
            runs: distinct(&tables.jobs, "run_id")?,
            rows,
            ktstr: env!("CARGO_PKG_VERSION").to_string(),
        };
        let path = dir.join(MANIFEST);
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| StatsError::Schema {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        std::fs::write(&path, json).map_err(io(&path))?;
        Ok(Dataset {
            dir: dir.to_path_buf(),
            manifest,
            tables,
        })
    }

    /// Reads the dataset in `dir`: its manifest (schema checked), then each
    /// table (schema and row count checked).
    pub fn open(dir: &Path) -> Result<Dataset, StatsError> {
        let manifest = read_manifest(dir)?;
        let expected = Tables::from_sidecars(&[])?;
        let mut read = BTreeMap::new();
        for name in TABLES {
            let path = dir.join(format!("{name}.parquet"));
            let df = read_table(&path)?;
            let want = expected.get(name).map(|d| d.schema().clone());
            if want.as_ref() != Some(df.schema()) {
                return Err(StatsError::Schema {
                    path,
                    detail: format!(
                        "the {name} table has columns {}, but this ktstr writes {}",
                        describe(df.schema()),
                        want.map(|s| describe(&s)).unwrap_or_default()
                    ),
                });
            }
            if manifest.rows.get(name) != Some(&df.height()) {
                return Err(StatsError::Schema {
                    path,
                    detail: format!(
                        "{} rows, but {MANIFEST} says {:?}",
                        df.height(),
                        manifest.rows.get(name)
                    ),
                });
            }
            read.insert(name, df);
        }
        let mut take = |n: &str| read.remove(n).unwrap_or_default();
        let tables = Tables {
            jobs: take("jobs"),
            cgroups: take("cgroups"),
            workers: take("workers"),
            progress: take("progress"),
            monitor: take("monitor"),
            selftests: take("selftests"),
        };
        Ok(Dataset {
            dir: dir.to_path_buf(),
            manifest,
            tables,
        })
    }

    /// The tables of the sidecars under `dir` (any depth; the gauntlet's
    /// report and datasets are skipped). A file that is not a sidecar of
    /// this schema is an error naming it.
    pub fn tables_of_sidecars(dir: &Path) -> Result<Tables, StatsError> {
        let mut files = Vec::new();
        sidecar_files(dir, &mut files)?;
        files.sort();
        if files.is_empty() {
            return Err(StatsError::Empty {
                path: dir.to_path_buf(),
                what: "no sidecars (*.json) here".into(),
            });
        }
        let sidecars: Vec<Sidecar> = files
            .iter()
            .map(|f| Sidecar::read(f))
            .collect::<Result<_, _>>()?;
        Tables::from_sidecars(&sidecars)
    }

    /// The union of `datasets`: they must share this schema and hold no
    /// job twice.
    pub fn merge(datasets: &[Dataset]) -> Result<Tables, StatsError> {
        let Some(first) = datasets.first() else {
            return Err(StatsError::BadArgument {
                what: "merge".into(),
                why: "no datasets given".into(),
            });
        };
        let mut out = first.tables.clone();
        let mut seen = job_ids(&first.tables.jobs)?;
        for d in &datasets[1..] {
            for name in TABLES {
                let (a, b) = (first.tables.get(name), d.tables.get(name));
                if a.map(|t| t.schema()) != b.map(|t| t.schema()) {
                    return Err(StatsError::Schema {
                        path: d.dir.clone(),
                        detail: format!(
                            "its {name} table does not match {}'s; refusing to merge",
                            first.dir.display()
                        ),
                    });
                }
            }
            for id in job_ids(&d.tables.jobs)? {
                if !seen.insert(id.clone()) {
                    return Err(StatsError::Schema {
                        path: d.dir.clone(),
                        detail: format!("job {id} is already in an earlier dataset"),
                    });
                }
            }
            use crate::error::frame;
            out.jobs
                .vstack_mut(&d.tables.jobs)
                .map_err(frame("merging jobs"))?;
            out.cgroups
                .vstack_mut(&d.tables.cgroups)
                .map_err(frame("merging cgroups"))?;
            out.workers
                .vstack_mut(&d.tables.workers)
                .map_err(frame("merging workers"))?;
            out.progress
                .vstack_mut(&d.tables.progress)
                .map_err(frame("merging progress"))?;
            out.monitor
                .vstack_mut(&d.tables.monitor)
                .map_err(frame("merging monitor"))?;
            out.selftests
                .vstack_mut(&d.tables.selftests)
                .map_err(frame("merging selftests"))?;
        }
        Ok(out)
    }
}

/// Reads and checks `dir`'s manifest.
fn read_manifest(dir: &Path) -> Result<Manifest, StatsError> {
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    let schema_error = |detail: String| StatsError::Schema {
        path: path.clone(),
        detail,
    };
    let head: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| schema_error(format!("not a dataset manifest: {e}")))?;
    match head.get("schema").and_then(|s| s.as_u64()) {
        Some(s) if s == u64::from(DATASET_SCHEMA) => {}
        other => {
            return Err(schema_error(format!(
                "dataset schema {}, but this ktstr reads schema {DATASET_SCHEMA}",
                other.map_or("none".to_string(), |s| s.to_string())
            )))
        }
    }
    serde_json::from_value(head).map_err(|e| schema_error(format!("not a dataset manifest: {e}")))
}

/// Reads one Parquet table; any failure (and any panic inside the reader
/// on a corrupt file) is an error naming the file.
fn read_table(path: &Path) -> Result<DataFrame, StatsError> {
    let file = File::open(path).map_err(io(path))?;
    let parquet = |reason: String| StatsError::Parquet {
        path: path.to_path_buf(),
        reason,
    };
    let read = std::panic::catch_unwind(|| ParquetReader::new(file).finish());
    match read {
        Ok(Ok(df)) => Ok(df),
        Ok(Err(e)) => Err(parquet(e.to_string())),
        Err(_) => Err(parquet("the reader gave up on its contents".into())),
    }
}

/// `name: type` of each column.
fn describe(schema: &Schema) -> String {
    schema
        .iter()
        .map(|(n, t)| format!("{n}: {t}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The distinct values of string column `name`, sorted.
fn distinct(df: &DataFrame, name: &str) -> Result<Vec<String>, StatsError> {
    let c = df
        .column(name)
        .and_then(|c| c.str().cloned())
        .map_err(crate::error::frame("reading run ids"))?;
    let set: BTreeSet<String> = c.iter().flatten().map(str::to_string).collect();
    Ok(set.into_iter().collect())
}

/// Each job's id (`run_id/job/kernel/repetition`).
fn job_ids(jobs: &DataFrame) -> Result<BTreeSet<String>, StatsError> {
    let f = crate::error::frame("reading job ids");
    let strs: Vec<_> = JOB_ID[..3]
        .iter()
        .map(|c| jobs.column(c).and_then(|c| c.str().cloned()))
        .collect::<Result<_, _>>()
        .map_err(&f)?;
    let reps = jobs
        .column("repetition")
        .and_then(|c| c.u32().cloned())
        .map_err(&f)?;
    Ok((0..jobs.height())
        .map(|i| {
            let part = |k: usize| strs[k].get(i).unwrap_or("").to_string();
            format!(
                "{}/{}/{}/run{}",
                part(0),
                part(1),
                part(2),
                reps.get(i).unwrap_or(0)
            )
        })
        .collect())
}

/// Every sidecar file under `dir`, depth first.
fn sidecar_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), StatsError> {
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            if !path.join(MANIFEST).exists() {
                sidecar_files(&path, out)?;
            }
        } else if name.ends_with(".json") && !NOT_SIDECARS.contains(&name.as_ref()) {
            out.push(path);
        }
    }
    Ok(())
}
