//! The functions only a live session has (`stats()`, `sh(..)`,
//! `sched_state()`, `sleep(..)`, `save(..)`, `help()`, ...) and the REPL's
//! `scheduler(..)`, which returns a handle to start and stop. Registered
//! with their signatures and docs like the scenario API, so `help(..)`
//! and completion read them from Rhai's metadata.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use rhai::{Array, Engine, Map};

use super::backend::LiveBackend;
use super::values::{self, SchedulerHandle};
use crate::api::def::def;
use crate::api::{fail, CgroupHandle, RhaiResult};
use crate::backend::{Action, ScenarioBackend};
use ktstr_plan::live::{LiveAnswer, LiveRequest, MAX_DMESG_LINES, MAX_SH_SECS};
use ktstr_plan::SchedulerSpec;

type Shared = Arc<Mutex<LiveBackend>>;

fn lock(b: &Shared) -> std::sync::MutexGuard<'_, LiveBackend> {
    b.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers the live-only functions.
pub fn register(engine: &mut Engine, b: &Shared, exit: &Arc<AtomicBool>, help: &Arc<HelpIndex>) {
    engine.register_type_with_name::<SchedulerHandle>("Scheduler");
    register_stats(engine, b);
    register_scheduler(engine, b);
    register_guest(engine, b);
    register_session(engine, b, exit, help);
}

fn register_stats(engine: &mut Engine, b: &Shared) {
    let c = b.clone();
    def(
        engine,
        "stats() -> map",
        "Live telemetry of every cgroup so far: iterations, rate, gaps, wake\nlatency, migrations, CPUs used and now, ...; and `elapsed_s`.",
        move || -> RhaiResult<Map> {
            let snap = lock(&c).snapshot()?;
            Ok(values::all_stats(&snap))
        },
    );
    let cgroup_doc = "Live telemetry of one cgroup's workers so far.";
    let c = b.clone();
    def(
        engine,
        "stats(name: string) -> map",
        cgroup_doc,
        move |name: &str| -> RhaiResult<Map> { one(&c, name) },
    );
    let c = b.clone();
    def(
        engine,
        "stats(cgroup: &mut Cgroup) -> map",
        cgroup_doc,
        move |h: &mut CgroupHandle| -> RhaiResult<Map> { one(&c, &h.def.name) },
    );
}

fn one(b: &Shared, name: &str) -> RhaiResult<Map> {
    let snap = lock(b).snapshot()?;
    let known = snap.workers.iter().any(|w| w.cgroup == name)
        || snap.placement.iter().any(|p| p.cgroup == name);
    if !known {
        return fail(format!("no cgroup `{name}` has run in this session"));
    }
    let results = ktstr_plan::results::RunResults::from_reports(&snap.workers);
    Ok(values::cgroup_stats(&snap, &results, name))
}

fn register_scheduler(engine: &mut Engine, b: &Shared) {
    let doc = "A sched_ext scheduler given to this VM (`ktstr repl --scheduler`,\nor the kernel's samples): `.start()` attaches it, `.stop()` ends it.\nIn a `--script` file it starts at once, as in a scenario.";
    let c = b.clone();
    def(
        engine,
        "scheduler(name: string) -> Scheduler",
        doc,
        move |name: &str| handle(&c, name, Vec::new()),
    );
    let c = b.clone();
    def(
        engine,
        "scheduler(name: string, args: array) -> Scheduler",
        doc,
        move |name: &str, args: Array| -> RhaiResult<SchedulerHandle> {
            let args = args
                .into_iter()
                .map(|a| {
                    a.into_string()
                        .or_else(|t| fail(format!("arguments are strings, not {t}")))
                })
                .collect::<RhaiResult<Vec<String>>>()?;
            handle(&c, name, args)
        },
    );
    let c = b.clone();
    def(
        engine,
        "start(scheduler: &mut Scheduler)",
        "Starts the scheduler and waits until the kernel says it is attached.",
        move |s: &mut SchedulerHandle| -> RhaiResult<()> {
            let mut be = lock(&c);
            let message = be.start_scheduler(s.spec.clone())?;
            be.notes.push(message);
            Ok(())
        },
    );
    let stop_doc = "Stops the running scheduler (the kernel's own takes over).";
    let c = b.clone();
    def(
        engine,
        "stop(scheduler: &mut Scheduler)",
        stop_doc,
        move |_: &mut SchedulerHandle| stop(&c),
    );
    let c = b.clone();
    def(engine, "stop_scheduler()", stop_doc, move || stop(&c));
    let c = b.clone();
    def(
        engine,
        "sched_state() -> map",
        "The kernel's sched_ext state (`state`, `ops`), the scheduler this\nsession runs, and why the last one ended (`last_exit`).",
        move || -> RhaiResult<Map> {
            match lock(&c).call(LiveRequest::SchedState)? {
                LiveAnswer::SchedState(s) => Ok(values::sched_state(&s)),
                other => fail(format!("unexpected answer {other:?}")),
            }
        },
    );
}

