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
    /// How the script got there (the call or import that led into another
    /// file), innermost first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Characters of a source line shown on each side of the column: a very
/// long line is clipped around the caret.
const CONTEXT_CHARS: usize = 60;

impl Diagnostic {
    /// A diagnostic at `line:col` of `file`.
    pub fn new(file: &str, line: usize, col: usize, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line,
            col,
            message: message.into(),
            help: None,
            notes: Vec::new(),
        }
    }

    /// The same with a note on how the script got there.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
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
            let (text, caret_col) = clip(text, self.col.saturating_sub(1));
            let caret_at: String = text
                .chars()
                .take(caret_col)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            out.push_str(&format!("{pad} |\n{num} | {text}\n{pad} | {caret_at}^\n"));
        }
        if let Some(h) = &self.help {
            out.push_str(&format!("  = help: {h}\n"));
        }
        for n in &self.notes {
            out.push_str(&format!("  = note: {n}\n"));
        }
        out
    }
}

/// `line` clipped to [`CONTEXT_CHARS`] on each side of character `col`
/// (marked `...` where cut), and the column within what is shown.
fn clip(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let col = col.min(chars.len());
    let from = col.saturating_sub(CONTEXT_CHARS);
    let to = (col + CONTEXT_CHARS).min(chars.len());
    if from == 0 && to == chars.len() {
        return (line.to_string(), col);
    }
    let mut shown = String::new();
    let mut caret = col - from;
    if from > 0 {
        shown.push_str("...");
        caret += 3;
    }
    shown.extend(&chars[from..to]);
    if to < chars.len() {
        shown.push_str("...");
    }
    (shown, caret)
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

    #[test]
    fn long_lines_are_clipped_around_the_caret() {
        let line = format!("{}X{}", "a".repeat(100_000), "b".repeat(100_000));
        let d = Diagnostic::new("s.rhai", 1, 100_001, "here");
        let r = d.render(&line);
        assert!(r.len() < 400, "{} bytes", r.len());
        let shown = r.lines().nth(3).unwrap();
        let caret = r.lines().nth(4).unwrap();
        assert_eq!(shown.find('X'), caret.find('^'), "{r}");
        assert!(shown.contains("...a") && shown.contains("b..."), "{r}");
    }
}
