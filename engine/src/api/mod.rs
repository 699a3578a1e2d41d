//! The functions registered into Rhai. Each one turns its arguments into
//! an [`Action`] for the engine's backend, so the same definitions record
//! a Plan on the host and run live in the guest.

mod cgroup;
mod claims;
mod scenario;
mod steps;
mod work;

use std::sync::Arc;

use rhai::{Engine, EvalAltResult, NativeCallContext, Position};

pub use cgroup::CgroupHandle;
pub use claims::{Metric, Predicate as RhaiPredicate, Results, StatsScope};

use crate::backend::{Action, SharedBackend};
use crate::plan::SourcePos;

/// Result type of registered functions.
pub(crate) type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// What every registered function can reach.
#[derive(Clone)]
pub(crate) struct Ctx {
    backend: SharedBackend,
    source: Arc<str>,
}

impl Ctx {
    /// Passes `action` to the backend; its error becomes a script error.
    fn apply(&self, action: Action) -> RhaiResult<()> {
        self.backend
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(action)
            .map_err(|e| e.into())
    }
}

/// A script error with `msg` (reported at the call).
pub(crate) fn fail<T>(msg: impl Into<String>) -> RhaiResult<T> {
    Err(msg.into().into())
}

/// The 1-based position of the current call.
pub(crate) fn here(ctx: &NativeCallContext) -> SourcePos {
    position(ctx.call_position())
}

/// A Rhai position as ours (0s when unknown).
pub(crate) fn position(p: Position) -> SourcePos {
    SourcePos {
        line: p.line().unwrap_or(0),
        col: p.position().unwrap_or(0),
    }
}

/// A non-negative integer argument as u32, or an error naming `what`.
pub(crate) fn count(what: &str, v: i64) -> RhaiResult<u32> {
    u32::try_from(v).or_else(|_| {
        fail(format!(
            "{what} must be between 0 and {}, not {v}",
            u32::MAX
        ))
    })
}

/// Registers every ktstr function into `engine`, sending actions to
/// `backend`. `source` is the script text (claim labels are cut from it).
pub fn register(engine: &mut Engine, backend: SharedBackend, source: Arc<str>) {
    register_types(engine);
    let ctx = Ctx { backend, source };
    scenario::register(engine, &ctx);
    cgroup::register(engine, &ctx);
    work::register(engine);
    steps::register(engine, &ctx);
    claims::register(engine, &ctx);
}

/// Script-visible names of the API's types; registered before any
/// function so signatures and definitions show these names.
fn register_types(engine: &mut Engine) {
    engine
        .register_type_with_name::<CgroupHandle>("Cgroup")
        .register_type_with_name::<crate::cpuset::CpusetSpec>("Cpuset")
        .register_type_with_name::<crate::policy::Policy>("Policy")
        .register_type_with_name::<crate::policy::Affinity>("Affinity")
        .register_type_with_name::<crate::work::Work>("Work")
        .register_type_with_name::<crate::work::Phase>("Phase")
        .register_type_with_name::<crate::plan::Op>("Op")
        .register_type_with_name::<crate::plan::Hold>("Hold")
        .register_type_with_name::<claims::Results>("Results")
        .register_type_with_name::<StatsScope>("Stats")
        .register_type_with_name::<Metric>("Metric")
        .register_type_with_name::<RhaiPredicate>("Predicate");
}
