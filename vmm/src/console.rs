//! The console pump: guest console bytes to the log file, an optional echo
//! (the user's terminal), a bounded tail of lines, and panic detection.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};

/// Lines kept for error reports.
const TAIL_LINES: usize = 40;
/// Longest line kept (longer ones are cut).
const MAX_LINE: usize = 1024;
/// The most console bytes written to the log file; the rest is counted
/// but not kept, so a guest flooding its console cannot fill the disk.
pub(crate) const LOG_LIMIT: u64 = 64 << 20;
/// What the kernel prints when it panics.
const PANIC_MARK: &str = "Kernel panic - not syncing";

/// What the pump has seen so far.
#[derive(Debug, Default)]
pub(crate) struct ConsoleState {
    /// The last lines, escapes stripped.
    pub tail: VecDeque<String>,
    /// The first panic line, if any.
    pub panic: Option<String>,
    partial: Vec<u8>,
}

impl ConsoleState {
    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                let line = clean_line(&std::mem::take(&mut self.partial));
                self.line(line);
            } else if self.partial.len() < MAX_LINE * 4 {
                self.partial.push(b);
            }
        }
    }

    fn line(&mut self, line: String) {
        if self.panic.is_none() {
            if let Some(at) = line.find(PANIC_MARK) {
                self.panic = Some(line[at..].to_string());
            }
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// Flushes an unterminated last line into the tail.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let line = clean_line(&std::mem::take(&mut self.partial));
            self.line(line);
        }
    }
}

/// Drops ANSI escape sequences and carriage returns, cuts to [`MAX_LINE`].
fn clean_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c != '\r' && (c == '\t' || !c.is_control()) && out.len() < MAX_LINE {
            out.push(c);
        }
    }
    out
}

/// Starts the pump; it ends when `console` reaches end of file.
pub(crate) fn spawn_pump(
    mut console: Box<dyn Read + Send>,
    mut log: File,
    mut echo: Option<Box<dyn Write + Send>>,
    state: Arc<Mutex<ConsoleState>>,
) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut logged = 0u64;
        loop {
            let n = match console.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let room = LOG_LIMIT.saturating_sub(logged).min(n as u64) as usize;
            let _ = log.write_all(&buf[..room]);
            if room < n && logged <= LOG_LIMIT {
                let _ = log.write_all(b"\n[ktstr: console log truncated here]\n");
            }
            logged += n as u64;
            if let Some(e) = echo.as_mut() {
                if e.write_all(&buf[..n]).and_then(|_| e.flush()).is_err() {
                    echo = None;
                }
            }
            state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .feed(&buf[..n]);
        }
        let _ = log.flush();
        state.lock().unwrap_or_else(|p| p.into_inner()).finish();
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_escapes_and_finds_panics() {
        let mut s = ConsoleState::default();
        s.feed(b"\x1b[2J\x1b[01;01HSeaBIOS\r\n[ 1.0] ok\n[ 2.0] Kernel panic - not syncing: sysrq triggered crash\n");
        s.feed(b"[ 2.1] Kernel panic - not syncing: second\npartial");
        s.finish();
        assert_eq!(s.tail[0], "SeaBIOS");
        assert_eq!(
            s.panic.as_deref(),
            Some("Kernel panic - not syncing: sysrq triggered crash")
        );
        assert_eq!(s.tail.back().unwrap(), "partial");
    }

    #[test]
    fn log_file_is_capped() {
        struct Flood(u64);
        impl Read for Flood {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                if self.0 == 0 {
                    return Ok(0);
                }
                let n = (buf.len() as u64).min(self.0) as usize;
                buf[..n].fill(b'y');
                self.0 -= n as u64;
                Ok(n)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.log");
        let state = Arc::new(Mutex::new(ConsoleState::default()));
        let log = File::create(&path).unwrap();
        spawn_pump(Box::new(Flood(LOG_LIMIT + 100_000)), log, None, state)
            .join()
            .unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(len > LOG_LIMIT && len < LOG_LIMIT + 100, "{len}");
    }

    #[test]
    fn tail_and_lines_are_bounded() {
        let mut s = ConsoleState::default();
        for _ in 0..100 {
            s.feed(&[b'x'; 10_000]);
            s.feed(b"\n");
        }
        assert_eq!(s.tail.len(), TAIL_LINES);
        assert!(s.tail.iter().all(|l| l.len() <= MAX_LINE));
    }
}
