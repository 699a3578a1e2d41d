//! The Rhai engine scripts run in: the ktstr API, the stdlib module,
//! strict variables and limits so a runaway script fails cleanly, imports
//! that cannot recurse, and `print`/`debug` captured instead of written to
//! the host's stdout.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, Module, OptimizationLevel, Scope};
use serde::Serialize;

use super::files::{ScriptFiles, SharedFiles, STDLIB_FILE};
use super::imports::Imports;
use crate::backend::{Recorder, SharedBackend};

/// Evaluation limits.
pub const MAX_OPERATIONS: u64 = 2_000_000;
/// Nested function calls.
pub const MAX_CALL_LEVELS: usize = 48;
/// Bytes in one string.
pub const MAX_STRING: usize = 64 * 1024;
/// Items in one array or map.
pub const MAX_COLLECTION: usize = 10_000;
/// Default wall-clock limit for evaluating one script.
pub const MAX_WALL: Duration = Duration::from_secs(2);
/// The name scripts import the stdlib by.
pub const STDLIB_NAME: &str = "ktstr";
/// Lines of `print`/`debug` output kept per check; the rest are counted.
pub const MAX_PRINTED: usize = 1000;

/// One line a script printed with `print(...)` or `debug(...)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Printed {
    /// The text.
    pub text: String,
    /// `file:line:col` of a `debug(...)` call (Rhai gives `print` none).
    pub at: Option<String>,
}

/// What a script printed, bounded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScriptOutput {
    /// The lines kept.
    pub lines: Vec<Printed>,
    /// Lines dropped beyond [`MAX_PRINTED`].
    pub dropped: usize,
}

impl ScriptOutput {
    fn push(&mut self, p: Printed) {
        if self.lines.len() < MAX_PRINTED {
            self.lines.push(p);
        } else {
            self.dropped += 1;
        }
    }
}

/// Where a check's engine puts what it reads and prints.
#[derive(Clone)]
pub struct Sinks {
    /// Every file read (scenario, imports, stdlib).
    pub files: SharedFiles,
    /// `print`/`debug` output.
    pub output: Arc<Mutex<ScriptOutput>>,
}

impl Sinks {
    /// Sinks holding `main`'s `text` and the stdlib.
    pub fn new(main: &str, text: &str) -> Self {
        let mut files = ScriptFiles::default();
        files.add(main, text);
        files.add(STDLIB_FILE, crate::STDLIB);
        Sinks {
            files: Arc::new(Mutex::new(files)),
            output: Arc::default(),
        }
    }
}

/// An engine with the ktstr API sending actions to `backend`, imports
/// relative to `script_dir` (the scenario is `main`), and a deadline of
/// `wall` from now.
pub fn build(
    backend: SharedBackend,
    sinks: &Sinks,
    main: &str,
    script_dir: &Path,
    wall: Duration,
) -> Engine {
    let mut engine = Engine::new();
    engine
        .set_strict_variables(true)
        .set_optimization_level(OptimizationLevel::None)
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(64, 48)
        .set_max_string_size(MAX_STRING)
        .set_max_array_size(MAX_COLLECTION)
        .set_max_map_size(MAX_COLLECTION)
        .set_max_modules(16)
        .set_max_variables(10_000)
        .set_max_functions(1_000);
    // `eval` runs text the checks cannot see, at positions of its own.
    engine.disable_symbol("eval");
    crate::api::register(&mut engine, backend, sinks.files.clone(), main, script_dir);
    let start = Instant::now();
    engine
        .on_progress(move |_| (start.elapsed() > wall).then(|| Dynamic::from(format!("{wall:?}"))));
    capture_output(&mut engine, sinks, main);
    keep_call_stack(&mut engine);
    let stdlib = stdlib_module(&engine).ok();
    let imports = Imports::new(STDLIB_NAME, stdlib, script_dir, sinks.files.clone());
    imports.enter(main);
    engine.set_module_resolver(imports);
    engine
}

fn capture_output(engine: &mut Engine, sinks: &Sinks, main: &str) {
    let out = sinks.output.clone();
    engine.on_print(move |text| {
        let p = Printed {
            text: text.to_string(),
            at: None,
        };
        out.lock().unwrap_or_else(|p| p.into_inner()).push(p);
    });
    let out = sinks.output.clone();
    let main = main.to_string();
    engine.on_debug(move |text, source, pos| {
        let file = source.unwrap_or(&main);
        let at = pos
            .line()
            .map(|l| format!("{file}:{l}:{}", pos.position().unwrap_or(0)));
        let p = Printed {
            text: text.to_string(),
            at,
        };
        out.lock().unwrap_or_else(|p| p.into_inner()).push(p);
    });
}

/// Has the engine keep its call stack, so a position inside an imported
/// function can name the scenario's call that led there. The debugger
/// never stops: it only records frames.
#[allow(deprecated)] // Rhai marks the debugger interface as volatile.
fn keep_call_stack(engine: &mut Engine) {
    engine.register_debugger(
        |_, debugger| debugger,
        |_, _, _, _, _| Ok(rhai::debugger::DebuggerCommand::Continue),
    );
}

/// The stdlib as a module whose functions report positions in
/// [`STDLIB_FILE`].
fn stdlib_module(engine: &Engine) -> Result<Arc<Module>, String> {
    let mut ast = engine.compile(crate::STDLIB).map_err(|e| e.to_string())?;
    ast.set_source(STDLIB_FILE);
    let mut module =
        Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(|e| e.to_string())?;
    module.set_id(STDLIB_FILE);
    Ok(module.into())
}

/// An engine for generating definitions (actions are recorded and dropped).
pub fn for_definitions() -> Engine {
    let backend: SharedBackend = Arc::new(Mutex::new(Recorder::default()));
    build(backend, &Sinks::new("", ""), "", Path::new("."), MAX_WALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdlib_compiles() {
        let engine = for_definitions();
        stdlib_module(&engine).expect("stdlib.rhai evaluates as a module");
    }
}
