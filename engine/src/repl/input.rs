//! Whether an input is complete: the prompt keeps reading while a block,
//! call or array is open, a string or block comment is unterminated, or a
//! line ends with `\` (Rhai's own REPL froze on an unterminated block;
//! this waits for the rest instead).

/// Whether `text` needs more lines before it can be evaluated.
pub fn is_incomplete(text: &str) -> bool {
    if text.trim_end().ends_with('\\') {
        return true;
    }
    let mut depth: i64 = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '`' if !skip_string(&mut chars, c) => return true,
            '\'' => {
                // A character literal: 'a' or '\n'.
                if chars.next() == Some('\\') {
                    chars.next();
                }
                chars.next();
            }
            '/' if chars.peek() == Some(&'/') => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                if !skip_block_comment(&mut chars) {
                    return true;
                }
            }
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

/// Skips to the end of a string opened by `quote`; false when it never
/// ends.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars>, quote: char) -> bool {
    let mut escaped = false;
    for n in chars.by_ref() {
        match (escaped, n) {
            (false, '\\') if quote == '"' => escaped = true,
            (false, q) if q == quote => return true,
            _ => escaped = false,
        }
    }
    false
}

/// Skips a (nesting) block comment; false when it never ends.
fn skip_block_comment(chars: &mut std::iter::Peekable<std::str::Chars>) -> bool {
    let mut depth = 1;
    while let Some(n) = chars.next() {
        match n {
            '*' if chars.peek() == Some(&'/') => {
                chars.next();
                depth -= 1;
                if depth == 0 {
                    return true;
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                depth += 1;
            }
            _ => {}
        }
    }
    false
}

/// `text` with a trailing `\` continuation removed from each line.
pub fn join_continuations(text: &str) -> String {
    text.lines()
        .map(|l| l.strip_suffix('\\').unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_blocks_strings_and_comments_wait_for_more() {
        assert!(is_incomplete("fn f() {"));
        assert!(is_incomplete("let a = cgroup(\"a\", 2,"));
        assert!(is_incomplete("let s = \"open"));
        assert!(is_incomplete("/* note"));
        assert!(is_incomplete("let x = 1 + \\"));
        assert!(!is_incomplete("fn f() { 1 }"));
        assert!(!is_incomplete("let s = \"}{\"; // (("));
        assert!(!is_incomplete("let c = '{';"));
        // Too many closers is complete: the parser reports it.
        assert!(!is_incomplete("}"));
    }
}
