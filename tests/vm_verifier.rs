//! `ktstr verifier` on real VMs: scx_qmap's programs and their verified
//! instruction counts on two topologies, and `--compare` flagging a
//! program that grew.

mod common;

use common::{run, stdout, VmEnv};

#[test]
fn the_sweep_lists_each_program_per_topology_and_compare_flags_growth() {
    let Some(env) = VmEnv::new() else { return };
    let sweep = |extra: &[&str]| {
        let mut args = vec![
            "verifier",
            "--scheduler",
            "scx_qmap",
            "--backend",
            "qemu-tcg",
        ];
        args.extend_from_slice(extra);
        let o = run(env
            .ktstr(&args)
            .env("KTSTR_RUNS_DIR", env.cache.path().join("runs")));
        env.assert_no_leftovers();
        o
    };
    let o = sweep(&["-t", "1n1l2c1t", "-t", "2n4l2c1t", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let cells = v["report"]["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 2, "{v}");
    for (cell, topology) in cells.iter().zip(["1n1l2c1t", "2n4l2c1t"]) {
        let t: ktstr_topology::Topology = serde_json::from_value(cell["topology"].clone()).unwrap();
        assert_eq!(t.to_string(), topology);
        assert_eq!(cell["outcome"]["outcome"], "loaded", "{cell}");
        let programs = cell["outcome"]["programs"].as_array().unwrap();
        // scx_qmap's struct_ops callbacks, each verified.
        let names: Vec<&str> = programs
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for expected in ["qmap_enqueue", "qmap_dispatch", "qmap_init"] {
            assert!(names.contains(&expected), "{names:?}");
        }
        for p in programs {
            let n = p["verified_insns"].as_u64().unwrap();
            assert!(n > 0 && n < 1_000_000, "{p}");
        }
    }
    // A previous sweep in which qmap_init took half as many instructions:
    // now it has grown by 2x, past the 1.1 default.
    let mut before = v.clone();
    for p in before["report"]["cells"][0]["outcome"]["programs"]
        .as_array_mut()
        .unwrap()
    {
        if p["name"] == "qmap_init" {
            let n = p["verified_insns"].as_u64().unwrap();
            p["verified_insns"] = (n / 2).into();
        }
    }
    let prev = env.cache.path().join("prev.json");
    std::fs::write(&prev, before.to_string()).unwrap();
    let o = sweep(&["-t", "1n1l2c1t", "--compare", prev.to_str().unwrap()]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("REGRESSION") && out.contains("qmap_init"),
        "{out}"
    );
    assert!(out.contains("qmap_enqueue") && out.contains("   "), "{out}");
}
