//! Static checks on the compiled AST, before anything runs: every call
//! names a function that exists, with a number of arguments it takes, and
//! literal arguments of types it accepts.

use std::collections::HashSet;

use rhai::{ASTNode, Expr, FnCallExpr, Position, Stmt, AST};

use super::signatures::Signatures;
use crate::diag::Diagnostic;

/// Every problem found in `ast`.
pub fn check(ast: &AST, known: &Signatures, file: &str) -> Vec<Diagnostic> {
    let mut sigs = known.clone();
    let mut variables: HashSet<String> = HashSet::new();
    for f in ast.iter_functions() {
        sigs.add_script_fn(f.name, f.params.len());
        variables.extend(f.params.iter().map(|p| p.to_string()));
    }
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Var(x, ..))) = path.last() {
            variables.insert(x.0.name.to_string());
        }
        true
    });
    let mut out = Vec::new();
    ast.walk(&mut |path: &[ASTNode]| {
        let (call, pos, method) = match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(c, pos))) => (c, *pos, false),
            Some(ASTNode::Stmt(Stmt::FnCall(c, pos))) => (c, *pos, false),
            Some(ASTNode::Expr(Expr::MethodCall(c, pos))) => (c, *pos, true),
            _ => return true,
        };
        if call.op_token.is_some() || !call.namespace.is_empty() {
            return true;
        }
        if !method && variables.contains(call.name.as_str()) {
            return true;
        }
        if let Some(d) = check_call(call, pos, method, &sigs, file) {
            out.push(d);
        }
        true
    });
    out
}

fn at(file: &str, pos: Position, message: String) -> Diagnostic {
    Diagnostic::new(
        file,
        pos.line().unwrap_or(0),
        pos.position().unwrap_or(0),
        message,
    )
}

fn check_call(
    call: &FnCallExpr,
    pos: Position,
    method: bool,
    sigs: &Signatures,
    file: &str,
) -> Option<Diagnostic> {
    let name = call.name.as_str();
    if Signatures::is_keyword(name) {
        return None;
    }
    let Some(overloads) = sigs.overloads(name) else {
        let what = if method { "method" } else { "function" };
        let d = at(file, pos, format!("unknown {what} `{name}`"));
        return Some(match sigs.closest(name) {
            Some(c) => d.with_help(format!("did you mean `{c}`? ({})", sigs.shown(c))),
            None => d,
        });
    };
    let skip = usize::from(method);
    let arity = call.args.len() + skip;
    let same_arity: Vec<&Vec<String>> = overloads.iter().filter(|p| p.len() == arity).collect();
    let arity_error = |takes: Vec<usize>| {
        let mut takes: Vec<String> = takes.iter().map(usize::to_string).collect();
        takes.sort();
        takes.dedup();
        let msg = format!(
            "`{name}` takes {} argument(s), not {}",
            takes.join(" or "),
            call.args.len()
        );
        Some(at(file, pos, msg).with_help(sigs.shown(name)))
    };
    if same_arity.is_empty() {
        return arity_error(
            overloads
                .iter()
                .filter_map(|p| p.len().checked_sub(skip))
                .collect(),
        );
    }
    // A param list's first mismatching literal argument, if any.
    let mismatch = |params: &Vec<String>| {
        call.args
            .iter()
            .zip(params.iter().skip(skip))
            .enumerate()
            .find_map(|(i, (arg, ty))| {
                literal_type(arg)
                    .filter(|lit| !accepts(ty, lit))
                    .map(|lit| (i, lit))
            })
    };
    if same_arity.iter().any(|p| mismatch(p).is_none()) {
        return None;
    }
    // A plain call whose only same-arity overloads are methods of another
    // type is really a call with the wrong number of arguments.
    let is_method = |p: &&Vec<String>| p.first().is_some_and(|t| t.starts_with("&mut"));
    let plain: Vec<usize> = overloads
        .iter()
        .filter(|p| !is_method(p))
        .map(Vec::len)
        .collect();
    if !method && same_arity.iter().all(is_method) && !plain.is_empty() {
        return arity_error(plain);
    }
    let (i, lit) = same_arity.iter().find_map(|p| mismatch(p))?;
    let msg = format!(
        "wrong type for argument {} of `{name}`: {}",
        i + 1,
        describe(lit)
    );
    Some(at(file, call.args[i].position(), msg).with_help(format!("expected {}", sigs.shown(name))))
}

/// The type of a literal argument, if it is one.
fn literal_type(e: &Expr) -> Option<&'static str> {
    Some(match e {
        Expr::IntegerConstant(..) => "int",
        Expr::FloatConstant(..) => "float",
        Expr::StringConstant(..) | Expr::InterpolatedString(..) => "string",
        Expr::BoolConstant(..) => "bool",
        Expr::CharConstant(..) => "char",
        Expr::Array(..) => "array",
        Expr::Map(..) => "map",
        Expr::Unit(..) => "unit",
        _ => return None,
    })
}

fn describe(lit: &str) -> String {
    match lit {
        "int" => "an integer literal".into(),
        "float" => "a float literal".into(),
        "string" => "a string literal".into(),
        "array" => "an array literal".into(),
        "map" => "an object map literal".into(),
        other => format!("a {other} literal"),
    }
}

/// Whether a parameter of Rhai type `ty` takes a literal of kind `lit`.
fn accepts(ty: &str, lit: &str) -> bool {
    let ty = ty.trim_start_matches("&mut ").trim_start_matches('&');
    if ty == "?" || ty.contains("Dynamic") {
        return true;
    }
    match lit {
        "int" => matches!(ty, "i64" | "INT" | "int"),
        "float" => matches!(ty, "f64" | "FLOAT" | "float"),
        "string" => matches!(ty, "str" | "ImmutableString" | "String" | "string"),
        "bool" => ty == "bool",
        "char" => ty == "char",
        "array" => ty.contains("Array") || ty.starts_with("Vec<") || ty == "array",
        "map" => ty.contains("Map") || ty == "map",
        "unit" => ty == "()",
        _ => true,
    }
}
