//! Thresholds: the one registry of their names, the rule every layer's
//! values follow, the built-in defaults, and how the layers combine into
//! the thresholds a run is judged by.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Built-in thresholds (native speed).
pub const DEFAULT_THRESHOLDS: [(&str, f64); 2] = [("max_gap_ms", 2000.0), ("max_spread_pct", 15.0)];

/// How much longer gaps are allowed under emulation: TCG emulates every
/// instruction and, on the project's hosts, shares two cores among all
/// vCPUs; 2.5 was chosen from runs of the steady scenarios (see README).
pub const EMULATION_SLOWDOWN: f64 = 2.5;

/// Busy guest CPUs per host core up to which [`EMULATION_SLOWDOWN`] holds
/// as it is; beyond, it grows in proportion. Measured under TCG on two host
/// cores with every vCPU spinning: the longest gap was 99 ms at 4 busy
/// vCPUs per core, 377 ms at 8 and 859 ms at 16, against a threshold of
/// 5,000 ms (README).
pub const EMULATION_BUSY_PER_CORE: f64 = 8.0;

/// The names of every threshold the verdict reads.
pub fn threshold_names() -> Vec<&'static str> {
    DEFAULT_THRESHOLDS.iter().map(|(k, _)| *k).collect()
}

/// Why `value` cannot be threshold `name`, if it cannot: the one rule a
/// script's `threshold(...)`, `--threshold` and schedulers.toml share.
pub fn check_threshold(name: &str, value: f64) -> Result<(), String> {
    let known = threshold_names();
    if !known.contains(&name) {
        return Err(format!(
            "unknown threshold `{name}` (known: {})",
            known.join(", ")
        ));
    }
    if !value.is_finite() || value < 0.0 {
        return Err(format!(
            "threshold `{name}`: {value} is not a finite number >= 0"
        ));
    }
    Ok(())
}

/// How fast the guest runs relative to hardware.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speed {
    /// Hardware virtualization (KVM): native speed.
    Hardware,
    /// Full emulation (QEMU TCG), with this many busy guest CPUs per host
    /// core.
    Emulated {
        /// Busy vCPUs (of this VM and the others running beside it) per
        /// host core.
        busy_per_core: f64,
    },
}

impl Speed {
    /// The factor the built-in time thresholds are multiplied by: 1 on
    /// hardware; under emulation [`EMULATION_SLOWDOWN`], growing with the
    /// share of the host each busy vCPU gets once there are more than
    /// [`EMULATION_BUSY_PER_CORE`] per core.
    pub fn slowdown(self) -> f64 {
        match self {
            Speed::Hardware => 1.0,
            Speed::Emulated { busy_per_core } => {
                EMULATION_SLOWDOWN * (busy_per_core / EMULATION_BUSY_PER_CORE).max(1.0)
            }
        }
    }
}

/// The layers over the built-in defaults, lowest first; each names only
/// the thresholds it sets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Layers<'a> {
    /// The scheduler's (schedulers.toml).
    pub scheduler: Option<&'a BTreeMap<String, f64>>,
    /// The scenario's (`threshold(...)` in the script).
    pub scenario: Option<&'a BTreeMap<String, f64>>,
    /// The command line's (`--threshold KEY=VALUE`), in order.
    pub command_line: &'a [(String, f64)],
}

/// The thresholds a run is judged by: the built-in defaults (time
/// thresholds scaled by `speed`), then the scheduler's, the scenario's
/// and the command line's values, each over the one before. Only the
/// built-in gap is scaled: values a layer sets are used as written.
pub fn in_force(layers: &Layers, speed: Speed) -> BTreeMap<String, f64> {
    let mut t: BTreeMap<String, f64> = DEFAULT_THRESHOLDS
        .iter()
        .map(|(k, v)| (k.to_string(), *v))
        .collect();
    if let Some(gap) = t.get_mut("max_gap_ms") {
        *gap *= speed.slowdown();
    }
    for layer in [layers.scheduler, layers.scenario].into_iter().flatten() {
        t.extend(layer.iter().map(|(k, v)| (k.clone(), *v)));
    }
    t.extend(layers.command_line.iter().cloned());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order_and_only_the_default_gap_is_scaled() {
        let sched = BTreeMap::from([("max_spread_pct".to_string(), 20.0)]);
        let scen = BTreeMap::from([("max_gap_ms".to_string(), 3000.0)]);
        let none = Layers {
            scheduler: Some(&sched),
            ..Layers::default()
        };
        let light = Speed::Emulated { busy_per_core: 2.0 };
        let t = in_force(&none, light);
        assert_eq!(t["max_gap_ms"], 5000.0);
        assert_eq!(t["max_spread_pct"], 20.0);
        let cli = [("max_spread_pct".to_string(), 30.0)];
        let all = Layers {
            scheduler: Some(&sched),
            scenario: Some(&scen),
            command_line: &cli,
        };
        let t = in_force(&all, light);
        assert_eq!((t["max_gap_ms"], t["max_spread_pct"]), (3000.0, 30.0));
        assert_eq!(
            in_force(&Layers::default(), Speed::Hardware)["max_gap_ms"],
            2000.0
        );
    }

    #[test]
    fn the_rule_refuses_unknown_names_and_unusable_values() {
        assert!(check_threshold("max_gap_ms", 1.0).is_ok());
        assert!(check_threshold("max_gap_msx", 1.0)
            .unwrap_err()
            .contains("unknown"));
        assert!(check_threshold("max_gap_ms", f64::NAN).is_err());
        assert!(check_threshold("max_gap_ms", -1.0).is_err());
    }
}
