//! One API, two backends: the same script drives the Recorder (a Plan) and
//! any other backend, which sees every call the moment it happens.

use std::sync::{Arc, Mutex};

use ktstr_engine::backend::{Action, ScenarioBackend};
use ktstr_engine::{check_source, run_with_backend, CheckOptions};

/// A live backend stand-in: logs each action as it arrives, and refuses a
/// cgroup named `forbidden` the way a guest could refuse an op.
#[derive(Default)]
struct Log(Vec<String>);

impl ScenarioBackend for Log {
    fn apply(&mut self, action: Action) -> Result<(), String> {
        let entry = match &action {
            Action::Scenario { name, .. } => format!("scenario {name}"),
            Action::Cgroup(def) if def.name == "forbidden" => {
                return Err("refused by the guest".into())
            }
            Action::Cgroup(def) => format!("cgroup {} nice {}", def.name, def.nice),
            Action::UpdateCgroup(def) => format!("update {} nice {}", def.name, def.nice),
            Action::Step(s) => format!("step with {} op(s)", s.ops.len()),
            Action::Claim(c) => format!("claim {}", c.label),
            other => format!("{other:?}")
                .split('(')
                .next()
                .unwrap_or("")
                .to_string(),
        };
        self.0.push(entry);
        Ok(())
    }
}

const SCRIPT: &str = r#"scenario("live", "run live");
let a = cgroup("a", 1, spin_wait());
a.nice(5);
step([set_nice("a", 0)], frac(0.5));
claim(results().cgroup("a").iterations, at_least(1));
"#;

#[test]
fn the_same_script_records_a_plan_and_drives_a_live_backend() {
    let c = check_source("live.rhai", SCRIPT, None, &CheckOptions::default());
    assert!(c.is_clean(), "{}", c.render());
    assert_eq!(c.plan.unwrap().cgroups[0].nice, 5);
    let log = Arc::new(Mutex::new(Log::default()));
    run_with_backend("live.rhai", SCRIPT, log.clone(), &CheckOptions::default()).unwrap();
    let seen = log.lock().unwrap().0.clone();
    assert_eq!(
        seen,
        vec![
            "scenario live",
            "cgroup a nice 0",
            "update a nice 5",
            "step with 1 op(s)",
            "claim results().cgroup(\"a\").iterations, at_least(1)",
        ]
    );
}

#[test]
fn a_backend_refusal_is_a_diagnostic_at_the_call() {
    let src = "scenario(\"x\", \"y\");\ncgroup(\"forbidden\", 1, spin_wait());\n";
    let log = Arc::new(Mutex::new(Log::default()));
    let d = run_with_backend("r.rhai", src, log, &CheckOptions::default()).unwrap_err();
    assert_eq!((d.line, d.col), (2, 1));
    assert_eq!(d.message, "refused by the guest");
}
