//! `ktstr repl`: boots one VM, then evaluates scenario statements in it
//! live, one input at a time, from a terminal (line editing, history,
//! completion) or a pipe (one answer per statement; `--json` for
//! programs). Ctrl-C interrupts the running statement and keeps the VM;
//! Ctrl-D or `exit()` stops everything and shuts the VM down.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use ktstr_engine::repl::{Repl, ReplError, Reply};
use ktstr_plan::live::LiveGuest;
use ktstr_run::live::{LiveHost, LiveSession, LiveSessionRequest};

use super::guest::VmArgs;
use super::progress::Progress;
use super::repl_input::{self, Input, Inputs};

/// Arguments of `repl`.
#[derive(Debug, clap::Args)]
pub struct ReplArgs {
    #[command(flatten)]
    pub vm: VmArgs,
    /// A scheduler the session may start (repeatable; default: every
    /// sample scheduler of the kernel).
    #[arg(long, short = 's', value_name = "NAME")]
    pub scheduler: Vec<String>,
    /// Put a host file in the guest: HOST[:GUEST] (GUEST defaults to
    /// /bin/<file name>).
    #[arg(short = 'i', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
    /// Run FILE in the live VM first, then stay interactive.
    #[arg(long, value_name = "FILE")]
    pub script: Option<PathBuf>,
    /// With --script: exit after it (status 1 if it failed).
    #[arg(long, requires = "script")]
    pub exit: bool,
    /// One JSON object per statement (value or error) on stdout.
    #[arg(long)]
    pub json: bool,
    /// Seconds the VM may live (default: 30 days).
    #[arg(long, value_name = "SECS",
          value_parser = clap::value_parser!(u64).range(1..=super::MAX_TIMEOUT_S))]
    pub timeout: Option<u64>,
}

/// How often the guest is checked for news while the prompt waits.
const WATCH_EVERY: Duration = Duration::from_millis(300);

