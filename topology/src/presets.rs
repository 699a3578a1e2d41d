//! The gauntlet's named topology presets (x86), their tags, and the
//! default opt-in filter a sweep applies unless told otherwise.

use crate::Topology;

/// Tags a preset (or any topology) can be selected by.
pub const TAGS: [&str; 4] = ["smt", "numa", "odd-llc", "multi-llc"];

/// The default sweep's bounds (as the reference tool's): one NUMA node,
/// at most 12 LLCs, at most 192 CPUs. `--presets all` or a manifest that
/// names presets widens it.
pub const DEFAULT_MAX_NODES: u32 = 1;
/// See [`DEFAULT_MAX_NODES`].
pub const DEFAULT_MAX_LLCS: u32 = 12;
/// See [`DEFAULT_MAX_NODES`].
pub const DEFAULT_MAX_CPUS: u32 = 192;

/// (name, topology) for every preset, smallest first within each family.
pub const PRESETS: [(&str, &str); 24] = [
    ("tiny-1llc", "1n1l4c1t"),
    ("tiny-2llc", "1n2l2c1t"),
    ("odd-3llc", "1n3l3c1t"),
    ("odd-5llc", "1n5l3c1t"),
    ("odd-7llc", "1n7l2c1t"),
    ("smt-2llc", "1n2l2c2t"),
    ("smt-3llc", "1n3l2c2t"),
    ("medium-4llc", "1n4l4c2t"),
    ("medium-8llc", "1n8l4c2t"),
    ("large-4llc", "1n4l16c2t"),
    ("large-8llc", "1n8l8c2t"),
    ("near-max-llc", "1n15l8c2t"),
    ("max-cpu", "1n14l9c2t"),
    ("medium-4llc-nosmt", "1n4l8c1t"),
    ("medium-8llc-nosmt", "1n8l8c1t"),
    ("large-4llc-nosmt", "1n4l32c1t"),
    ("large-8llc-nosmt", "1n8l16c1t"),
    ("near-max-llc-nosmt", "1n15l16c1t"),
    ("max-cpu-nosmt", "1n14l18c1t"),
    ("numa2-4llc", "2n4l4c1t"),
    ("numa2-8llc", "2n8l8c2t"),
    ("numa2-8llc-nosmt", "2n8l16c1t"),
    ("numa4-8llc", "4n8l4c1t"),
    ("numa4-12llc", "4n12l8c2t"),
];

/// Every preset as a topology, ordered by CPU count, then LLCs, then nodes.
pub fn presets() -> Vec<(&'static str, Topology)> {
    let mut v: Vec<(&str, Topology)> = PRESETS
        .iter()
        .map(|(n, t)| (*n, t.parse().expect("presets are valid")))
        .collect();
    v.sort_by_key(|(_, t)| (t.cpus(), t.llcs(), t.numa_nodes()));
    v
}

/// The preset called `name`.
pub fn by_name(name: &str) -> Option<Topology> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| t.parse().expect("presets are valid"))
}

/// The tags `t` carries: `smt` (two or more threads per core), `numa`
/// (two or more nodes), `odd-llc` (an odd number of LLCs, more than one),
/// `multi-llc` (two or more LLCs).
pub fn tags(t: &Topology) -> Vec<&'static str> {
    let mut v = Vec::new();
    if t.threads_per_core() > 1 {
        v.push("smt");
    }
    if t.numa_nodes() > 1 {
        v.push("numa");
    }
    if t.llcs() > 1 && t.llcs() % 2 == 1 {
        v.push("odd-llc");
    }
    if t.llcs() > 1 {
        v.push("multi-llc");
    }
    v
}

/// Whether `t` is within the default sweep's bounds.
pub fn in_default_sweep(t: &Topology) -> bool {
    t.numa_nodes() <= DEFAULT_MAX_NODES
        && t.llcs() <= DEFAULT_MAX_LLCS
        && t.cpus() <= DEFAULT_MAX_CPUS
}

/// The name of the preset equal to `t`, if one is.
pub fn name_of(t: &Topology) -> Option<&'static str> {
    presets().into_iter().find(|(_, p)| p == t).map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_lookup_and_the_default_sweep() {
        let t = by_name("odd-3llc").unwrap();
        assert_eq!(tags(&t), ["odd-llc", "multi-llc"]);
        assert_eq!(
            tags(&by_name("numa2-8llc").unwrap()),
            ["smt", "numa", "multi-llc"]
        );
        assert!(tags(&by_name("tiny-1llc").unwrap()).is_empty());
        assert!(by_name("nope").is_none());
        assert_eq!(name_of(&t), Some("odd-3llc"));
        let default: Vec<&str> = presets()
            .into_iter()
            .filter(|(_, t)| in_default_sweep(t))
            .map(|(n, _)| n)
            .collect();
        assert!(!default.contains(&"numa2-4llc") && !default.contains(&"near-max-llc"));
        assert!(default.contains(&"smt-2llc") && default.contains(&"medium-8llc"));
    }

    #[test]
    fn presets_parse_and_sort() {
        let p = presets();
        assert_eq!(p.len(), 24);
        assert_eq!(p[0].1.to_string(), "1n1l4c1t");
        assert!(p.windows(2).all(|w| w[0].1.cpus() <= w[1].1.cpus()));
    }
}
