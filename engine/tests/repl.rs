//! The REPL interpreter against a fake guest: what each statement asks of
//! the guest, values, errors that leave the session going, claims judged
//! live, interruption, and `save()` output that checks and records the
//! session's cgroups and changes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ktstr_engine::repl::Repl;
use ktstr_plan::live::{LiveAnswer, LiveGuest, LiveRequest, Notice, Placement};
use ktstr_plan::results::WorkerReport;
use ktstr_plan::{Op, TopologyReq};
use ktstr_topology::Topology;

/// A guest that keeps cgroups in memory and counts 1,000 iterations per
/// worker per second; every request is logged.
#[derive(Clone, Default)]
struct Fake {
    log: Arc<Mutex<Vec<LiveRequest>>>,
    notices: Arc<Mutex<Vec<Notice>>>,
    cgroups: Arc<Mutex<Vec<(String, u32, Instant)>>>,
}

impl LiveGuest for Fake {
    fn call(&mut self, request: LiveRequest) -> Result<LiveAnswer, String> {
        self.log.lock().unwrap().push(request.clone());
        let mut cgroups = self.cgroups.lock().unwrap();
        let done = |m: &str| Ok(LiveAnswer::Done { message: m.into() });
        match request {
            LiveRequest::AddCgroup { cgroup } => {
                cgroups.push((cgroup.name.clone(), cgroup.workers, Instant::now()));
                done("started")
            }
            LiveRequest::Op { op } => match &op {
                Op::SetCpuset { name, .. } | Op::SetNice { name, .. }
                    if !cgroups.iter().any(|c| &c.0 == name) =>
                {
                    Ok(LiveAnswer::Failed {
                        error: format!("no cgroup `{name}`"),
                    })
                }
                _ => done("done"),
            },
            LiveRequest::Stats => Ok(LiveAnswer::Stats {
                elapsed_ms: 1000.0,
                workers: cgroups
                    .iter()
                    .flat_map(|(name, n, at)| {
                        (0..*n).map(move |i| WorkerReport {
                            cgroup: name.clone(),
                            index: i,
                            iterations: (at.elapsed().as_secs_f64() * 1000.0) as u64 + 1,
                            cpu_time_ms: 100.0,
                            wall_ms: 100.0,
                            cpus_used: vec![0, 1],
                            ..WorkerReport::default()
                        })
                    })
                    .collect(),
                placement: cgroups
                    .iter()
                    .map(|(name, ..)| Placement {
                        cgroup: name.clone(),
                        allowed: "0-1".into(),
                        cpus_now: vec![1],
                    })
                    .collect(),
            }),
            LiveRequest::Sh { command, .. } => Ok(LiveAnswer::Output {
                code: 3,
                stdout: format!("ran {command}"),
                stderr: "warned".into(),
            }),
            LiveRequest::StartScheduler { name, .. } => done(&format!("{name} attached")),
            _ => done("ok"),
        }
    }

    fn notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut *self.notices.lock().unwrap())
    }

    fn topology(&self) -> Topology {
        Topology::new(1, 2, 2, 1).unwrap()
    }

    fn schedulers(&self) -> Vec<String> {
        vec!["scx_simple".into()]
    }
}

fn repl() -> (Repl, Fake, Arc<AtomicBool>) {
    let fake = Fake::default();
    let flag = Arc::new(AtomicBool::new(false));
    let r = Repl::new(
        Box::new(fake.clone()),
        std::path::Path::new("."),
        Arc::clone(&flag),
    );
    (r, fake, flag)
}

fn ok(r: &mut Repl, input: &str) -> ktstr_engine::repl::Reply {
    r.eval(input)
        .unwrap_or_else(|e| panic!("{input}: {}", e.render()))
}

#[test]
fn statements_run_in_the_guest_at_once() {
    let (mut r, fake, _) = repl();
    ok(&mut r, "let a = cgroup(\"a\", 2, spin_wait());");
    ok(&mut r, "a.cpuset(llc(1)).nice(5);");
    let reply = ok(&mut r, "set_cpuset(\"a\", llc(0))");
    assert!(
        reply.notes.iter().any(|n| n.contains("set_cpuset")),
        "{reply:?}"
    );
    ok(&mut r, "step([clear_cpuset(\"a\")], fixed(0.1));");
    let log = fake.log.lock().unwrap().clone();
    let ops: Vec<String> = log
        .iter()
        .map(|l| serde_json::to_string(l).unwrap())
        .collect();
    assert!(matches!(log[0], LiveRequest::AddCgroup { .. }), "{ops:?}");
    for (i, want) in ["set_cpuset", "set_nice", "set_cpuset", "clear_cpuset"]
        .iter()
        .enumerate()
    {
        assert!(ops[i + 1].contains(want), "request {}: {ops:?}", i + 1);
    }
    // A running cgroup's workers cannot change through its handle.
    let e = r.eval("a.comm(\"x\");").unwrap_err();
    assert!(
        e.diagnostic.message.contains("is running"),
        "{}",
        e.render()
    );
}

#[test]
fn errors_show_their_place_and_the_session_goes_on() {
    let (mut r, _, _) = repl();
    ok(&mut r, "fn twice(x) { x * 2 }");
    ok(&mut r, "let n = 21;");
    let e = r.eval("let s = stat(\"a\");").unwrap_err();
    assert_eq!(
        (e.diagnostic.line, e.diagnostic.col),
        (1, 9),
        "{}",
        e.render()
    );
    assert!(
        e.diagnostic
            .help
            .as_deref()
            .unwrap_or("")
            .contains("did you mean `stats`"),
        "{}",
        e.render()
    );
    let e = r.eval("set_cpuset(\"nope\", llc(0))").unwrap_err();
    assert!(e.render().contains("no cgroup"), "{}", e.render());
    // Variables and functions of earlier inputs live on.
    assert_eq!(ok(&mut r, "twice(n)").value.as_deref(), Some("42"));
    let e = r.eval("undefined_variable + 1").unwrap_err();
    assert!(e.render().contains("undefined_variable"), "{}", e.render());
}