fn handle(b: &Shared, name: &str, args: Vec<String>) -> RhaiResult<SchedulerHandle> {
    let spec = SchedulerSpec {
        name: name.to_string(),
        args,
        at: Default::default(),
    };
    lock(b).apply(Action::Scheduler(spec.clone()))?;
    Ok(SchedulerHandle { spec })
}

fn stop(b: &Shared) -> RhaiResult<()> {
    let mut be = lock(b);
    let message = be.stop_scheduler()?;
    be.notes.push(message);
    Ok(())
}

fn register_guest(engine: &mut Engine, b: &Shared) {
    let sh_doc = "Runs a command with /bin/sh -c in the guest; returns its stdout\n(stderr and a non-zero exit are shown too).";
    let c = b.clone();
    def(
        engine,
        "sh(command: string) -> string",
        sh_doc,
        move |cmd: &str| sh(&c, cmd, 30),
    );
    let c = b.clone();
    def(
        engine,
        "sh(command: string, timeout_s: int) -> string",
        sh_doc,
        move |cmd: &str, t: i64| {
            if !(1..=MAX_SH_SECS as i64).contains(&t) {
                return fail(format!("the timeout must be 1 to {MAX_SH_SECS} s, not {t}"));
            }
            sh(&c, cmd, t as u64)
        },
    );
    let dmesg_doc = "The last `lines` lines of the guest kernel's log (default 20).";
    let c = b.clone();
    def(engine, "dmesg() -> string", dmesg_doc, move || {
        dmesg(&c, 20)
    });
    let c = b.clone();
    def(
        engine,
        "dmesg(lines: int) -> string",
        dmesg_doc,
        move |n: i64| {
            if !(1..=i64::from(MAX_DMESG_LINES)).contains(&n) {
                return fail(format!("lines must be 1 to {MAX_DMESG_LINES}, not {n}"));
            }
            dmesg(&c, n as u32)
        },
    );
    let c = b.clone();
    def(
        engine,
        "topology() -> string",
        "The live VM's CPU topology (`1n2l2c1t`).",
        move || lock(&c).guest.topology().to_string(),
    );
    let sleep_doc = "Waits `secs` seconds while the workers run (Ctrl-C ends it early).";
    let c = b.clone();
    def(engine, "sleep(secs: int)", sleep_doc, move |s: i64| {
        sleep(&c, s as f64)
    });
    let c = b.clone();
    def(engine, "sleep(secs: float)", sleep_doc, move |s: f64| {
        sleep(&c, s)
    });
}

fn sh(b: &Shared, command: &str, timeout_s: u64) -> RhaiResult<String> {
    let mut be = lock(b);
    match be.call(LiveRequest::Sh {
        command: command.to_string(),
        timeout_s,
    })? {
        LiveAnswer::Output {
            code,
            stdout,
            stderr,
        } => {
            if !stderr.trim().is_empty() {
                be.notes.push(format!("stderr: {}", stderr.trim_end()));
            }
            if code != 0 {
                be.notes.push(format!("exit code {code}"));
            }
            Ok(stdout)
        }
        other => fail(format!("unexpected answer {other:?}")),
    }
}

fn dmesg(b: &Shared, lines: u32) -> RhaiResult<String> {
    match lock(b).call(LiveRequest::Dmesg { lines })? {
        LiveAnswer::Text { text } => Ok(text),
        other => fail(format!("unexpected answer {other:?}")),
    }
}

