//! The functions registered into Rhai. Each one turns its arguments into
//! an [`Action`] for the engine's backend, so the same definitions record
//! a Plan on the host and run live in the guest.

mod cgroup;
mod claims;
pub(crate) mod def;
mod files;
mod scenario;
mod steps;
mod values;
mod work;

use std::sync::Arc;

use rhai::{Engine, EvalAltResult, NativeCallContext, Position};

pub use cgroup::CgroupHandle;
pub use claims::{Metric, Predicate as RhaiPredicate, Results, StatsScope};

use crate::backend::{Action, SharedBackend};
use crate::check::SharedFiles;
use ktstr_plan::SourcePos;

/// Result type of registered functions.
pub(crate) type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

/// What every registered function can reach.
#[derive(Clone)]
pub(crate) struct Ctx {
    backend: SharedBackend,
    /// The texts of the files being run (claim labels are cut from them).
    files: SharedFiles,
    /// The scenario's own file name.
    main: Arc<str>,
    /// The scenario's directory (relative host paths start there).
    dir: Arc<std::path::Path>,
}

impl Ctx {
    /// Where the current call is: its line and column, and its file when
    /// that is not the scenario itself (an imported file, the stdlib).
    pub(crate) fn here(&self, call: &NativeCallContext) -> SourcePos {
        let mut at = position(call.call_position());
        at.file = call
            .call_source()
            .filter(|s| !s.is_empty() && *s != &*self.main)
            .map(str::to_string);
        if at.file.is_some() {
            // The outermost script-function call started in the scenario's
            // own top level (the call stack is kept by the engine's
            // debugger, see `check::engine`).
            let outermost = call
                .debugger()
                .and_then(|d| d.call_stack().first())
                .map(|frame| Box::new(position(frame.pos)));
            at.via = outermost.filter(|p| p.line > 0);
        }
        at
    }

    /// The text of the file `at` is in.
    pub(crate) fn text_at(&self, at: &SourcePos) -> Option<Arc<str>> {
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .text(at.file_or(&self.main))
    }

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

/// A Rhai position as ours (0s when unknown), in the scenario's file.
pub(crate) fn position(p: Position) -> SourcePos {
    SourcePos {
        line: p.line().unwrap_or(0),
        col: p.position().unwrap_or(0),
        file: None,
        via: None,
    }
}

/// An array of strings (`what`: "scheduler arguments", ...), or an error
/// naming the first element of another type.
pub(crate) fn strings(what: &str, a: rhai::Array) -> RhaiResult<Vec<String>> {
    a.into_iter()
        .map(|v| {
            v.into_immutable_string()
                .map(|s| s.to_string())
                .or_else(|t| fail(format!("{what} must be strings, not {t}")))
        })
        .collect()
}

/// The elements of an array of `T` values, or an error that says what
/// the function `takes` and the type of the first element that is not one.
pub(crate) fn items<T: Clone + 'static>(a: rhai::Array, takes: &str) -> RhaiResult<Vec<T>> {
    a.into_iter()
        .map(|v| {
            let t = v.type_name();
            v.try_cast::<T>()
                .map_or_else(|| fail(format!("{takes}, not {t}")), Ok)
        })
        .collect()
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
/// `backend`. `files` holds the texts of the scenario (named `main`) and
/// what it imports: claim labels are cut from them. Host paths a script
/// names (`guest_file`) are relative to `dir`.
pub fn register(
    engine: &mut Engine,
    backend: SharedBackend,
    files: SharedFiles,
    main: &str,
    dir: &std::path::Path,
) {
    register_types(engine);
    let ctx = Ctx {
        backend,
        files,
        main: Arc::from(main),
        dir: Arc::from(dir),
    };
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
        .register_type_with_name::<ktstr_plan::cpuset::CpusetSpec>("Cpuset")
        .register_type_with_name::<ktstr_plan::policy::Policy>("Policy")
        .register_type_with_name::<ktstr_plan::policy::Affinity>("Affinity")
        .register_type_with_name::<ktstr_plan::work::Work>("Work")
        .register_type_with_name::<ktstr_plan::work::Phase>("Phase")
        .register_type_with_name::<ktstr_plan::work::CustomStep>("CustomStep")
        .register_type_with_name::<ktstr_plan::Op>("Op")
        .register_type_with_name::<ktstr_plan::Hold>("Hold")
        .register_type_with_name::<Results>("Results")
        .register_type_with_name::<StatsScope>("Stats")
        .register_type_with_name::<Metric>("Metric")
        .register_type_with_name::<RhaiPredicate>("Predicate");
}
