//! The guest sees exactly the declared topology: CPUs, LLC groups, SMT
//! siblings, NUMA nodes and distances, read by the guest agent from the
//! guest's own sysfs and checked here against hand-written expectations.

mod common;

use common::{json, run, stderr, VmEnv};
use serde_json::{json, Value};

fn probe(topology: &str) -> Option<Value> {
    let env = VmEnv::new()?;
    let o = run(&mut env.ktstr(&[
        "vm",
        "probe",
        "--backend",
        "qemu-tcg",
        "--topology",
        topology,
        "--json",
    ]));
    assert!(o.status.success(), "vm probe {topology}: {}", stderr(&o));
    env.assert_no_leftovers();
    Some(json(&o))
}

fn assert_layout(v: &Value, cpus: u32, llcs: Value, smt: Value, nodes: Value, distances: Value) {
    let all: Vec<u32> = (0..cpus).collect();
    assert_eq!(v["cpus"], json!(all), "{v:#}");
    assert_eq!(v["llcs"], llcs, "{v:#}");
    assert_eq!(v["smt_siblings"], smt, "{v:#}");
    assert_eq!(v["numa_nodes"], nodes, "{v:#}");
    assert_eq!(v["distances"], distances, "{v:#}");
    assert_eq!(v["matches_topology"], json!(true));
    assert_eq!(v["backend"], json!("qemu-tcg"));
    assert_eq!(v["outcome"]["end"]["kind"], json!("completed"));
    assert_eq!(
        v["outcome"]["report"]["warnings"],
        json!([]),
        "every mount worked"
    );
    assert_eq!(v["sched_ext_state"], json!("disabled"));
}

#[test]
fn one_llc_two_cores() {
    let Some(v) = probe("1n1l2c1t") else { return };
    assert_layout(
        &v,
        2,
        json!([[0, 1]]),
        json!([[0], [1]]),
        json!([{"id": 0, "cpus": [0, 1]}]),
        json!([[10]]),
    );
}

#[test]
fn two_llcs_two_cores() {
    let Some(v) = probe("1n2l2c1t") else { return };
    assert_layout(
        &v,
        4,
        json!([[0, 1], [2, 3]]),
        json!([[0], [1], [2], [3]]),
        json!([{"id": 0, "cpus": [0, 1, 2, 3]}]),
        json!([[10]]),
    );
}

#[test]
fn two_llcs_with_smt() {
    let Some(v) = probe("1n2l2c2t") else { return };
    assert_layout(
        &v,
        8,
        json!([[0, 1, 2, 3], [4, 5, 6, 7]]),
        json!([[0, 1], [2, 3], [4, 5], [6, 7]]),
        json!([{"id": 0, "cpus": [0, 1, 2, 3, 4, 5, 6, 7]}]),
        json!([[10]]),
    );
}

#[test]
fn three_llcs_of_three() {
    let Some(v) = probe("1n3l3c1t") else { return };
    assert_layout(
        &v,
        9,
        json!([[0, 1, 2], [3, 4, 5], [6, 7, 8]]),
        json!([[0], [1], [2], [3], [4], [5], [6], [7], [8]]),
        json!([{"id": 0, "cpus": [0, 1, 2, 3, 4, 5, 6, 7, 8]}]),
        json!([[10]]),
    );
}

#[test]
fn two_numa_nodes_four_llcs() {
    let Some(v) = probe("2n4l2c1t") else { return };
    assert_layout(
        &v,
        8,
        json!([[0, 1], [2, 3], [4, 5], [6, 7]]),
        json!([[0], [1], [2], [3], [4], [5], [6], [7]]),
        json!([{"id": 0, "cpus": [0, 1, 2, 3]}, {"id": 1, "cpus": [4, 5, 6, 7]}]),
        json!([[10, 20], [20, 10]]),
    );
    // Memory is split over the nodes and the guest got what was asked
    // (8 CPUs x 64 MiB = 512 MiB, less what the kernel reserves).
    let kib = v["mem_total_kib"].as_u64().unwrap();
    assert!((300_000..=524_288).contains(&kib), "MemTotal {kib} KiB");
}

