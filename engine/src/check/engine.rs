//! The Rhai engine scripts run in: the ktstr API, the stdlib module,
//! strict variables and limits so a runaway script fails cleanly.

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rhai::module_resolvers::{FileModuleResolver, ModuleResolversCollection, StaticModuleResolver};
use rhai::{Dynamic, Engine, Module, OptimizationLevel, Scope, AST};

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

/// An engine with the ktstr API sending actions to `backend`, relative
/// imports resolved from `script_dir`, and a deadline of `wall` from now.
pub fn build(
    backend: SharedBackend,
    source: Arc<str>,
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
    crate::api::register(&mut engine, backend, source);
    let start = Instant::now();
    engine
        .on_progress(move |_| (start.elapsed() > wall).then(|| Dynamic::from(format!("{wall:?}"))));
    let mut resolvers = ModuleResolversCollection::new();
    let mut statics = StaticModuleResolver::new();
    if let Ok(module) = stdlib_module(&engine) {
        statics.insert(STDLIB_NAME, module);
    }
    resolvers.push(statics);
    resolvers.push(FileModuleResolver::new_with_path(script_dir));
    engine.set_module_resolver(resolvers);
    engine
}

/// The stdlib compiled once per process.
fn stdlib_ast(engine: &Engine) -> Result<&'static AST, String> {
    static AST_CELL: OnceLock<Result<AST, String>> = OnceLock::new();
    AST_CELL
        .get_or_init(|| engine.compile(crate::STDLIB).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(Clone::clone)
}

fn stdlib_module(engine: &Engine) -> Result<Module, String> {
    let ast = stdlib_ast(engine)?;
    Module::eval_ast_as_new(Scope::new(), ast, engine).map_err(|e| e.to_string())
}

/// An engine for generating definitions (actions are recorded and dropped).
pub fn for_definitions() -> Engine {
    let backend: SharedBackend = Arc::new(std::sync::Mutex::new(Recorder::default()));
    build(backend, Arc::from(""), Path::new("."), MAX_WALL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdlib_compiles() {
        let engine = for_definitions();
        stdlib_ast(&engine).expect("stdlib.rhai compiles");
        stdlib_module(&engine).expect("stdlib.rhai evaluates as a module");
    }
}
