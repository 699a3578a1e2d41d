//! What functions exist, with which parameter types: read from Rhai's own
//! metadata of the engine, so the checker and the registrations cannot
//! disagree.

use std::collections::HashMap;

use rhai::Engine;

/// Rhai's keywords that look like function calls.
const KEYWORD_FNS: [&str; 10] = [
    "print",
    "debug",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "eval",
];

/// Parameter type lists by function name.
#[derive(Debug, Default, Clone)]
pub struct Signatures {
    by_name: HashMap<String, Vec<Vec<String>>>,
    display: HashMap<String, Vec<String>>,
}

impl Signatures {
    /// Every function of `engine` (standard packages included).
    pub fn of(engine: &Engine) -> Self {
        let json = engine.gen_fn_metadata_to_json(true).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
        let mut s = Signatures::default();
        for f in v["functions"].as_array().into_iter().flatten() {
            let Some(name) = f["name"].as_str() else {
                continue;
            };
            let params: Vec<String> = f["params"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p["type"].as_str().unwrap_or("?").to_string())
                .collect();
            let n = f["numParams"].as_u64().unwrap_or(params.len() as u64) as usize;
            let mut params = params;
            params.resize(n, "?".into());
            s.by_name.entry(name.to_string()).or_default().push(params);
            if let Some(sig) = f["signature"].as_str() {
                s.display
                    .entry(name.to_string())
                    .or_default()
                    .push(pretty(sig));
            }
        }
        for k in KEYWORD_FNS {
            s.by_name.entry(k.to_string()).or_default();
        }
        s
    }

    /// Adds a script-defined function.
    pub fn add_script_fn(&mut self, name: &str, arity: usize) {
        self.by_name
            .entry(name.to_string())
            .or_default()
            .push(vec!["?".into(); arity]);
    }

    /// The overloads of `name`, if it exists.
    pub fn overloads(&self, name: &str) -> Option<&Vec<Vec<String>>> {
        self.by_name.get(name)
    }

    /// Whether `name` is a keyword function (any arity).
    pub fn is_keyword(name: &str) -> bool {
        KEYWORD_FNS.contains(&name)
    }

    /// Printable signatures of `name`.
    pub fn shown(&self, name: &str) -> String {
        let mut v = self.display.get(name).cloned().unwrap_or_default();
        v.sort();
        v.dedup();
        v.join(", ")
    }

    /// The known name closest to `name`, if any is close.
    pub fn closest(&self, name: &str) -> Option<&str> {
        self.by_name
            .keys()
            .filter(|k| !k.starts_with("get$") && !k.starts_with("set$") && !k.starts_with("anon$"))
            .map(|k| (strsim::jaro_winkler(name, k), k.as_str()))
            .filter(|(score, _)| *score > 0.8)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, k)| k)
    }
}

/// A Rhai signature with Rust noise removed: `Result<T, Box<EvalAltResult>>`
/// becomes `T`, paths are cut to the last segment, `_: ` placeholders go,
/// and `i64`/`f64`/`&str` read as `int`/`float`/`string`.
pub fn pretty(sig: &str) -> String {
    let mut s = sig.replace(' ', "").replace("_:", "");
    while let Some(start) = s.find("core::result::Result<") {
        let inner_start = start + "core::result::Result<".len();
        let Some(comma) = s[inner_start..].find(",alloc::boxed::Box<") else {
            break;
        };
        let ok = s[inner_start..inner_start + comma].to_string();
        let Some(end) = s[inner_start + comma..].find(">>") else {
            break;
        };
        s.replace_range(start..inner_start + comma + end + 2, &ok);
    }
    let mut out = String::new();
    let mut word = String::new();
    for ch in s.chars().chain(std::iter::once('\0')) {
        if ch.is_alphanumeric() || ch == '_' || ch == ':' || ch == '$' {
            word.push(ch);
            continue;
        }
        let last = word.rsplit("::").next().unwrap_or(&word).to_string();
        out.push_str(match last.as_str() {
            "i64" => "int",
            "f64" => "float",
            "str" | "ImmutableString" => "string",
            "CgroupHandle" => "Cgroup",
            "CpusetSpec" => "Cpuset",
            _ => &last,
        });
        word.clear();
        if ch != '\0' {
            out.push(ch);
        }
    }
    out.replace("_:", "")
        .replace(':', ": ")
        .replace(',', ", ")
        .replace("->", " -> ")
        .replace("&mut", "&mut ")
        .replace('&', "")
        .replace("mut ", "")
}

#[cfg(test)]
mod tests {
    use super::pretty;

    #[test]
    fn signatures_read_like_the_script_api() {
        let raw = "cgroup(_: &str, _: i64, _: ktstr_engine::work::Work) -> core::result::Result<ktstr_engine::api::cgroup::CgroupHandle,alloc::boxed::Box<rhai::types::error::EvalAltResult>>";
        assert_eq!(pretty(raw), "cgroup(string, int, Work) -> Cgroup");
        assert_eq!(
            pretty("nice(_: &mut Cgroup, _: i64) -> Cgroup"),
            "nice(Cgroup, int) -> Cgroup"
        );
        assert_eq!(
            pretty("nice(cgroup: &mut Cgroup, nice: int) -> Cgroup"),
            "nice(cgroup: Cgroup, nice: int) -> Cgroup"
        );
    }
}
