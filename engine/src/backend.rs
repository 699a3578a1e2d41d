//! One API, two backends: every function a script calls becomes an
//! [`Action`] handed to a [`ScenarioBackend`]. On the host the
//! [`Recorder`] collects actions into a [`Plan`]; inside the guest a live
//! backend executes them as they come (the REPL).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use ktstr_plan::claims::Claim;
use ktstr_plan::{
    CgroupDef, KernelReq, Plan, SchedulerSpec, SourcePos, Step, TopologyConstraints, TopologyReq,
    DEFAULT_DURATION_S,
};

/// One thing a script asked for.
#[derive(Debug, Clone)]
pub enum Action {
    /// `scenario(name, description)`.
    Scenario {
        /// Name.
        name: String,
        /// Description.
        description: String,
        /// Where.
        at: SourcePos,
    },
    /// `duration(secs)`.
    Duration(f64),
    /// `topology(n, l, c, t)`.
    Topology(ktstr_topology::Topology),
    /// A constraint setter (`min_llcs(2)`, ...), applied to the current
    /// constraints.
    Constrain {
        /// The script function that sets it (`min_llcs`).
        name: &'static str,
        /// Sets the bound.
        set: fn(&mut TopologyConstraints, u32),
        /// The bound.
        value: u32,
        /// Where the script set it.
        at: SourcePos,
    },
    /// `scheduler(name, args)`.
    Scheduler(SchedulerSpec),
    /// `threshold(name, value)`.
    Threshold(String, f64),
    /// `kernel_min(version)`.
    KernelMin(String),
    /// `kernel_config(option)`.
    KernelConfig(String),
    /// `expect_fail(reason)`.
    ExpectFail(ktstr_plan::ExpectFail),
    /// A new cgroup that exists from the start. Its name is its identity:
    /// a second definition of the same name is a duplicate.
    Cgroup(CgroupDef),
    /// A new definition of the cgroup of the same name (a handle's
    /// `.cpuset(...)`, `.nice(...)`, ...).
    UpdateCgroup(CgroupDef),
    /// A step: ops then hold.
    Step(Step),
    /// A claim.
    Claim(Claim),
    /// `guest_file(path)`: a host file to ship into the guest.
    ShipFile(ktstr_plan::ShippedFile),
}

/// Where actions go.
pub trait ScenarioBackend: Send {
    /// Takes one action; an error is reported at the script's call.
    fn apply(&mut self, action: Action) -> Result<(), String>;
}

/// A backend shared by every registered function of one engine.
pub type SharedBackend = Arc<Mutex<dyn ScenarioBackend>>;

/// Collects actions into a plan.
#[derive(Debug, Default)]
pub struct Recorder {
    scenario: Option<(String, String, SourcePos)>,
    duration_s: Option<f64>,
    fixed: Option<ktstr_topology::Topology>,
    constraints: TopologyConstraints,
    constrained: bool,
    scheduler: Option<SchedulerSpec>,
    thresholds: BTreeMap<String, f64>,
    kernel: KernelReq,
    cgroups: Vec<CgroupDef>,
    /// Name to the index of its newest definition in `cgroups`.
    cgroup_index: HashMap<String, usize>,
    steps: Vec<Step>,
    claims: Vec<Claim>,
    expect_fail: Option<ktstr_plan::ExpectFail>,
    files: Vec<ktstr_plan::ShippedFile>,
}

impl ScenarioBackend for Recorder {
    fn apply(&mut self, action: Action) -> Result<(), String> {
        match action {
            Action::Scenario {
                name,
                description,
                at,
            } => {
                if self.scenario.is_some() {
                    return Err("scenario(...) is called twice".into());
                }
                self.scenario = Some((name, description, at));
            }
            Action::Duration(s) => self.duration_s = Some(s),
            Action::Topology(t) => self.fixed = Some(t),
            Action::Constrain {
                name,
                set,
                value,
                at,
            } => {
                set(&mut self.constraints, value);
                self.constraints.at.insert(name.to_string(), at);
                self.constrained = true;
            }
            Action::Scheduler(s) => self.scheduler = Some(s),
            Action::Threshold(k, v) => {
                self.thresholds.insert(k, v);
            }
            Action::KernelMin(v) => self.kernel.min_version = Some(v),
            Action::KernelConfig(o) => self.kernel.config.push(o),
            Action::ExpectFail(e) => {
                if self.expect_fail.is_some() {
                    return Err("expect_fail(...) is called twice".into());
                }
                self.expect_fail = Some(e);
            }
            Action::Cgroup(def) => {
                self.cgroup_index
                    .insert(def.name.clone(), self.cgroups.len());
                self.cgroups.push(def);
            }
            Action::UpdateCgroup(def) => match self.cgroup_index.get(&def.name) {
                Some(&i) => self.cgroups[i] = def,
                None => return Err(format!("no cgroup `{}` to change", def.name)),
            },
            Action::Step(s) => self.steps.push(s),
            Action::Claim(c) => self.claims.push(c),
            Action::ShipFile(f) => ktstr_plan::ShippedFile::add_to(&mut self.files, f)?,
        }
        Ok(())
    }
}

impl Recorder {
    /// Whether `topology(...)` and constraints were both used.
    pub fn mixes_topology_kinds(&self) -> bool {
        self.fixed.is_some() && self.constrained
    }

    /// The plan recorded for `source`; None if `scenario(...)` never ran.
    pub fn finish(&self, source: &str) -> Option<Plan> {
        let (name, description, _) = self.scenario.clone()?;
        let topology = match self.fixed {
            Some(topology) => TopologyReq::Fixed { topology },
            None => TopologyReq::Constraints(self.constraints.clone()),
        };
        Some(Plan {
            engine_version: crate::ENGINE_VERSION.to_string(),
            source: source.to_string(),
            name,
            description,
            duration_s: self.duration_s.unwrap_or(DEFAULT_DURATION_S),
            topology,
            scheduler: self.scheduler.clone(),
            thresholds: self.thresholds.clone(),
            kernel: self.kernel.clone(),
            cgroups: self.cgroups.clone(),
            steps: self.steps.clone(),
            claims: self.claims.clone(),
            expect_fail: self.expect_fail.clone(),
            files: self.files.clone(),
        })
    }
}
