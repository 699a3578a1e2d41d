//! `ktstr repl`'s interpreter: the scenario API and the same checks as
//! files, evaluated one input at a time against a live guest. Each call
//! is carried out at once ([`backend::LiveBackend`]); variables and
//! functions persist across inputs; an error reports its line and column
//! and the session goes on; Ctrl-C ([`Repl::interrupt_flag`]) ends the
//! running statement, not the session. The engine knows no VM: the guest
//! is any [`LiveGuest`].

pub mod backend;
mod functions;
pub mod input;
mod record;
pub mod render;
mod values;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rhai::{Dynamic, Engine, Scope, AST};

use crate::check::engine::{build, Sinks};
use crate::check::signatures::Signatures;
use crate::check::{ast_check, errors};
use crate::diag::Diagnostic;
use backend::LiveBackend;
use ktstr_plan::live::LiveGuest;

pub use functions::HelpIndex;

/// The name inputs typed at the prompt are reported under.
pub const INPUT_NAME: &str = "input";

/// The answer to one input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// The input's value as text (None for `()`).
    pub value: Option<String>,
    /// The value as JSON (`null` for `()`; text for values JSON cannot
    /// hold).
    pub json: serde_json::Value,
    /// What the statement did and what the guest reported meanwhile
    /// (claims judged, a scheduler that died), one line each.
    pub notes: Vec<String>,
    /// What the input printed with `print`/`debug`.
    pub printed: Vec<String>,
}

/// A failed input: the diagnostic, and the notes of what it did before it
/// failed.
#[derive(Debug, Clone)]
pub struct ReplError {
    /// Where and why (rendered with [`ReplError::render`]).
    pub diagnostic: Box<Diagnostic>,
    /// The input's text, for rendering.
    pub source: String,
    /// What happened before the error.
    pub notes: Vec<String>,
}

impl ReplError {
    /// The diagnostic with the input's line under it.
    pub fn render(&self) -> String {
        self.diagnostic.render(&self.source)
    }
}

/// A live REPL session.
pub struct Repl {
    engine: Engine,
    scope: Scope<'static>,
    /// Functions defined by earlier inputs.
    lib: AST,
    sigs: Signatures,
    sinks: Sinks,
    backend: Arc<Mutex<LiveBackend>>,
    interrupt: Arc<AtomicBool>,
    exit: Arc<AtomicBool>,
    help: Arc<HelpIndex>,
}

impl Repl {
    /// A session driving `guest`; imports resolve relative to `dir`;
    /// setting `interrupt` (Ctrl-C) ends the running input early.
    pub fn new(guest: Box<dyn LiveGuest>, dir: &Path, interrupt: Arc<AtomicBool>) -> Self {
        let exit = Arc::new(AtomicBool::new(false));
        let backend = Arc::new(Mutex::new(LiveBackend::new(guest, Arc::clone(&interrupt))));
        let sinks = Sinks::new(INPUT_NAME, "");
        let mut engine = build(
            backend.clone(),
            &sinks,
            INPUT_NAME,
            dir,
            std::time::Duration::MAX,
        );
        engine.set_max_operations(0);
        let flag = Arc::clone(&interrupt);
        engine.on_progress(move |_| {
            flag.load(Ordering::SeqCst)
                .then(|| Dynamic::from("interrupted (Ctrl-C)"))
        });
        let help = Arc::new(HelpIndex::default());
        functions::register(&mut engine, &backend, &exit, &help);
        help.fill(&engine);
        let sigs = Signatures::of(&engine);
        Repl {
            engine,
            scope: Scope::new(),
            lib: AST::empty(),
            sigs,
            sinks,
            backend,
            interrupt,
            exit,
            help,
        }
    }

    /// Set it (from a signal handler) to interrupt the running input.
    pub fn interrupt_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.interrupt)
    }

    /// Whether `exit()` was called.
    pub fn exit_requested(&self) -> bool {
        self.exit.load(Ordering::SeqCst)
    }

    /// Every name completion can offer: the API's functions and the
    /// session's variables and functions.
    pub fn names(&self) -> Vec<String> {
        let mut names = self.help.names();
        names.extend(self.scope.iter_raw().map(|(n, ..)| n.to_string()));
        names.extend(self.lib.iter_functions().map(|f| f.name.to_string()));
        names.sort();
        names.dedup();
        names
    }

    /// The help text of `name` (every overload and its doc), or the list
    /// of functions for "".
    pub fn help(&self, name: &str) -> String {
        self.help.text(name)
    }

    /// What the guest reported on its own since the last input (a
    /// scheduler that died while the prompt waited).
    pub fn notices(&self) -> Vec<String> {
        let mut b = lock(&self.backend);
        b.collect_notices();
        std::mem::take(&mut b.notes)
    }

    /// Runs a whole file in the session (`--script`): its
    /// `scheduler(..)` starts at once, like a scenario's.
    pub fn run_file(&mut self, name: &str, text: &str) -> Result<Reply, ReplError> {
        lock(&self.backend).autostart = true;
        let r = self.eval_named(name, text);
        lock(&self.backend).autostart = false;
        r
    }

    /// Evaluates one input typed at the prompt.
    pub fn eval(&mut self, input: &str) -> Result<Reply, ReplError> {
        self.eval_named(INPUT_NAME, input)
    }

    fn eval_named(&mut self, name: &str, text: &str) -> Result<Reply, ReplError> {
        self.interrupt.store(false, Ordering::SeqCst);
        lock(&self.sinks.files).add(name, text);
        lock(&self.sinks.output).lines.clear();
        lock(&self.backend).record.boundary();
        let fail = |this: &Self, d: Diagnostic| ReplError {
            diagnostic: Box::new(d),
            source: text.to_string(),
            notes: this.take_notes(),
        };
        let mut ast = match self.engine.compile_with_scope(&self.scope, text) {
            Ok(ast) => ast,
            Err(e) => return Err(fail(self, errors::parse_error(name, &e))),
        };
        ast.set_source(name);
        let mut sigs = self.sigs.clone();
        for f in self.lib.iter_functions() {
            sigs.add_script_fn(f.name, f.params.len());
        }
        if let Some(d) = ast_check::check(&ast, &sigs, name).into_iter().next() {
            return Err(fail(self, d));
        }
        let combined = self.lib.merge(&ast);
        let result = self
            .engine
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &combined);
        self.lib = combined;
        self.lib.clear_statements();
        let value = match result {
            Ok(v) => v,
            Err(e) => return Err(fail(self, errors::eval_error(name, &e, &self.sigs))),
        };
        let value = match values::run_ops(&self.backend, &value) {
            Ok(true) => Dynamic::UNIT,
            Ok(false) => value,
            Err(why) => return Err(fail(self, Diagnostic::new(name, 1, 1, why))),
        };
        let printed = lock(&self.sinks.output)
            .lines
            .drain(..)
            .map(|p| p.text)
            .collect();
        Ok(Reply {
            value: values::display(&value),
            json: values::json(&value),
            notes: self.take_notes(),
            printed,
        })
    }

    fn take_notes(&self) -> Vec<String> {
        let mut b = lock(&self.backend);
        b.collect_notices();
        std::mem::take(&mut b.notes)
    }

    /// The session so far as a scenario file (what `save()` writes).
    pub fn scenario(&self) -> String {
        lock(&self.backend).record.to_scenario()
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
