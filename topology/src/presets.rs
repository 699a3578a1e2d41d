//! The gauntlet's named topology presets (x86).

use crate::Topology;

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

#[cfg(test)]
mod tests {
    #[test]
    fn presets_parse_and_sort() {
        let p = super::presets();
        assert_eq!(p.len(), 24);
        assert_eq!(p[0].1.to_string(), "1n1l4c1t");
        assert!(p.windows(2).all(|w| w[0].1.cpus() <= w[1].1.cpus()));
    }
}
