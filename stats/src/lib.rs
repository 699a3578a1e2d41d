//! ktstr's stats layer. Every job's sidecar becomes rows of six tables
//! (jobs, cgroups, workers, progress, monitor, selftests) written as a Parquet dataset per
//! run; datasets merge across shards and machines; `compare` tells a
//! change from noise per cell and metric (Mann-Whitney with
//! Benjamini-Hochberg, gates and power); `noise` measures run-to-run
//! spread; `report` draws a self-contained HTML page. Only the CLI links
//! this crate: Polars stays out of the engine, the VMM and the guest.

pub mod compare;
pub mod dataset;
pub mod derive;
pub mod error;
pub mod inference;
pub mod metrics;
pub mod noise;
pub mod observations;
pub mod report;
pub mod runs;
pub mod select;
pub mod selftests;
pub mod summary;
pub mod tables;

pub use compare::{compare, Finding, Row};
pub use dataset::Dataset;
pub use error::StatsError;
pub use tables::Tables;
