//! Every script of `scenarios/` and `examples/` checks clean, its Plan
//! round-trips through serde unchanged, and the catalog has what it must.

use std::path::{Path, PathBuf};

use ktstr_engine::{catalog, check_file, CheckOptions, Plan};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scripts(dir: &str) -> Vec<PathBuf> {
    catalog::list(&root().join(dir))
        .expect("catalog readable")
        .into_iter()
        .map(|e| e.path)
        .collect()
}

#[test]
fn every_catalog_and_example_script_checks_clean_and_round_trips() {
    let all: Vec<PathBuf> = scripts("scenarios")
        .into_iter()
        .chain(scripts("examples"))
        .collect();
    assert!(all.len() >= 63, "{} scripts", all.len());
    for path in all {
        let c = check_file(&path, &CheckOptions::default());
        assert!(c.is_clean(), "{}:\n{}", path.display(), c.render());
        let plan = c.plan.unwrap();
        let json = serde_json::to_string(&plan).unwrap();
        let back: Plan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan, "{} does not round-trip", path.display());
        assert!(!plan.claims.is_empty(), "{} has no claim", path.display());
    }
}

#[test]
fn catalog_has_sixty_described_scenarios_in_fourteen_families() {
    let entries = catalog::list(&root().join("scenarios")).unwrap();
    assert!(entries.len() >= 60, "{} scenarios", entries.len());
    let mut categories: Vec<&str> = entries
        .iter()
        .map(|e| e.id.split('/').next().unwrap())
        .collect();
    categories.dedup();
    assert_eq!(
        categories,
        [
            "affinity",
            "basic",
            "churn",
            "cpuset",
            "dsq",
            "dynamic",
            "imbalance",
            "interaction",
            "nested",
            "numa",
            "payload",
            "performance",
            "stress",
            "work"
        ]
    );
    for e in &entries {
        assert!(!e.description.is_empty(), "{} has no //! description", e.id);
        assert!(!e.description.contains('\n'));
    }
}

#[test]
fn plans_record_what_the_script_says() {
    let c = check_file(
        &root().join("scenarios/dynamic/add_remove.rhai"),
        &CheckOptions::default(),
    );
    let plan = c.plan.expect("plan");
    assert_eq!(plan.name, "add_remove");
    assert_eq!(plan.duration_s, 12.0);
    assert_eq!(plan.cgroups.len(), 1);
    assert_eq!(plan.steps.len(), 3);
    let json = serde_json::to_value(&plan.steps[1]).unwrap();
    assert_eq!(json["ops"][0]["op"], "add_cgroup");
    assert_eq!(json["ops"][0]["cgroup"]["cpuset"]["kind"], "llc");
    assert_eq!(json["hold"], serde_json::json!({"hold": "frac", "f": 0.5}));
    assert_eq!(
        plan.claims[1].label,
        "r.cgroup(\"base\").max_gap_ms, at_most(3000)"
    );
    assert_eq!((plan.claims[1].at.line, plan.claims[1].at.col), (15, 1));
}

#[test]
fn a_topology_override_is_validated_against() {
    let path = root().join("scenarios/cpuset/per_llc.rhai");
    let opts = CheckOptions {
        topology: Some("1n2l2c1t".parse().unwrap()),
        ..CheckOptions::default()
    };
    let c = check_file(&path, &opts);
    let text = c.render();
    assert!(
        text.contains("llc(2) is out of range: topology 1n2l2c1t has 2 LLCs"),
        "{text}"
    );
}

/// Every cgroup a script declares, in the order it declares them: the
/// names a live backend sees (`cgroup(...)` and `.child(...)` as they are
/// called, `add_cgroup` ops as their steps come), independent of how the
/// Recorder keeps them.
fn declared(path: &Path) -> Vec<String> {
    use ktstr_engine::backend::{Action, ScenarioBackend};
    use ktstr_plan::Op;
    #[derive(Default)]
    struct Names(Vec<String>);
    impl ScenarioBackend for Names {
        fn apply(&mut self, action: Action) -> Result<(), String> {
            match action {
                Action::Cgroup(def) => self.0.push(def.name),
                Action::Step(step) => {
                    for op in step.ops {
                        if let Op::AddCgroup { cgroup } = op {
                            self.0.push(cgroup.name);
                        }
                    }
                }
                _ => {}
            }
            Ok(())
        }
    }
    let names = std::sync::Arc::new(std::sync::Mutex::new(Names::default()));
    let text = std::fs::read_to_string(path).unwrap();
    let file = path.display().to_string();
    ktstr_engine::run_with_backend(&file, &text, names.clone(), &CheckOptions::default())
        .unwrap_or_else(|d| panic!("{d}"));
    let names = names.lock().unwrap().0.clone();
    names
}

/// The cgroups a Plan holds: from the start, then those its steps add.
fn planned(plan: &Plan) -> Vec<String> {
    let mut names: Vec<String> = plan.cgroups.iter().map(|c| c.name.clone()).collect();
    for step in &plan.steps {
        for op in &step.ops {
            if let ktstr_plan::Op::AddCgroup { cgroup } = op {
                names.push(cgroup.name.clone());
            }
        }
    }
    names
}

#[test]
fn every_plan_has_exactly_the_cgroups_its_script_declares() {
    let all: Vec<PathBuf> = scripts("scenarios")
        .into_iter()
        .chain(scripts("examples"))
        .collect();
    for path in &all {
        let c = check_file(path, &CheckOptions::default());
        let plan = c.plan.as_ref().unwrap_or_else(|| panic!("{}", c.render()));
        assert_eq!(planned(plan), declared(path), "{}", path.display());
    }
    // Loops and stdlib helpers declare several cgroups from one call site.
    let written: [(&str, &[&str]); 5] = [
        ("scenarios/cpuset/per_llc.rhai", &["llc0", "llc1", "llc2"]),
        ("examples/gauntlet_constraints.rhai", &["g0", "g1"]),
        ("scenarios/cpuset/split_halves.rhai", &["left", "right"]),
        (
            "scenarios/basic/mixed_load.rhai",
            &["steady", "mixed", "bursty"],
        ),
        ("scenarios/stress/oversubscribed.rhai", &["crowd"]),
    ];
    for (file, want) in written {
        let c = check_file(&root().join(file), &CheckOptions::default());
        assert_eq!(planned(&c.plan.unwrap()), want, "{file}");
    }
}
