//! The `ktstr-guest-agent` binary: `/init` of every ktstr guest, and each
//! worker process (`--worker SPEC`). All of its code is in the
//! `ktstr-guest-agent` library; this package only links it, and nothing
//! else, into the binary.

use std::process::ExitCode;

use ktstr_guest_agent::workers::{worker_main, WORKER_FLAG};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == WORKER_FLAG {
        return worker_main(&args[2]);
    }
    if std::process::id() != 1 {
        eprintln!(
            "ktstr-guest-agent is /init inside a ktstr VM and only runs as PID 1; \
             use `ktstr vm probe` or `ktstr shell` on the host"
        );
        return ExitCode::from(2);
    }
    ktstr_guest_agent::run::main()
}