#[test]
fn live_values_claims_and_guest_output() {
    let (mut r, _, _) = repl();
    ok(&mut r, "let a = cgroup(\"a\", 2, spin_wait());");
    let first = ok(&mut r, "a.stats().iterations").json.as_f64().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let second = ok(&mut r, "stats(\"a\").iterations").json.as_f64().unwrap();
    assert!(second > first, "{first} then {second}");
    let all = ok(&mut r, "stats()").json;
    assert_eq!(all["a"]["workers"], 2.0, "{all}");
    assert_eq!(all["a"]["cpus_now"], serde_json::json!([1]), "{all}");
    let pass = ok(&mut r, "claim(results().cgroup(\"a\").workers, eq(2));");
    assert!(pass.notes.iter().any(|n| n.starts_with("PASS")), "{pass:?}");
    let fail = ok(
        &mut r,
        "claim(results().cgroup(\"a\").workers, at_least(3));",
    );
    assert!(fail.notes.iter().any(|n| n.starts_with("FAIL")), "{fail:?}");
    let sh = ok(&mut r, "sh(\"uname\")");
    assert_eq!(sh.value.as_deref(), Some("ran uname"));
    assert!(sh.notes.iter().any(|n| n == "exit code 3"), "{sh:?}");
    assert_eq!(ok(&mut r, "topology()").value.as_deref(), Some("1n2l2c1t"));
    assert!(
        r.help("stats").contains("Live telemetry"),
        "{}",
        r.help("stats")
    );
    assert!(r.names().iter().any(|n| n == "sched_state"));
}

#[test]
fn a_dead_scheduler_is_reported_with_its_reason() {
    let (mut r, fake, _) = repl();
    ok(&mut r, "scheduler(\"scx_simple\").start();");
    fake.notices.lock().unwrap().push(Notice {
        message: "the scheduler exited".into(),
        detail: "scheduler qmap was detached\nEXIT: runnable task stall (x)".into(),
    });
    let notes = r.notices();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("runnable task stall (x)"), "{notes:?}");
    assert!(notes[0].contains("goes on"), "{notes:?}");
}

#[test]
fn ctrl_c_interrupts_sleeps_and_loops_but_not_the_session() {
    let (mut r, _, flag) = repl();
    for input in ["sleep(30);", "let i = 0; loop { i += 1; }"] {
        let f = Arc::clone(&flag);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            f.store(true, Ordering::SeqCst);
        });
        let t = Instant::now();
        let e = r.eval(input).unwrap_err();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{input} was not interrupted"
        );
        assert!(e.render().contains("interrupted"), "{}", e.render());
    }
    assert_eq!(ok(&mut r, "1 + 1").value.as_deref(), Some("2"));
}

#[test]
fn save_writes_a_scenario_that_checks_and_keeps_the_cgroups() {
    let (mut r, _, _) = repl();
    ok(&mut r, "scheduler(\"scx_simple\", [\"-v\"]).start();");
    ok(
        &mut r,
        "let a = cgroup(\"a\", 2, spin_wait()).cpuset(llc(0));",
    );
    ok(&mut r, "sleep(0.3);");
    ok(&mut r, "let b = cgroup(\"b\", 1, bursty(5, 5)); a.nice(3);");
    ok(&mut r, "sleep(0.2); set_cpuset(\"b\", llc(1))");
    ok(
        &mut r,
        "claim(results().cgroup(\"a\").iterations, at_least(1));",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("saved.rhai");
    ok(&mut r, &format!("save({:?});", path.display().to_string()));
    let text = std::fs::read_to_string(&path).unwrap();
    let checked = ktstr_engine::check_file(&path, &Default::default());
    assert!(checked.is_clean(), "{}\n{text}", checked.render());
    let plan = checked.plan.unwrap();
    assert_eq!(plan.cgroups.len(), 1, "{text}");
    assert_eq!(plan.cgroups[0].name, "a");
    assert!(
        matches!(plan.topology, TopologyReq::Fixed { topology } if topology.to_string() == "1n2l2c1t"),
        "{text}"
    );
    assert_eq!(plan.scheduler.as_ref().unwrap().args, ["-v"]);
    let ops: Vec<&Op> = plan.steps.iter().flat_map(|s| &s.ops).collect();
    assert!(
        matches!(ops[0], Op::AddCgroup { cgroup } if cgroup.name == "b"),
        "{text}"
    );
    assert!(matches!(ops[1], Op::SetNice { nice: 3, .. }), "{text}");
    assert!(matches!(ops[2], Op::SetCpuset { .. }), "{text}");
    assert_eq!(plan.claims.len(), 1);
    assert!(plan.duration_s >= 1.0);
}

#[test]
fn a_file_run_live_starts_its_scheduler() {
    let (mut r, fake, _) = repl();
    let text = "scenario(\"s\", \"d\");\nscheduler(\"scx_simple\");\nlet a = cgroup(\"a\", 1, spin_wait());\n";
    r.run_file("s.rhai", text).unwrap();
    let log = fake.log.lock().unwrap().clone();
    assert!(
        matches!(log[0], LiveRequest::StartScheduler { .. }),
        "{log:?}"
    );
    assert!(matches!(log[1], LiveRequest::AddCgroup { .. }), "{log:?}");
    // At the prompt, scheduler(..) only makes a handle.
    ok(&mut r, "let s = scheduler(\"scx_simple\");");
    assert_eq!(fake.log.lock().unwrap().len(), 2);
}
