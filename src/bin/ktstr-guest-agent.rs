//! The `ktstr-guest-agent` binary: `/init` of every ktstr guest. All of
//! its code is in the `ktstr-guest-agent` library; this package only
//! links it, and nothing else, into the binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::process::id() != 1 {
        eprintln!(
            "ktstr-guest-agent is /init inside a ktstr VM and only runs as PID 1; \
             use `ktstr vm probe` or `ktstr shell` on the host"
        );
        return ExitCode::from(2);
    }
    ktstr_guest_agent::run::main()
}
