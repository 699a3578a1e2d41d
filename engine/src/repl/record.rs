//! What a live session did, on its clock, and `save()`: the same as a
//! scenario file. The cgroups made together with the first one exist from
//! the start; every later change becomes a step at the time it happened,
//! holding until the next; the duration runs to the save; the claims the
//! session judged are claimed again.

use std::fmt::Write as _;
use std::time::Instant;

use ktstr_plan::claims::Claim;
use ktstr_plan::{CgroupDef, Op, SchedulerSpec};

use super::render;

/// One change the guest carried out.
#[derive(Debug, Clone)]
enum Change {
    /// A cgroup made with `cgroup(..)` (or `child`).
    Cgroup(CgroupDef),
    /// An op.
    Op(Op),
}

/// A change, when and in which segment (a run of changes with no wait
/// between them: one input, or one part of it between holds).
#[derive(Debug, Clone)]
struct Entry {
    secs: f64,
    segment: u64,
    change: Change,
}

/// The scheduler of the session as the record knows it.
#[derive(Debug, Clone)]
struct SchedulerUse {
    spec: SchedulerSpec,
    /// Seconds after the first cgroup it started (negative: before).
    started: f64,
    /// How it ended, if it did.
    ended: Option<String>,
}

/// The session's timeline.
#[derive(Debug, Default)]
pub struct Record {
    t0: Option<Instant>,
    segment: u64,
    entries: Vec<Entry>,
    scheduler: Option<SchedulerUse>,
    claims: Vec<Claim>,
    thresholds: Vec<(String, f64)>,
    name: Option<(String, String)>,
    topology: Option<ktstr_topology::Topology>,
}

impl Record {
    /// Seconds since the first cgroup (negative before there is one).
    fn now(&self) -> f64 {
        self.t0.map_or(-1.0, |t| t.elapsed().as_secs_f64())
    }

    /// A wait happened (a new input, a hold, a sleep): later changes are a
    /// new step.
    pub fn boundary(&mut self) {
        self.segment += 1;
    }

    /// A cgroup was made.
    pub fn cgroup(&mut self, def: CgroupDef) {
        self.t0.get_or_insert_with(Instant::now);
        self.push(Change::Cgroup(def));
    }

    /// An op was carried out. A change to a cgroup made in the same
    /// segment (`cgroup("a", ..).cpuset(llc(0))`: no time passed between)
    /// becomes part of its definition.
    pub fn op(&mut self, op: Op) {
        if let Op::AddCgroup { .. } = op {
            self.t0.get_or_insert_with(Instant::now);
        }
        let segment = self.segment;
        let made_now = self
            .entries
            .iter_mut()
            .rev()
            .find_map(|e| match &mut e.change {
                Change::Cgroup(d) | Change::Op(Op::AddCgroup { cgroup: d })
                    if e.segment == segment && Some(d.name.as_str()) == target(&op) =>
                {
                    Some(d)
                }
                _ => None,
            });
        if let Some(def) = made_now {
            if fold(def, &op) {
                return;
            }
        }
        self.push(Change::Op(op));
    }

    fn push(&mut self, change: Change) {
        self.entries.push(Entry {
            secs: self.now(),
            segment: self.segment,
            change,
        });
    }

    /// The scheduler started.
    pub fn scheduler_started(&mut self, spec: SchedulerSpec) {
        if self.scheduler.is_none() {
            let started = self.now();
            self.scheduler = Some(SchedulerUse {
                spec,
                started,
                ended: None,
            });
        }
    }

    /// The scheduler ended (stopped, or died: why).
    pub fn scheduler_ended(&mut self, why: &str) {
        let at = self.now();
        if let Some(s) = self.scheduler.as_mut().filter(|s| s.ended.is_none()) {
            s.ended = Some(format!("at {at:.1} s: {}", first_line(why)));
        }
    }

    /// A claim was judged.
    pub fn claim(&mut self, c: Claim) {
        self.claims.push(c);
    }

    /// A threshold was set.
    pub fn threshold(&mut self, name: String, value: f64) {
        self.thresholds.retain(|(n, _)| *n != name);
        self.thresholds.push((name, value));
    }

    /// The live VM's topology: the saved scenario runs on the same.
    pub fn topology(&mut self, t: ktstr_topology::Topology) {
        self.topology = Some(t);
    }

    /// `scenario(..)` was called.
    pub fn name(&mut self, name: String, description: String) {
        self.name = Some((name, description));
    }

