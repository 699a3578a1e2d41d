//! Rhai's parse and evaluation errors as diagnostics.

use rhai::{EvalAltResult, ParseError, Position};

use super::engine::{MAX_CALL_LEVELS, MAX_OPERATIONS};
use super::signatures::{pretty, Signatures};
use crate::diag::Diagnostic;

fn at(file: &str, pos: Position, message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(
        file,
        pos.line().unwrap_or(0),
        pos.position().unwrap_or(0),
        message,
    )
}

/// A syntax error (strict-variable errors included).
pub fn parse_error(file: &str, e: &ParseError) -> Diagnostic {
    let msg = e.0.to_string();
    let d = at(file, e.1, format!("syntax error: {msg}"));
    if msg.contains("Variable not found") || msg.contains("Undefined variable") {
        return d.with_help("variables must be declared with `let` before use (strict mode)");
    }
    if msg.contains("'eval'") {
        return d.with_help("scenarios cannot use eval: the checks cannot see the text it runs");
    }
    d
}

/// `file:line:col` of `pos` in `file`.
fn place(file: &str, pos: Position) -> String {
    format!(
        "{file}:{}:{}",
        pos.line().unwrap_or(0),
        pos.position().unwrap_or(0)
    )
}

/// An evaluation error, unwrapped to where it really happened: the file
/// and position of the innermost failing call (a function of an imported
/// file or the stdlib is in that file), with the call that led there.
pub fn eval_error(file: &str, e: &EvalAltResult, sigs: &Signatures) -> Diagnostic {
    match e {
        EvalAltResult::ErrorInFunctionCall(name, source, inner, pos) => {
            let inner_file = if source.is_empty() { file } else { source };
            let mut d = eval_error(inner_file, inner, sigs);
            if d.line == 0 {
                d.file = file.to_string();
                d.line = pos.line().unwrap_or(0);
                d.col = pos.position().unwrap_or(0);
            }
            if d.file != file {
                d = d.with_note(format!("in `{name}`, called from {}", place(file, *pos)));
            } else if d.help.is_none() {
                d.help = Some(format!("in a call to `{name}`"));
            }
            d
        }
        EvalAltResult::ErrorInModule(module, inner, pos) => {
            let mut d = match &**inner {
                EvalAltResult::ErrorParsing(kind, at) => {
                    parse_error(module, &ParseError(Box::new(kind.clone()), *at))
                }
                other => eval_error(module, other, sigs),
            };
            if d.line == 0 {
                d.file = file.to_string();
                d.line = pos.line().unwrap_or(0);
                d.col = pos.position().unwrap_or(0);
            } else {
                d = d.with_note(format!("imported from {}", place(file, *pos)));
            }
            d
        }
        EvalAltResult::ErrorFunctionNotFound(sig, pos) => {
            let name = sig.split(['(', ' ']).next().unwrap_or(sig);
            let shown = sigs.shown(name);
            let sig = pretty(&sig.replace("&str | ImmutableString | String", "string"));
            let d = at(
                file,
                *pos,
                format!("no function `{sig}`: wrong argument types"),
            );
            if shown.is_empty() {
                d
            } else {
                d.with_help(format!("expected {shown}"))
            }
        }
        EvalAltResult::ErrorTooManyOperations(pos) => at(
            file,
            *pos,
            format!("the script ran more than {MAX_OPERATIONS} operations: an endless loop?"),
        ),
        EvalAltResult::ErrorTerminated(why, pos) if why.to_string().starts_with("interrupted") => {
            at(file, *pos, why.to_string())
        }
        EvalAltResult::ErrorTerminated(limit, pos) => at(
            file,
            *pos,
            format!("the script ran longer than {limit}: an endless loop?"),
        ),
        EvalAltResult::ErrorStackOverflow(pos) => at(
            file,
            *pos,
            format!("calls nest deeper than {MAX_CALL_LEVELS}: endless recursion?"),
        ),
        EvalAltResult::ErrorRuntime(v, pos) => at(file, *pos, v.to_string()),
        other => at(file, other.position(), strip_position(&other.to_string())),
    }
}

/// Rhai's messages end with ` (line N, position M)`; ours say it elsewhere.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" (line ") {
        Some(i) if msg.ends_with(')') => msg[..i].to_string(),
        _ => msg.to_string(),
    }
}
