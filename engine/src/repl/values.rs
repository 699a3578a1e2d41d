//! What an input's value means and how it shows: an op (or an array of
//! them) is carried out at once; maps and arrays print as JSON; handles
//! print what they stand for. Also the maps `stats()` and `sched_state()`
//! return.

use std::sync::Mutex;

use rhai::{Dynamic, Map};

use super::backend::{metric, LiveBackend, Snapshot};
use crate::api::CgroupHandle;
use ktstr_plan::claims::{Scope, METRICS};
use ktstr_plan::live::SchedState;
use ktstr_plan::results::RunResults;
use ktstr_plan::Op;

/// A scheduler in a REPL session: `scheduler("scx_simple", []).start()`.
#[derive(Debug, Clone)]
pub struct SchedulerHandle {
    /// What to start.
    pub spec: ktstr_plan::SchedulerSpec,
}

/// Carries out the value of an input when it is an op or an array of ops
/// (`set_cpuset("a", llc(1))` typed at the prompt); whether it was.
pub fn run_ops(backend: &Mutex<LiveBackend>, value: &Dynamic) -> Result<bool, String> {
    let ops: Vec<Op> = if let Some(op) = value.clone().try_cast::<Op>() {
        vec![op]
    } else if let Some(items) = value.read_lock::<rhai::Array>() {
        if items.is_empty() || !items.iter().all(|v| v.is::<Op>()) {
            return Ok(false);
        }
        items
            .iter()
            .filter_map(|v| v.clone().try_cast::<Op>())
            .collect()
    } else {
        return Ok(false);
    };
    let mut b = backend.lock().unwrap_or_else(|p| p.into_inner());
    for op in ops {
        let shown = super::render::op(&op);
        b.run_op(op)?;
        b.notes.push(format!("{shown}: done"));
    }
    Ok(true)
}

/// The value as the prompt shows it; None for `()`.
pub fn display(v: &Dynamic) -> Option<String> {
    if v.is_unit() {
        return None;
    }
    if let Some(h) = v.clone().try_cast::<CgroupHandle>() {
        let d = &h.def;
        return Some(format!(
            "cgroup {} ({} worker(s), {})",
            d.name,
            d.workers,
            super::render::work(&d.work)
        ));
    }
    if let Some(s) = v.clone().try_cast::<SchedulerHandle>() {
        return Some(format!("scheduler {} {:?}", s.spec.name, s.spec.args));
    }
    if let Some(op) = v.clone().try_cast::<Op>() {
        return Some(super::render::op(&op));
    }
    if v.is_map() || v.is_array() {
        if let Ok(j) = rhai::serde::from_dynamic::<serde_json::Value>(v) {
            return serde_json::to_string_pretty(&j).ok();
        }
    }
    Some(v.to_string())
}

/// The value as JSON (`null` for `()`, text for what JSON cannot hold).
pub fn json(v: &Dynamic) -> serde_json::Value {
    if v.is_unit() {
        return serde_json::Value::Null;
    }
    let plain =
        v.is_map() || v.is_array() || v.is_string() || v.is_int() || v.is_float() || v.is_bool();
    match plain.then(|| rhai::serde::from_dynamic::<serde_json::Value>(v).ok()) {
        Some(Some(j)) => j,
        _ => serde_json::Value::String(display(v).unwrap_or_default()),
    }
}

fn floats(v: impl IntoIterator<Item = u32>) -> Dynamic {
    Dynamic::from_array(v.into_iter().map(|c| Dynamic::from(i64::from(c))).collect())
}

/// One cgroup's numbers so far: every metric claims can name that has a
/// value, its iteration rate, the CPUs it used, may use, and is on now.
pub fn cgroup_stats(snap: &Snapshot, results: &RunResults, name: &str) -> Map {
    let scope = Scope::Cgroup {
        name: name.to_string(),
    };
    let mut m = Map::new();
    for (metric_name, _) in METRICS {
        if let Some(v) = metric(results, &scope, metric_name) {
            m.insert(metric_name.into(), Dynamic::from(v));
        }
    }
    let iterations = metric(results, &scope, "iterations").unwrap_or(0.0);
    if snap.elapsed_s > 0.0 {
        m.insert("rate".into(), Dynamic::from(iterations / snap.elapsed_s));
    }
    let mut used: Vec<u32> = snap
        .workers
        .iter()
        .filter(|w| w.cgroup == name)
        .flat_map(|w| w.cpus_used.iter().copied())
        .collect();
    used.sort_unstable();
    used.dedup();
    m.insert("cpus_used".into(), floats(used));
    if let Some(p) = snap.placement.iter().find(|p| p.cgroup == name) {
        m.insert("cpus_now".into(), floats(p.cpus_now.iter().copied()));
        m.insert("allowed".into(), Dynamic::from(p.allowed.clone()));
    }
    let errors: Vec<Dynamic> = snap
        .workers
        .iter()
        .filter(|w| w.cgroup == name)
        .filter_map(|w| w.error.clone().map(Dynamic::from))
        .collect();
    if !errors.is_empty() {
        m.insert("errors".into(), Dynamic::from_array(errors));
    }
    m
}

/// Every cgroup's numbers, by name, and the seconds since the first
/// cgroup started.
pub fn all_stats(snap: &Snapshot) -> Map {
    let results = RunResults::from_reports(&snap.workers);
    let mut names: Vec<String> = snap.workers.iter().map(|w| w.cgroup.clone()).collect();
    names.extend(snap.placement.iter().map(|p| p.cgroup.clone()));
    names.sort();
    names.dedup();
    let mut m = Map::new();
    for n in names {
        m.insert(
            n.as_str().into(),
            Dynamic::from_map(cgroup_stats(snap, &results, &n)),
        );
    }
    m.insert("elapsed_s".into(), Dynamic::from(snap.elapsed_s));
    m
}

/// `sched_state()`'s map.
pub fn sched_state(s: &SchedState) -> Map {
    let opt = |v: &Option<String>| v.clone().map_or(Dynamic::UNIT, Dynamic::from);
    let mut m = Map::new();
    m.insert("state".into(), Dynamic::from(s.state.clone()));
    m.insert("ops".into(), opt(&s.ops));
    m.insert("running".into(), opt(&s.running));
    m.insert("last_exit".into(), opt(&s.last_exit));
    m
}
