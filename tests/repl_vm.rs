//! `ktstr repl` in a real VM, driven through a pipe with `--json` (one
//! object per statement): workers that really run and move, a scheduler
//! started, stopped and killed by the kernel's watchdog, errors that
//! leave the session going, `save()` replayed by `ktstr run`, and nothing
//! left behind.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{json, run, stderr, VmEnv};
use serde_json::Value;

/// Runs `ktstr repl --json` with `inputs` on stdin; the objects it printed
/// (the ready event first), the exit code, and seconds from the start to
/// the first statement's answer.
fn repl(env: &VmEnv, inputs: &str) -> (Vec<Value>, Option<i32>, f64) {
    let mut cmd: Command = env.ktstr(&["repl", "--json", "--backend", "qemu-tcg"]);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("ktstr repl starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(inputs.as_bytes())
        .unwrap();
    let mut first_answer = 0.0;
    let mut lines = Vec::new();
    {
        use std::io::BufRead;
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        for line in out.lines() {
            let line = line.unwrap();
            if lines.len() == 1 {
                first_answer = start.elapsed().as_secs_f64();
            }
            lines.push(
                serde_json::from_str::<Value>(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}")),
            );
        }
    }
    let o = child.wait_with_output().unwrap();
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    (lines, o.status.code(), first_answer)
}

/// The answer to the statement `input`.
fn answer<'a>(out: &'a [Value], input: &str) -> &'a Value {
    out.iter()
        .find(|v| v["input"] == input)
        .unwrap_or_else(|| panic!("no answer to {input}: {out:#?}"))
}

#[test]
fn the_repl_drives_a_live_vm_through_a_pipe_and_saves_a_scenario() {
    let Some(env) = VmEnv::new() else { return };
    let keep = tempfile::tempdir().unwrap();
    let saved = keep.path().join("saved.rhai");
    let inputs = format!(
        r#"let a = cgroup("a", 2, spin_wait());
let b = cgroup("b", 1, spin_wait());
let first = stats("a").iterations;
sleep(1);
stats("a").iterations > first
set_cpuset("a", exact([1]))
sleep(1.5);
stats("a")
scheduler("scx_simple").start();
sched_state()
stop_scheduler();
sched_state().state
stat("a")
stats().b.iterations > 0
sh("nproc")
let big = "echo "; big.pad(65530, "x"); sh(big)
dmesg(3).len() > 0
remove_cgroup("b")
stats().b.workers
claim(results().cgroup("a").iterations, at_least(1));
save("{}");
exit()
"#,
        saved.display()
    );
    let (out, code, first_answer) = repl(&env, &inputs);
    eprintln!("first answer {first_answer:.2} s after start");
    assert_eq!(out[0]["event"], "ready", "{out:#?}");
    assert!(out[0]["schedulers"]
        .as_array()
        .unwrap()
        .contains(&"scx_simple".into()));
    // Iterations grew between two reads.
    assert_eq!(
        answer(&out, "stats(\"a\").iterations > first")["value"],
        true
    );
    // The cpuset moved and the workers followed it.
    let a = &answer(&out, "stats(\"a\")")["value"];
    assert_eq!(a["allowed"], "1", "{a}");
    assert_eq!(a["cpus_now"], serde_json::json!([1]), "{a}");
    assert_eq!(a["workers"], 2.0, "{a}");
    let s = &answer(&out, "sched_state()")["value"];
    assert_eq!(
        (s["state"].as_str(), s["ops"].as_str()),
        (Some("enabled"), Some("simple")),
        "{s}"
    );
    assert_eq!(answer(&out, "sched_state().state")["value"], "disabled");
    // An unknown function: an error with a close match, and the session
    // goes on.
    let e = answer(&out, "stat(\"a\")");
    assert_eq!(e["ok"], false);
    assert!(
        e["error"]["help"]
            .as_str()
            .unwrap()
            .contains("did you mean `stats`"),
        "{e}"
    );
    assert_eq!(answer(&out, "stats().b.iterations > 0")["value"], true);
    assert_eq!(answer(&out, "sh(\"nproc\")")["value"], "2\n");
    // A request over the guest's frame limit is refused on the host at
    // once, and the session goes on.
    let big = answer(&out, "let big = \"echo \"; big.pad(65530, \"x\"); sh(big)");
    let why = big["error"]["message"].as_str().unwrap();
    assert!(why.contains("the guest takes at most 65536"), "{big}");
    assert_eq!(answer(&out, "dmesg(3).len() > 0")["value"], true);
    // A removed cgroup's stopped workers still count.
    assert_eq!(answer(&out, "stats().b.workers")["value"], 1.0);
    let claim = &answer(
        &out,
        "claim(results().cgroup(\"a\").iterations, at_least(1));",
    )["notes"];
    assert!(claim[0].as_str().unwrap().starts_with("PASS"), "{claim}");
    assert_eq!(code, Some(1), "statements failed");
    env.assert_no_leftovers();

    // The saved session checks and replays: the same cgroups run.
    let o = run(common::ktstr().args(["check"]).arg(&saved));
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&mut env.ktstr(&[
        "run",
        "--json",
        "--backend",
        "qemu-tcg",
        saved.to_str().unwrap(),
    ]));
    assert!(o.status.success(), "{}", stderr(&o));
    let sidecar = json(&o)[0]["sidecar"].as_str().unwrap().to_string();
    let sidecar: Value = serde_json::from_str(&std::fs::read_to_string(sidecar).unwrap()).unwrap();
    let mut cgroups: Vec<&str> = sidecar["telemetry"]["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["cgroup"].as_str().unwrap())
        .collect();
    cgroups.sort();
    cgroups.dedup();
    assert_eq!(
        cgroups,
        ["a", "b"],
        "{}",
        std::fs::read_to_string(&saved).unwrap()
    );
}