fn sleep(b: &Shared, secs: f64) -> RhaiResult<()> {
    if !(secs.is_finite() && (0.0..=86_400.0).contains(&secs)) {
        return fail(format!("sleep takes 0 to 86400 s, not {secs}"));
    }
    Ok(lock(b).hold(secs)?)
}

fn register_session(
    engine: &mut Engine,
    b: &Shared,
    exit: &Arc<AtomicBool>,
    help: &Arc<HelpIndex>,
) {
    let c = b.clone();
    def(
        engine,
        "save(path: string)",
        "Writes the session so far as a scenario file (its cgroups and\nchanges on the session's clock, its scheduler and claims), checked.",
        move |path: &str| -> RhaiResult<()> {
            let text = lock(&c).record.to_scenario();
            std::fs::write(path, &text).or_else(|e| fail(format!("save {path}: {e}")))?;
            let checked = crate::check_source(path, &text, None, &Default::default());
            if !checked.diagnostics.is_empty() {
                return fail(format!("{path} was saved but does not check:\n{}", checked.render()));
            }
            let lines = text.lines().count();
            lock(&c).notes.push(format!("saved {path} ({lines} lines); `ktstr run {path}` replays it"));
            Ok(())
        },
    );
    let c = b.clone();
    def(
        engine,
        "reset()",
        "Stops every worker and the scheduler and removes every cgroup.",
        move || -> RhaiResult<()> {
            let mut be = lock(&c);
            be.reset()?;
            be.notes
                .push("every cgroup removed, the scheduler stopped".into());
            Ok(())
        },
    );
    let flag = Arc::clone(exit);
    def(
        engine,
        "exit()",
        "Ends the session: stops the workers and the scheduler, shuts the VM down.",
        move || flag.store(true, Ordering::SeqCst),
    );
    let h = Arc::clone(help);
    def(
        engine,
        "help() -> string",
        "Lists every function.",
        move || h.text(""),
    );
    let h = Arc::clone(help);
    def(
        engine,
        "help(name: string) -> string",
        "The signatures and doc of function `name`.",
        move |name: &str| h.text(name),
    );
}

/// Every registered function's signatures and doc, read from Rhai's
/// metadata once the engine is complete.
#[derive(Debug, Default)]
pub struct HelpIndex {
    by_name: OnceLock<BTreeMap<String, Vec<(String, String)>>>,
}

impl HelpIndex {
    /// Reads `engine`'s metadata.
    pub fn fill(&self, engine: &Engine) {
        let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let mut by_name: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for f in v["functions"].as_array().into_iter().flatten() {
            let (Some(name), Some(sig)) = (f["name"].as_str(), f["signature"].as_str()) else {
                continue;
            };
            if name.contains('$') || !name.chars().next().is_some_and(char::is_alphabetic) {
                continue;
            }
            let doc: Vec<String> = f["docComments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|d| d.as_str())
                .flat_map(|d| {
                    d.lines()
                        .map(|l| l.trim_start_matches("///").trim().to_string())
                })
                .collect();
            by_name
                .entry(name.to_string())
                .or_default()
                .push((crate::check::pretty_signature(sig), doc.join("\n")));
        }
        let _ = self.by_name.set(by_name);
    }

    /// Every documented function name.
    pub fn names(&self) -> Vec<String> {
        self.by_name
            .get()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Help for `name`; the list of names for "".
    pub fn text(&self, name: &str) -> String {
        let Some(m) = self.by_name.get() else {
            return String::new();
        };
        if name.is_empty() {
            let names: Vec<&str> = m.keys().map(String::as_str).collect();
            return format!("functions (help(\"name\") for one):\n{}", names.join(", "));
        }
        match m.get(name) {
            Some(overloads) => {
                let mut out = String::new();
                let mut last_doc = "";
                for (sig, doc) in overloads {
                    out += &format!("{sig}\n");
                    if doc != last_doc && !doc.is_empty() {
                        out += &format!("    {}\n", doc.replace('\n', "\n    "));
                        last_doc = doc;
                    }
                }
                out.trim_end().to_string()
            }
            None => format!("no function `{name}`"),
        }
    }
}