    /// The session as a scenario file.
    pub fn to_scenario(&self) -> String {
        let mut out = String::new();
        let (name, description) = self.name.clone().unwrap_or_else(|| {
            (
                "repl_session".to_string(),
                "saved from a ktstr repl session".to_string(),
            )
        });
        let _ = writeln!(
            out,
            "// Saved by `ktstr repl`: the session's cgroups and changes, on its clock."
        );
        let _ = writeln!(
            out,
            "scenario({}, {});",
            render::string(&name),
            render::string(&description)
        );
        let first = self.entries.first().map(|e| e.segment);
        let (initial, later): (Vec<&Entry>, Vec<&Entry>) = self
            .entries
            .iter()
            .partition(|e| Some(e.segment) == first && matches!(e.change, Change::Cgroup(_)));
        let length = self.now().max(1.0);
        let (steps, held) = steps(&later, length);
        // Holds are rounded to 0.1 s: the duration covers their sum.
        let duration = (length.max(held) * 10.0).ceil() / 10.0;
        let _ = writeln!(out, "duration({});", render::float(duration));
        if let Some(t) = self.topology {
            let _ = writeln!(
                out,
                "topology({}, {}, {}, {}); // the live session's",
                t.numa_nodes(),
                t.llcs(),
                t.cores_per_llc(),
                t.threads_per_core()
            );
        }
        self.write_scheduler(&mut out);
        for (n, v) in &self.thresholds {
            let _ = writeln!(
                out,
                "threshold({}, {});",
                render::string(n),
                render::float(*v)
            );
        }
        self.write_initial(&mut out, &initial);
        out += &steps;
        for c in &self.claims {
            let _ = writeln!(out, "{}", render::claim(c));
        }
        out
    }

    fn write_scheduler(&self, out: &mut String) {
        let Some(s) = &self.scheduler else { return };
        if s.started > 0.0 {
            let _ = writeln!(
                out,
                "// The session started the scheduler {:.1} s in; a scenario runs it from the start.",
                s.started
            );
        }
        if let Some(end) = &s.ended {
            let _ = writeln!(out, "// The scheduler ended {end}");
        }
        let args: Vec<String> = s.spec.args.iter().map(|a| render::string(a)).collect();
        let _ = writeln!(
            out,
            "scheduler({}, [{}]);",
            render::string(&s.spec.name),
            args.join(", ")
        );
    }

    fn write_initial(&self, out: &mut String, initial: &[&Entry]) {
        let mut vars: Vec<(String, String)> = Vec::new();
        for (i, e) in initial.iter().enumerate() {
            let Change::Cgroup(def) = &e.change else {
                continue;
            };
            let parent = def
                .parent
                .as_ref()
                .and_then(|p| vars.iter().find(|(n, _)| n == p))
                .map(|(_, v)| v.clone());
            let var = format!("c{i}");
            let _ = writeln!(
                out,
                "let {var} = {};",
                render::cgroup(def, "cgroup", parent.as_deref())
            );
            vars.push((def.name.clone(), var));
        }
    }
}

/// The later changes as steps: each segment's changes at its time,
/// holding until the next segment (the last until `length`, the session's
/// length so far); the text and the sum of the holds.
fn steps(later: &[&Entry], length: f64) -> (String, f64) {
    let mut groups: Vec<(f64, Vec<String>)> = Vec::new();
    let mut segment = None;
    for e in later {
        let text = match &e.change {
            Change::Op(op) => render::op(op),
            Change::Cgroup(def) => render::op(&Op::AddCgroup {
                cgroup: def.clone(),
            }),
        };
        if segment == Some(e.segment) {
            if let Some(g) = groups.last_mut() {
                g.1.push(text);
                continue;
            }
        }
        segment = Some(e.segment);
        groups.push((e.secs.max(0.0), vec![text]));
    }
    let mut out = String::new();
    let mut held = 0.0;
    let Some(first) = groups.first() else {
        return (out, held);
    };
    if first.0 >= 0.05 {
        held += round(first.0);
        let _ = writeln!(out, "step([], fixed({}));", render::float(round(first.0)));
    }
    for (i, (at, ops)) in groups.iter().enumerate() {
        let until = groups.get(i + 1).map_or(length, |g| g.0);
        let hold = round((until - at).max(0.1));
        held += hold;
        let _ = writeln!(
            out,
            "step([{}], fixed({}));",
            ops.join(", "),
            render::float(hold)
        );
    }
    (out, held)
}

/// The cgroup a setting op changes.
fn target(op: &Op) -> Option<&str> {
    match op {
        Op::SetCpuset { name, .. }
        | Op::ClearCpuset { name }
        | Op::SetNice { name, .. }
        | Op::SetPolicy { name, .. }
        | Op::SetAffinity { name, .. } => Some(name),
        _ => None,
    }
}

/// Applies a setting op to a definition; false for other ops.
fn fold(def: &mut CgroupDef, op: &Op) -> bool {
    match op {
        Op::SetCpuset { cpuset, .. } => def.cpuset = Some(cpuset.clone()),
        Op::ClearCpuset { .. } => def.cpuset = None,
        Op::SetNice { nice, .. } => def.nice = *nice,
        Op::SetPolicy { policy, .. } => def.policy = *policy,
        Op::SetAffinity { affinity, .. } => def.affinity = affinity.clone(),
        _ => return false,
    }
    true
}

/// Seconds to 0.1 s.
fn round(secs: f64) -> f64 {
    (secs * 10.0).round() / 10.0
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
