//! `ktstr`: the command-line edge. Parses arguments, resolves kernels and
//! scenarios through the library crates, prints human or `--json` output,
//! and maps outcomes to exit codes.

#[macro_use]
mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(err) if cli::is_closed_pipe(&err) => ExitCode::from(cli::CLOSED_PIPE_EXIT),
        Err(err) => {
            errln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