#[test]
fn a_scheduler_killed_by_the_watchdog_is_reported_and_the_session_goes_on() {
    let Some(env) = VmEnv::new() else { return };
    // scx_qmap -t 2 stalls every second user task: the kernel's watchdog
    // kicks it out after its timeout.
    let inputs = r#"let a = cgroup("a", 2, spin_wait());
scheduler("scx_qmap", ["-t", "2"]).start();
let waited = 0; while sched_state().state == "enabled" && waited < 60 { sleep(1); waited += 1; }
sched_state()
let before = stats("a").iterations; sleep(1); stats("a").iterations > before
"#;
    let (out, code, _) = repl(&env, inputs);
    // On a loaded host the watchdog can fire before the agent sees the
    // scheduler attached: then `start()` itself fails with the reason.
    let start = answer(&out, "scheduler(\"scx_qmap\", [\"-t\", \"2\"]).start();");
    let died_attaching = start["ok"] == false;
    assert_eq!(code, Some(i32::from(died_attaching)), "{out:#?}");
    let reported: Vec<&str> = out
        .iter()
        .flat_map(|v| {
            let notes = v["notes"].as_array().into_iter().flatten();
            notes
                .chain(std::iter::once(&v["message"]))
                .chain(std::iter::once(&v["error"]["message"]))
        })
        .filter_map(Value::as_str)
        .filter(|n| n.contains("scheduler exited") || n.contains("did not stay attached"))
        .collect();
    assert!(!reported.is_empty(), "no death reported: {out:#?}");
    assert!(reported[0].contains("stall"), "{reported:?}");
    let s = &answer(&out, "sched_state()")["value"];
    assert_eq!(s["state"], "disabled", "{s}");
    assert!(s["running"].is_null(), "{s}");
    assert!(s["last_exit"].as_str().unwrap().contains("stall"), "{s}");
    // The workers run on under EEVDF.
    let last = out.last().unwrap();
    assert_eq!(last["value"], true, "{last}");
    env.assert_no_leftovers();
}

#[test]
fn a_script_runs_live_and_exit_stops_after_it() {
    let Some(env) = VmEnv::new() else { return };
    let keep = tempfile::tempdir().unwrap();
    let file = keep.path().join("live.rhai");
    std::fs::write(
        &file,
        "scenario(\"live\", \"a file run in a live VM\");\n\
         scheduler(\"scx_simple\");\n\
         let a = cgroup(\"a\", 2, spin_wait());\n\
         step([set_cpuset(\"a\", exact([0]))], fixed(1.0));\n\
         claim(results().cgroup(\"a\").workers, eq(2));\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let console = keep.path().join("console.log");
    let mut cmd = env.ktstr(&[
        "repl",
        "--json",
        "--backend",
        "qemu-tcg",
        "--exit",
        "--console-log",
        console.to_str().unwrap(),
        "--script",
        file,
    ]);
    cmd.stdin(Stdio::null());
    let o = run(&mut cmd);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out: Vec<Value> = common::stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let notes = out[1]["notes"].as_array().unwrap();
    let notes: Vec<&str> = notes.iter().filter_map(Value::as_str).collect();
    assert!(notes.contains(&"scx_simple attached"), "{notes:?}");
    assert!(notes.iter().any(|n| n.starts_with("PASS")), "{notes:?}");
    assert_eq!(out.len(), 2, "--exit stops after the script: {out:#?}");
    let log = std::fs::read_to_string(&console).unwrap();
    assert!(
        log.contains("Linux version"),
        "--console-log keeps the console: {log}"
    );
    env.assert_no_leftovers();
}

#[test]
fn a_guest_that_dies_mid_session_is_reported_and_nothing_is_left() {
    let Some(env) = VmEnv::new() else { return };
    let inputs = "let a = cgroup(\"a\", 1, spin_wait());\n\
                  sh(\"echo c > /proc/sysrq-trigger\")\n\
                  stats()\n\
                  1 + 1\n";
    let (out, code, _) = repl(&env, inputs);
    assert_eq!(code, Some(1), "{out:#?}");
    let panic = answer(&out, "sh(\"echo c > /proc/sysrq-trigger\")");
    let why = panic["error"]["message"].as_str().unwrap();
    assert!(
        why.contains("kernel panic") && why.contains("sysrq"),
        "{panic}"
    );
    let after = answer(&out, "stats()")["error"]["message"]
        .as_str()
        .unwrap();
    assert!(after.contains("start a new `ktstr repl`"), "{after}");
    assert_eq!(answer(&out, "1 + 1")["value"], 2);
    env.assert_no_leftovers();
}
