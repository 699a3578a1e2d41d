//! Registering an API function together with its signature and doc
//! comment, so Rhai's own metadata carries both: `ktstr defs` writes them
//! into the `.d.rhai` files editors show on hover, the checker reads the
//! parameter types from them, and help text quotes them.

use rhai::{Engine, FuncRegistration, RhaiNativeFunc, Variant};

/// Registers `f` under the name and with the parameters of `signature`
/// (`"cgroup(name: string, workers: int, work: Work) -> Cgroup"`: script
/// types, a method's receiver first as `&mut Type`, no `->` for `()`),
/// documented by `doc` (one or more lines, without `///`).
pub(crate) fn def<A, const N: usize, const X: bool, R, const F: bool, FUNC>(
    engine: &mut Engine,
    signature: &str,
    doc: &str,
    f: FUNC,
) where
    A: 'static,
    R: Variant + Clone,
    FUNC: RhaiNativeFunc<A, N, X, R, F> + Send + Sync + 'static,
{
    let (name, params, ret) = parse(signature);
    let mut info = params;
    info.push(ret);
    let comment: Vec<String> = doc.lines().map(|l| format!("/// {}", l.trim())).collect();
    FuncRegistration::new(name)
        .with_params_info(info)
        .with_comments([comment.join("\n")])
        .register_into_engine(engine, f);
}

/// (name, parameters, return type) of `name(p: T, ...) -> R`.
fn parse(signature: &str) -> (String, Vec<String>, String) {
    let (head, ret) = match signature.split_once(" -> ") {
        Some((h, r)) => (h, r.trim().to_string()),
        None => (signature, "()".to_string()),
    };
    let open = head
        .find('(')
        .expect("a signature has parameters in parentheses");
    let name = head[..open].trim().to_string();
    let inner = head[open + 1..].trim_end().trim_end_matches(')');
    let params = inner
        .split(", ")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    (name, params, ret)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn signatures_split_into_name_parameters_and_return_type() {
        let (n, p, r) = parse("cgroup(name: string, workers: int, work: Work) -> Cgroup");
        assert_eq!((n.as_str(), r.as_str()), ("cgroup", "Cgroup"));
        assert_eq!(p, ["name: string", "workers: int", "work: Work"]);
        let (n, p, r) = parse("requires_smt()");
        assert_eq!((n.as_str(), p.len(), r.as_str()), ("requires_smt", 0, "()"));
        let (n, p, _) = parse("get$spread(stats: &mut Stats) -> Metric");
        assert_eq!(
            (n.as_str(), p[0].as_str()),
            ("get$spread", "stats: &mut Stats")
        );
    }
}
