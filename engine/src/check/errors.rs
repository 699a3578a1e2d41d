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
    d
}

/// An evaluation error, unwrapped to where it really happened.
pub fn eval_error(file: &str, e: &EvalAltResult, sigs: &Signatures) -> Diagnostic {
    match e {
        EvalAltResult::ErrorInFunctionCall(name, _, inner, pos) => {
            let mut d = eval_error(file, inner, sigs);
            if d.line == 0 {
                d.line = pos.line().unwrap_or(0);
                d.col = pos.position().unwrap_or(0);
            }
            if d.help.is_none() {
                d.help = Some(format!("in a call to `{name}`"));
            }
            d
        }
        EvalAltResult::ErrorInModule(_, inner, _) => eval_error(file, inner, sigs),
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
