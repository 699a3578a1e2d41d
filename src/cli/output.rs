//! Writing the commands' output without panicking: `println!` panics when
//! stdout's reader has gone (`ktstr list | head -1`); [`outln!`] returns
//! the error instead, so the command unwinds (dropping VMs and scratch
//! files) and `main` ends it quietly. [`errln!`] writes diagnostics to
//! stderr and ignores a closed stderr.

use std::fmt;
use std::io::{self, Write};

/// Exit status when stdout's reader went away, as if SIGPIPE had ended
/// the process (128 + 13), the way coreutils end.
pub const CLOSED_PIPE_EXIT: u8 = 141;

/// Writes `args` and a newline to stdout.
pub fn line(args: fmt::Arguments) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// Writes `args` to stderr; a closed stderr is ignored.
pub fn diag(args: fmt::Arguments) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// Whether `err` (anywhere in its chain) is stdout's reader going away.
pub fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// `println!` that returns an `io::Result` instead of panicking.
macro_rules! outln {
    () => { $crate::cli::output::line(format_args!("")) };
    ($($arg:tt)*) => { $crate::cli::output::line(format_args!($($arg)*)) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    () => { $crate::cli::output::diag(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::cli::output::diag(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` that never panics.
macro_rules! err {
    ($($arg:tt)*) => { $crate::cli::output::diag(format_args!($($arg)*)) };
}
