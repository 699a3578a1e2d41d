//! `import "..."`: the stdlib by its name, script files relative to the
//! importing file. Each file is read once per check (capped like the
//! scenario), its text kept for diagnostics, and evaluated once even when
//! several files import it; an import cycle or a chain deeper than
//! [`MAX_IMPORT_DEPTH`] is an error at the `import`, never a stack
//! overflow.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rhai::module_resolvers::ModuleResolver;
use rhai::{Engine, EvalAltResult, Module, Position, Scope};

use super::files::{read_script, SharedFiles, STDLIB_FILE};

/// How many files may be in the middle of importing each other.
pub const MAX_IMPORT_DEPTH: usize = 8;

type ImportResult = Result<Arc<Module>, Box<EvalAltResult>>;

/// The module resolver of one check.
pub struct Imports {
    stdlib_name: &'static str,
    stdlib: Option<Arc<Module>>,
    script_dir: PathBuf,
    files: SharedFiles,
    loaded: Mutex<HashMap<PathBuf, Arc<Module>>>,
    importing: Mutex<Vec<(PathBuf, String)>>,
}

impl Imports {
    /// A resolver serving `stdlib` as `stdlib_name`, and files relative to
    /// the importing file (or `script_dir` for the scenario itself).
    pub fn new(
        stdlib_name: &'static str,
        stdlib: Option<Arc<Module>>,
        script_dir: &Path,
        files: SharedFiles,
    ) -> Self {
        Imports {
            stdlib_name,
            stdlib,
            script_dir: script_dir.to_path_buf(),
            files,
            loaded: Mutex::new(HashMap::new()),
            importing: Mutex::new(Vec::new()),
        }
    }

    /// Marks the scenario `main` as being imported, so a file importing it
    /// back is a cycle.
    pub fn enter(&self, main: &str) {
        let key = std::fs::canonicalize(main).unwrap_or_else(|_| PathBuf::from(main));
        lock(&self.importing).push((key, main.to_string()));
    }

    fn file_for(&self, source: Option<&str>, path: &str) -> PathBuf {
        let base = source
            .filter(|s| *s != STDLIB_FILE)
            .and_then(|s| Path::new(s).parent())
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(&self.script_dir);
        let mut file = if base == Path::new(".") {
            PathBuf::from(path)
        } else {
            base.join(path)
        };
        if file.extension().is_none() {
            file.set_extension("rhai");
        }
        file
    }

    fn load(&self, engine: &Engine, file: &Path, key: PathBuf, pos: Position) -> ImportResult {
        let shown = file.display().to_string();
        let in_module = |e: Box<EvalAltResult>| EvalAltResult::ErrorInModule(shown.clone(), e, pos);
        let text = read_script(file).map_err(|why| {
            in_module(EvalAltResult::ErrorRuntime(why.into(), Position::NONE).into())
        })?;
        self.files
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(&shown, &text);
        let mut ast = engine.compile(&text).map_err(|e| in_module(e.into()))?;
        ast.set_source(shown.as_str());
        lock(&self.importing).push((key.clone(), shown.clone()));
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine);
        lock(&self.importing).pop();
        let mut module = module.map_err(in_module)?;
        module.set_id(shown.as_str());
        let module: Arc<Module> = module.into();
        lock(&self.loaded).insert(key, module.clone());
        Ok(module)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn refused(msg: String, pos: Position) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(msg.into(), pos).into()
}

impl ModuleResolver for Imports {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> ImportResult {
        if path == self.stdlib_name {
            return self
                .stdlib
                .clone()
                .ok_or_else(|| refused("the stdlib did not load".into(), pos));
        }
        let file = self.file_for(source, path);
        let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
        if let Some(m) = lock(&self.loaded).get(&key) {
            return Ok(m.clone());
        }
        let chain: Vec<String> = lock(&self.importing)
            .iter()
            .map(|(_, shown)| shown.clone())
            .collect();
        let cycle_at = lock(&self.importing).iter().position(|(k, _)| *k == key);
        if let Some(i) = cycle_at {
            let mut shown: Vec<String> = chain[i..].to_vec();
            shown.push(file.display().to_string());
            return Err(refused(
                format!("import cycle: {}", shown.join(" -> ")),
                pos,
            ));
        }
        if chain.len() >= MAX_IMPORT_DEPTH {
            return Err(refused(
                format!("imports nest deeper than {MAX_IMPORT_DEPTH} files"),
                pos,
            ));
        }
        self.load(engine, &file, key, pos)
    }
}
