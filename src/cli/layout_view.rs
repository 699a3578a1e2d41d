//! Shows a [`CpuLayout`] as text or as the JSON shape shared by `vm probe`
//! and `topo`.

use ktstr_topology::{cpulist, CpuLayout};
use serde_json::{json, Value};

/// `cpus`, `llcs`, `smt_siblings`, `numa_nodes`, `distances`.
pub fn layout_json(l: &CpuLayout) -> Value {
    json!({
        "cpus": l.cpus,
        "llcs": l.llcs,
        "smt_siblings": l.smt_siblings,
        "numa_nodes": l.numa_nodes,
        "distances": l.distances,
    })
}

/// Human-readable lines, one per aspect.
pub fn layout_lines(l: &CpuLayout) -> Vec<String> {
    let groups = |g: &[Vec<u32>]| {
        g.iter()
            .map(|c| format!("[{}]", cpulist::format(c)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let nodes = l
        .numa_nodes
        .iter()
        .map(|n| format!("node{}={}", n.id, cpulist::format(&n.cpus)))
        .collect::<Vec<_>>()
        .join(" ");
    let distances = l
        .distances
        .iter()
        .map(|row| row.iter().map(u32::to_string).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(" / ");
    vec![
        format!(
            "cpus          {} ({} online)",
            cpulist::format(&l.cpus),
            l.cpus.len()
        ),
        format!("llcs          {}", groups(&l.llcs)),
        format!("smt siblings  {}", groups(&l.smt_siblings)),
        format!("numa nodes    {nodes}"),
        format!("distances     {distances}"),
    ]
}
