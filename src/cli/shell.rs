//! `ktstr shell`: a busybox shell in a VM, interactive or running one
//! command.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use ktstr_proto::{GuestMessage, Job, JobSpec, OutputStream};
use ktstr_vmm::initramfs::GuestFile;
use ktstr_vmm::session::{self, SessionIo};
use ktstr_vmm::{VmEnd, VmOutcome};

use super::guest::{self, VmArgs};
use super::terminal::{DetachableStdin, RawTerminal};

/// Exit status when the VM itself failed (as opposed to the command).
const VM_FAILED: u8 = 125;

/// Arguments of `shell`.
#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    #[command(flatten)]
    pub vm: VmArgs,
    /// Put a host file in the guest: HOST[:GUEST]; GUEST defaults to
    /// /bin/<file name>. ELF files bring their shared libraries.
    #[arg(short = 'i', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
    /// Run CMD with /bin/sh -c in the guest, print its output and exit with
    /// its status (125 if the VM itself failed).
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Seconds before the VM is killed (default: 600 with --exec, 30 days
    /// interactively).
    #[arg(long, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=super::MAX_TIMEOUT_S))]
    pub timeout: Option<u64>,
}

/// Runs `ktstr shell`.
pub fn run(args: ShellArgs, kernels_toml: Option<&Path>) -> anyhow::Result<ExitCode> {
    let files = args
        .include
        .iter()
        .map(|s| parse_include(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let interactive = args.exec.is_none();
    if interactive && !std::io::stdin().is_terminal() {
        bail!("an interactive shell needs a terminal on stdin; use --exec CMD");
    }
    let kernel = guest::obtain_kernel(kernels_toml, args.vm.kernel.as_deref())?;
    let job = JobSpec {
        job: match &args.exec {
            Some(command) => Job::Exec {
                command: command.clone(),
            },
            None => Job::Shell,
        },
        fault: None,
    };
    let default_timeout = if interactive {
        super::MAX_TIMEOUT_S
    } else {
        600
    };
    let timeout = Duration::from_secs(args.timeout.unwrap_or(default_timeout));
    let cancel = guest::cancel_on_signals()?;
    let vm = guest::prepare(&args.vm, &kernel, job, true, files, timeout, &cancel)?;
    let mut io = SessionIo::logged(vm.console_log.clone());
    io.cancel = cancel;
    let outcome = if interactive {
        errln!(
            "ktstr shell: {} on {}, booting... (Ctrl-] quits)",
            vm.spec.topology,
            vm.backend.kind()
        );
        let _raw = RawTerminal::enter()?;
        interactive_session(&vm, io)?
    } else {
        let mut on_message = |m: &GuestMessage| forward_output(m);
        session::run(vm.backend.as_ref(), &vm.spec, io, &mut on_message)?
    };
    finish(&outcome)
}

/// Console to the terminal once the agent is ready; keys to the console.
fn interactive_session(
    vm: &ktstr_run::vm::PreparedVm,
    mut io: SessionIo,
) -> anyhow::Result<VmOutcome> {
    let ready = Arc::new(AtomicBool::new(false));
    io.console_echo = Some(Box::new(GatedStdout {
        open: Arc::clone(&ready),
    }));
    io.console_source = Some(Box::new(DetachableStdin::new(Arc::clone(&io.cancel))));
    let mut on_message = |m: &GuestMessage| {
        if matches!(m, GuestMessage::Ready { .. }) {
            ready.store(true, Ordering::SeqCst);
        }
    };
    Ok(session::run(
        vm.backend.as_ref(),
        &vm.spec,
        io,
        &mut on_message,
    )?)
}

fn finish(outcome: &VmOutcome) -> anyhow::Result<ExitCode> {
    match (&outcome.end, outcome.exit_code) {
        (VmEnd::Completed, Some(code)) if outcome.agent_errors.is_empty() => {
            for e in &outcome.protocol_errors {
                errln!("warning: channel error: {e}");
            }
            Ok(ExitCode::from(code.clamp(0, 255) as u8))
        }
        (VmEnd::Interrupted, _) => {
            errln!("\r\nktstr shell: VM stopped");
            Ok(ExitCode::from(130))
        }
        _ => {
            errln!("error: {}", outcome.failure_report());
            Ok(ExitCode::from(VM_FAILED))
        }
    }
}

fn forward_output(m: &GuestMessage) {
    if let GuestMessage::Output { stream, data } = m {
        let _ = match stream {
            OutputStream::Stdout => {
                let mut o = std::io::stdout();
                o.write_all(data.as_bytes()).and_then(|_| o.flush())
            }
            OutputStream::Stderr => std::io::stderr().write_all(data.as_bytes()),
        };
    }
}

/// Stdout that passes bytes only once `open` is set (boot noise stays in
/// the console log).
struct GatedStdout {
    open: Arc<AtomicBool>,
}

impl Write for GatedStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.open.load(Ordering::SeqCst) {
            std::io::stdout().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// `HOST[:GUEST]` to a guest file; the host file must exist and be a file.
pub(crate) fn parse_include(spec: &str) -> anyhow::Result<GuestFile> {
    let (host, guest) = match spec.split_once(':') {
        Some((h, g)) => (PathBuf::from(h), g.to_string()),
        None => {
            let h = PathBuf::from(spec);
            let name = h
                .file_name()
                .with_context(|| format!("-i {spec}: no file name"))?
                .to_string_lossy()
                .into_owned();
            (h, format!("/bin/{name}"))
        }
    };
    if !host.is_file() {
        bail!("-i {spec}: {} is not a file", host.display());
    }
    if !guest.starts_with('/') || guest.ends_with('/') || guest.contains("/../") {
        bail!("-i {spec}: the guest path `{guest}` must be an absolute file path");
    }
    Ok(GuestFile {
        host: std::fs::canonicalize(&host)
            .with_context(|| format!("-i {spec}: {}", host.display()))?,
        guest,
    })
}
