//! Diagnostics: file, line, column, message, and a caret under the source.

use std::fmt;

use serde::Serialize;

/// One problem in a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// The script file.
    pub file: String,
    /// 1-based line (0 when the problem has no place, e.g. unreadable file).
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when known.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic at `line:col` of `file`.
    pub fn new(file: &str, line: usize, col: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line,
            col,
            message: message.into(),
            help: None,
        }
    }

    /// The same with a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The diagnostic with the offending source line and a caret under the
    /// column.
    pub fn render(&self, source: &str) -> String {
        let mut out = format!(
            "error: {}\n  --> {}:{}:{}\n",
            self.message, self.file, self.line, self.col
        );
        if let Some(text) = self.line.checked_sub(1).and_then(|i| source.lines().nth(i)) {
            let num = self.line.to_string();
            let pad = " ".repeat(num.len());
            let caret_at: String = text
                .chars()
                .take(self.col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("{pad} |\n{num} | {text}\n{pad} | {caret_at}^\n"));
        }
        if let Some(h) = &self.help {
            out.push_str(&format!("  = help: {h}\n"));
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_caret_under_the_column() {
        let d = Diagnostic::new("s.rhai", 2, 5, "bad").with_help("fix it");
        let r = d.render("one\nlet x = 1;\n");
        assert!(r.contains("--> s.rhai:2:5"), "{r}");
        assert!(r.contains("2 | let x = 1;\n  |     ^"), "{r}");
        assert!(r.ends_with("= help: fix it\n"), "{r}");
        assert_eq!(d.to_string(), "s.rhai:2:5: bad");
    }
}