#[test]
fn topology_errors_are_caught_before_boot() {
    let o = run(common::ktstr().args(["vm", "probe", "--topology", "2n3l2c1t"]));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("3 LLCs do not divide evenly over 2 NUMA nodes"),
        "{}",
        stderr(&o)
    );
    let o = run(common::ktstr().args([
        "vm",
        "probe",
        "--topology",
        "1n16l8c2t",
        "--backend",
        "qemu-tcg",
    ]));
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at most 255"), "{}", stderr(&o));
}

#[test]
fn host_topology_has_the_same_shape() {
    let o = run(common::ktstr().args(["topo", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    for key in ["cpus", "llcs", "smt_siblings", "numa_nodes", "distances"] {
        assert!(v[key].is_array(), "{key} in {v:#}");
    }
    let online = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap();
    let n = ktstr_count(&online);
    assert_eq!(v["cpus"].as_array().unwrap().len(), n);
}

/// CPUs in a kernel CPU list, counted independently of ktstr's parser.
fn ktstr_count(list: &str) -> usize {
    list.trim()
        .split(',')
        .map(|r| match r.split_once('-') {
            Some((a, b)) => b.parse::<usize>().unwrap() - a.parse::<usize>().unwrap() + 1,
            None => 1,
        })
        .sum()
}

#[test]
fn boot_bench_prints_ktstr_and_bare_boot_figures() {
    let Some(env) = VmEnv::new() else { return };
    let o = run(&mut env.ktstr(&[
        "bench",
        "boot",
        "--backend",
        "qemu-tcg",
        "-n",
        "1",
        "--json",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    let ready = v["ktstr_ready_ms"]["median"].as_f64().unwrap();
    let life = v["ktstr_lifetime_ms"]["median"].as_f64().unwrap();
    let bare = v["bare_lifetime_ms"]["median"].as_f64().unwrap();
    assert!(0.0 < ready && ready <= life, "{v:#}");
    assert!(bare > 0.0, "{v:#}");
    let ratio = v["lifetime_ratio"].as_f64().unwrap();
    assert!((ratio - life / bare).abs() < 1e-9, "{v:#}");
    assert_eq!(v["backend"], json!("qemu-tcg"));
    env.assert_no_leftovers();
}

#[test]
fn the_snapshot_bench_measures_cold_boots_and_restores_per_topology() {
    let Some(env) = VmEnv::new() else { return };
    let o = run(&mut env.ktstr(&[
        "bench",
        "boot",
        "--backend",
        "qemu-tcg",
        "--snapshot",
        "--sweep",
        "1n1l2c1t,1n2l1c1t",
        "-n",
        "1",
        "--json",
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = json(&o);
    let rows = rows.as_array().expect("one row per topology");
    assert_eq!(rows.len(), 2, "{rows:#?}");
    for (row, (t, vcpus)) in rows.iter().zip([("1n1l2c1t", 2), ("1n2l1c1t", 2)]) {
        assert_eq!(row["topology"], json!(t));
        assert_eq!(row["vcpus"], json!(vcpus));
        let cold = row["cold_ready_ms"]["median"].as_f64().unwrap();
        let restore = row["restore_ready_ms"]["median"].as_f64().unwrap();
        let load = row["restore_load_ms"]["median"].as_f64().unwrap();
        assert!(cold > 0.0 && restore > load && load > 0.0, "{row:#}");
        assert!((row["speedup"].as_f64().unwrap() - cold / restore).abs() < 1e-9);
        assert!(row["snapshot_boot_ms"].as_f64().unwrap() > 0.0, "{row:#}");
    }
    env.assert_no_leftovers();
}
