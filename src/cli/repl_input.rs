//! Where `ktstr repl` reads its inputs: a line editor on a terminal
//! (history in the user's state directory, multi-line input while a block
//! is open, completion of API names), or plain lines from a pipe. Either
//! runs on a thread of its own and hands over one complete input at a
//! time, when asked, so the main thread can watch the guest while the
//! user types.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};

use ktstr_engine::repl::input::{is_incomplete, join_continuations};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::FileHistory;
use rustyline::validate::{ValidationContext, ValidationResult, Validator};
use rustyline::{Config, Context, Editor, ExternalPrinter, Helper};

/// One thing the user gave.
#[derive(Debug)]
pub enum Input {
    /// A complete input.
    Text(String),
    /// Ctrl-C at the prompt: the line was dropped.
    Cancelled,
    /// Ctrl-D or the end of the pipe.
    End,
}

/// Prints above the prompt without breaking it.
pub type Printer = Box<dyn ExternalPrinter + Send>;

/// The input thread's ends: ask for an input, then receive it.
pub struct Inputs {
    ask: Sender<()>,
    got: Receiver<Input>,
    /// Prints above a terminal's prompt (None on a pipe).
    pub printer: Option<Mutex<Printer>>,
}

impl Inputs {
    /// Asks for the next input (shows the prompt).
    pub fn ask(&self) {
        let _ = self.ask.send(());
    }

    /// The input, if it has come within `wait`.
    pub fn poll(&self, wait: std::time::Duration) -> Option<Input> {
        match self.got.recv_timeout(wait) {
            Ok(i) => Some(i),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Input::End),
        }
    }
}

/// Completion of names and the multi-line rule, for the line editor.
struct ReplHelper {
    names: Arc<Mutex<Vec<String>>>,
}

impl Helper for ReplHelper {}

impl Highlighter for ReplHelper {}

impl Hinter for ReplHelper {
    type Hint = String;
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let start = line[..pos]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1);
        let word = &line[start..pos];
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let found = names
            .iter()
            .filter(|n| !word.is_empty() && n.starts_with(word))
            .map(|n| Pair {
                display: n.clone(),
                replacement: n.clone(),
            })
            .collect();
        Ok((start, found))
    }
}

impl Validator for ReplHelper {
    fn validate(&self, ctx: &mut ValidationContext) -> rustyline::Result<ValidationResult> {
        Ok(if is_incomplete(ctx.input()) {
            ValidationResult::Incomplete
        } else {
            ValidationResult::Valid(None)
        })
    }
}

/// The history file: `$XDG_STATE_HOME/ktstr/repl_history` (or
/// `~/.local/state/...`).
pub fn history_path() -> Option<PathBuf> {
    dirs::state_dir()
        .or_else(|| dirs::home_dir().map(|h| h.join(".local/state")))
        .map(|d| d.join("ktstr").join("repl_history"))
}

/// Starts the line editor on a thread; `names` feeds completion.
pub fn terminal(names: Arc<Mutex<Vec<String>>>) -> anyhow::Result<Inputs> {
    let config = Config::builder().auto_add_history(true).build();
    let mut editor: Editor<ReplHelper, FileHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(ReplHelper { names }));
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let printer = editor
        .create_external_printer()
        .ok()
        .map(|p| Mutex::new(Box::new(p) as Printer));
    let (ask, asked) = mpsc::channel::<()>();
    let (give, got) = mpsc::channel();
    std::thread::spawn(move || {
        while asked.recv().is_ok() {
            let input = match editor.readline("ktstr> ") {
                Ok(line) => Input::Text(join_continuations(&line)),
                Err(ReadlineError::Interrupted) => Input::Cancelled,
                Err(_) => Input::End,
            };
            let end = matches!(input, Input::End);
            if let Some(h) = &history {
                if let Some(dir) = h.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                let _ = editor.save_history(h);
            }
            if give.send(input).is_err() || end {
                return;
            }
        }
    });
    Ok(Inputs { ask, got, printer })
}

/// Reads complete inputs from stdin (a pipe): lines are joined while an
/// input is incomplete.
pub fn pipe() -> Inputs {
    let (ask, asked) = mpsc::channel::<()>();
    let (give, got) = mpsc::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lines = stdin.lock().lines();
        while asked.recv().is_ok() {
            let mut text = String::new();
            let input = loop {
                match lines.next() {
                    Some(Ok(line)) => {
                        text.push_str(&line);
                        text.push('\n');
                        if !is_incomplete(&text) {
                            break Input::Text(join_continuations(&text));
                        }
                    }
                    _ if text.trim().is_empty() => break Input::End,
                    // An unfinished input at the end: evaluated, so its
                    // error is reported.
                    _ => break Input::Text(join_continuations(&text)),
                }
            };
            let end = matches!(input, Input::End);
            if give.send(input).is_err() || end {
                return;
            }
        }
    });
    Inputs {
        ask,
        got,
        printer: None,
    }
}