/// Runs `ktstr repl`.
pub fn run(args: ReplArgs, manifests: super::Manifests) -> anyhow::Result<ExitCode> {
    let script = match &args.script {
        Some(p) => Some((p.display().to_string(), read(p)?)),
        None => None,
    };
    let files = args
        .include
        .iter()
        .map(|s| super::shell::parse_include(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let kernel = super::guest::obtain_kernel(manifests.kernels, args.vm.kernel.as_deref())?;
    let host = LiveHost {
        registry: super::sched::registry(manifests.schedulers)?,
        layout: ktstr_kernel::CacheLayout::from_env()?,
        agent: super::guest::guest_agent()?,
    };
    let req = LiveSessionRequest {
        topology: args.vm.topology,
        kernel,
        backend: args.vm.backend,
        memory_mb: args.vm.memory_mb,
        append: args.vm.append.clone(),
        schedulers: args.scheduler.clone(),
        files,
        lifetime: Duration::from_secs(args.timeout.unwrap_or(super::MAX_TIMEOUT_S)),
        console_log: args.vm.console_log.clone(),
        snapshot: !args.vm.no_snapshot,
    };
    let interrupt = signals()?;
    errln!("ktstr repl: booting {}...", args.vm.topology);
    let session = LiveSession::start(
        &host,
        req,
        Arc::clone(&interrupt.statement),
        &Progress::new(),
    )?;
    let ready_s = session.ready_after().as_secs_f64();
    let out = Out { json: args.json };
    out.ready(&session, ready_s)?;
    let dir = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let mut repl = Repl::new(Box::new(session), &dir, Arc::clone(&interrupt.statement));
    let mut failed = false;
    if let Some((name, text)) = script {
        failed = !out.answer(&text, repl.run_file(&name, &text))?;
        if args.exit || interrupt.terminated() {
            return Ok(finish(repl, failed));
        }
    }
    let names = Arc::new(Mutex::new(repl.names()));
    let inputs = if std::io::stdin().is_terminal() && !args.json {
        errln!("help() lists the functions; exit() or Ctrl-D ends the session");
        repl_input::terminal(Arc::clone(&names))?
    } else {
        repl_input::pipe()
    };
    failed |= session_loop(&mut repl, &inputs, &out, &interrupt, &names)?;
    Ok(finish(repl, failed))
}

/// Reads, evaluates and prints until the end; whether any input failed.
fn session_loop(
    repl: &mut Repl,
    inputs: &Inputs,
    out: &Out,
    signals: &Signals,
    names: &Mutex<Vec<String>>,
) -> anyhow::Result<bool> {
    let mut failed = false;
    while !repl.exit_requested() && !signals.terminated() {
        inputs.ask();
        let input = loop {
            if let Some(i) = inputs.poll(WATCH_EVERY) {
                break i;
            }
            if signals.terminated() {
                return Ok(failed);
            }
            for n in repl.notices() {
                out.notice(&n, inputs)?;
            }
        };
        match input {
            Input::End => break,
            Input::Cancelled => continue,
            Input::Text(text) if text.trim().is_empty() => continue,
            Input::Text(text) => {
                failed |= !out.answer(&text, repl.eval(&text))?;
                *names.lock().unwrap_or_else(|p| p.into_inner()) = repl.names();
            }
        }
    }
    Ok(failed)
}

/// Ends the session: the VM shuts down as the REPL (and its session) is
/// dropped.
fn finish(repl: Repl, failed: bool) -> ExitCode {
    let t = Instant::now();
    drop(repl);
    errln!(
        "ktstr repl: VM shut down ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    ExitCode::from(u8::from(failed))
}

fn read(path: &Path) -> anyhow::Result<String> {
    ktstr_engine::check::read_script(path)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("--script {}", path.display()))
}

/// How answers are printed.
struct Out {
    json: bool,
}

impl Out {
    fn ready(&self, session: &LiveSession, ready_s: f64) -> anyhow::Result<()> {
        let kernel = session
            .report()
            .map(|r| r.kernel_release.clone())
            .unwrap_or_default();
        let schedulers = session.schedulers();
        if self.json {
            let v = serde_json::json!({
                "event": "ready",
                "ready_s": ready_s,
                "topology": session.topology().to_string(),
                "kernel": kernel,
                "schedulers": schedulers,
            });
            outln!("{v}")?;
        } else {
            errln!(
                "ready in {ready_s:.2} s: {} on kernel {kernel}; schedulers: {}",
                session.topology(),
                if schedulers.is_empty() {
                    "none".to_string()
                } else {
                    schedulers.join(", ")
                }
            );
        }
        Ok(())
    }

    /// Prints the answer to `input`; whether it succeeded.
    fn answer(&self, input: &str, r: Result<Reply, ReplError>) -> anyhow::Result<bool> {
        if self.json {
            let v = match &r {
                Ok(reply) => serde_json::json!({
                    "input": input.trim_end(),
                    "ok": true,
                    "value": reply.json,
                    "text": reply.value,
                    "notes": reply.notes,
                    "printed": reply.printed,
                }),
                Err(e) => serde_json::json!({
                    "input": input.trim_end(),
                    "ok": false,
                    "error": e.diagnostic,
                    "rendered": e.render(),
                    "notes": e.notes,
                }),
            };
            outln!("{v}")?;
            return Ok(r.is_ok());
        }
        match r {
            Ok(reply) => {
                for line in reply.printed.iter().chain(&reply.notes) {
                    outln!("{line}")?;
                }
                if let Some(v) = reply.value {
                    outln!("{v}")?;
                }
                Ok(true)
            }
            Err(e) => {
                for line in &e.notes {
                    outln!("{line}")?;
                }
                errln!("{}", e.render().trim_end());
                Ok(false)
            }
        }
    }

    /// Something the guest reported while the prompt waited.
    fn notice(&self, line: &str, inputs: &Inputs) -> anyhow::Result<()> {
        if self.json {
            outln!(
                "{}",
                serde_json::json!({ "event": "notice", "message": line })
            )?;
        } else if let Some(p) = &inputs.printer {
            let mut p = p.lock().unwrap_or_else(|e| e.into_inner());
            let _ = p.print(format!("{line}\n"));
        } else {
            outln!("{line}")?;
        }
        Ok(())
    }
}

/// Ctrl-C interrupts the statement; SIGTERM or SIGHUP ends the session.
struct Signals {
    /// Set by SIGINT (and by the end signals, so waits end).
    statement: Arc<AtomicBool>,
    /// Set by SIGTERM or SIGHUP.
    end: Arc<AtomicBool>,
}

impl Signals {
    fn terminated(&self) -> bool {
        self.end.load(Ordering::SeqCst)
    }
}

fn signals() -> anyhow::Result<Signals> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let statement = Arc::new(AtomicBool::new(false));
    let end = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGINT, Arc::clone(&statement))?;
    for sig in [SIGTERM, SIGHUP] {
        signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&end))?;
        signal_hook::flag::register(sig, Arc::clone(&end))?;
        signal_hook::flag::register(sig, Arc::clone(&statement))?;
    }
    Ok(Signals { statement, end })
}
