//! Checking a script before anything boots: compile (strict variables),
//! static call checks, evaluation under limits into a Plan, and Plan
//! validation. Every problem is a [`Diagnostic`] with file, line, column.

mod ast_check;
mod engine;
mod errors;
mod signatures;
mod validate;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ktstr_topology::Topology;

use crate::backend::{Recorder, SharedBackend};
use crate::diag::Diagnostic;
use crate::plan::Plan;

pub use engine::{MAX_WALL, STDLIB_NAME};
pub use signatures::{pretty as pretty_signature, Signatures};

/// Every signature of `sigs`, prettified.
pub fn signatures_pretty(sigs: &Signatures) -> Vec<String> {
    sigs.all_shown()
}

/// Tells whether a scheduler name can be found.
pub type SchedulerLookup = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// How to check.
#[derive(Clone)]
pub struct CheckOptions {
    /// Validate against this topology instead of the script's own.
    pub topology: Option<Topology>,
    /// When given, a scheduler it does not find is an error.
    pub scheduler_exists: Option<SchedulerLookup>,
    /// How long evaluation may take.
    pub max_wall: Duration,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            topology: None,
            scheduler_exists: None,
            max_wall: MAX_WALL,
        }
    }
}

/// The result of checking one script.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The script file.
    pub file: String,
    /// Its text.
    pub source: String,
    /// The Plan, when evaluation got that far.
    pub plan: Option<Plan>,
    /// Every problem found; empty when the script is clean.
    pub diagnostics: Vec<Diagnostic>,
}

impl Checked {
    /// No problems and a Plan.
    pub fn is_clean(&self) -> bool {
        self.diagnostics.is_empty() && self.plan.is_some()
    }

    /// Every diagnostic rendered with its source line.
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(&self.source))
            .collect()
    }
}

/// Checks the script at `path`.
pub fn check_file(path: &Path, opts: &CheckOptions) -> Checked {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(source) => check_source(&file, &source, path.parent(), opts),
        Err(e) => Checked {
            diagnostics: vec![Diagnostic::new(&file, 0, 0, format!("cannot read: {e}"))],
            file,
            source: String::new(),
            plan: None,
        },
    }
}

/// Checks `source`, named `file`, with imports relative to `dir`.
pub fn check_source(file: &str, source: &str, dir: Option<&Path>, opts: &CheckOptions) -> Checked {
    let mut checked = Checked {
        file: file.to_string(),
        source: source.to_string(),
        plan: None,
        diagnostics: Vec::new(),
    };
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let backend: SharedBackend = recorder.clone();
    let dir = dir.unwrap_or(Path::new("."));
    let engine = engine::build(backend, Arc::from(source), dir, opts.max_wall);
    let sigs = signatures(&engine);
    let ast = match engine.compile(source) {
        Ok(ast) => ast,
        Err(e) => {
            checked.diagnostics.push(errors::parse_error(file, &e));
            return checked;
        }
    };
    checked.diagnostics = ast_check::check(&ast, sigs, file);
    if !checked.diagnostics.is_empty() {
        return checked;
    }
    if let Err(e) = engine.run_ast(&ast) {
        checked.diagnostics.push(errors::eval_error(file, &e, sigs));
        return checked;
    }
    let rec = recorder.lock().unwrap_or_else(|p| p.into_inner());
    if rec.mixes_topology_kinds() {
        checked.diagnostics.push(Diagnostic::new(
            file,
            1,
            1,
            "both topology(...) and topology constraints are used; choose one",
        ));
    }
    match rec.finish(file) {
        Some(plan) => {
            checked
                .diagnostics
                .extend(validate::validate(&plan, opts, file));
            checked.plan = Some(plan);
        }
        None => checked.diagnostics.push(
            Diagnostic::new(
                file,
                1,
                1,
                "the script never calls scenario(name, description)",
            )
            .with_help("start the script with scenario(\"my_test\", \"what it checks\");"),
        ),
    }
    checked
}

/// Runs `source` against any backend, with the same checks and limits as
/// [`check_source`] but no Plan: each API call reaches `backend` as it
/// happens. This is how the guest runs the API live (the REPL).
pub fn run_with_backend(
    file: &str,
    source: &str,
    backend: SharedBackend,
    opts: &CheckOptions,
) -> Result<(), Diagnostic> {
    let engine = engine::build(backend, Arc::from(source), Path::new("."), opts.max_wall);
    let sigs = signatures(&engine);
    let ast = engine
        .compile(source)
        .map_err(|e| errors::parse_error(file, &e))?;
    if let Some(d) = ast_check::check(&ast, sigs, file).into_iter().next() {
        return Err(d);
    }
    engine
        .run_ast(&ast)
        .map_err(|e| errors::eval_error(file, &e, sigs))
}

/// The API's signatures, read from the first engine built (every engine
/// registers the same functions).
fn signatures(engine: &rhai::Engine) -> &'static Signatures {
    static SIGS: std::sync::OnceLock<Signatures> = std::sync::OnceLock::new();
    SIGS.get_or_init(|| Signatures::of(engine))
}

/// An engine with the full API, for `.d.rhai` generation.
pub(crate) fn engine_for_definitions() -> rhai::Engine {
    engine::for_definitions()
}
