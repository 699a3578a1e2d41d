//! Checking a script before anything boots: compile (strict variables),
//! static call checks, evaluation under limits into a Plan, and Plan
//! validation. Every problem is a [`Diagnostic`] with file, line, column.

pub(crate) mod ast_check;
pub(crate) mod engine;
pub(crate) mod errors;
mod files;
mod imports;
pub(crate) mod signatures;
mod validate;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ktstr_topology::Topology;

use crate::backend::{Recorder, SharedBackend};
use crate::diag::Diagnostic;
use ktstr_plan::Plan;

pub use engine::{Printed, ScriptOutput, MAX_PRINTED, MAX_WALL, STDLIB_NAME};
pub use files::{read_script, strip_bom, ScriptFiles, SharedFiles, MAX_SCRIPT_BYTES, STDLIB_FILE};
pub use imports::MAX_IMPORT_DEPTH;
pub use signatures::{pretty as pretty_signature, Signatures};
pub use validate::{MAX_CGROUPS, MAX_STEPS, MAX_TOTAL_WORKERS, MAX_WORKERS};

/// Tells whether a scheduler name can be found: `Err` says why not.
pub type SchedulerLookup = Arc<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

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
    /// Every file the check read (the script, its imports, the stdlib).
    pub files: ScriptFiles,
    /// The Plan, when evaluation got that far.
    pub plan: Option<Plan>,
    /// Every problem found; empty when the script is clean.
    pub diagnostics: Vec<Diagnostic>,
    /// What the script printed with `print`/`debug`.
    pub output: ScriptOutput,
}

impl Checked {
    fn new(file: &str, source: &str) -> Self {
        Checked {
            file: file.to_string(),
            source: source.to_string(),
            files: ScriptFiles::default(),
            plan: None,
            diagnostics: Vec::new(),
            output: ScriptOutput::default(),
        }
    }

    /// No problems and a Plan.
    pub fn is_clean(&self) -> bool {
        self.diagnostics.is_empty() && self.plan.is_some()
    }

    /// Every diagnostic rendered with the line of the file it is in.
    pub fn render(&self) -> String {
        self.diagnostics
            .iter()
            .map(|d| match self.files.text(&d.file) {
                Some(text) => d.render(&text),
                None if d.file == self.file => d.render(&self.source),
                None => d.render(""),
            })
            .collect()
    }
}

/// Checks the script at `path` (at most [`MAX_SCRIPT_BYTES`], UTF-8).
pub fn check_file(path: &Path, opts: &CheckOptions) -> Checked {
    let file = path.display().to_string();
    match read_script(path) {
        Ok(source) => check_source(&file, &source, path.parent(), opts),
        Err(why) => {
            let mut c = Checked::new(&file, "");
            c.diagnostics.push(Diagnostic::new(&file, 0, 0, why));
            c
        }
    }
}

/// Checks `source`, named `file`, with imports relative to `dir`.
pub fn check_source(file: &str, source: &str, dir: Option<&Path>, opts: &CheckOptions) -> Checked {
    let source = strip_bom(source);
    let mut checked = Checked::new(file, source);
    let recorder = Arc::new(Mutex::new(Recorder::default()));
    let sinks = engine::Sinks::new(file, source);
    let dir = dir
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let engine = engine::build(recorder.clone(), &sinks, file, dir, opts.max_wall);
    checked.diagnostics = evaluate(&engine, file, source);
    checked.files = lock(&sinks.files).clone();
    checked.output = lock(&sinks.output).clone();
    if !checked.diagnostics.is_empty() {
        dedup(&mut checked.diagnostics);
        return checked;
    }
    let rec = lock(&recorder);
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
    dedup(&mut checked.diagnostics);
    checked
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Compiles, checks the calls, and runs `source` on `engine`: the
/// diagnostics (empty when it ran to the end).
fn evaluate(engine: &rhai::Engine, file: &str, source: &str) -> Vec<Diagnostic> {
    let sigs = signatures(engine);
    let mut ast = match engine.compile(source) {
        Ok(ast) => ast,
        Err(e) => return vec![errors::parse_error(file, &e)],
    };
    ast.set_source(file);
    let found = ast_check::check(&ast, sigs, file);
    if !found.is_empty() {
        return found;
    }
    match engine.run_ast(&ast) {
        Ok(()) => Vec::new(),
        Err(e) => vec![errors::eval_error(file, &e, sigs)],
    }
}

/// Drops repeats of the same message at the same place, keeping order.
fn dedup(diagnostics: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::HashSet::new();
    diagnostics.retain(|d| seen.insert((d.file.clone(), d.line, d.col, d.message.clone())));
}

/// Runs `source` against any backend, with the same checks and limits as
/// [`check_source`] but no Plan: each API call reaches `backend` as it
/// happens. This is how the guest runs the API live (the REPL). Returns
/// what the script printed.
pub fn run_with_backend(
    file: &str,
    source: &str,
    backend: SharedBackend,
    opts: &CheckOptions,
) -> Result<ScriptOutput, Diagnostic> {
    let source = strip_bom(source);
    let sinks = engine::Sinks::new(file, source);
    let engine = engine::build(backend, &sinks, file, Path::new("."), opts.max_wall);
    match evaluate(&engine, file, source).into_iter().next() {
        Some(d) => Err(d),
        None => Ok(lock(&sinks.output).clone()),
    }
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
