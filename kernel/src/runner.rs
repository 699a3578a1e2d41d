//! Runs one build step (make, merge_config.sh): stdout and stderr merged
//! into the step's log file, each line passed to the observer, and the last
//! lines kept for the error message if the step fails.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{IoContext, KernelError, Result};
use crate::observer::Observer;

/// Lines of output quoted in a failure message.
const TAIL_LINES: usize = 40;

/// Runs `cmd` as the step `step`, appending its output to `log`.
pub fn run_step(step: &str, mut cmd: Command, log: &Path, observer: &dyn Observer) -> Result<()> {
    let mut log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .at(log)?;
    writeln!(log_file, "==> {step}: {cmd:?}").at(log)?;
    let (reader, writer) = std::io::pipe().at(log)?;
    let writer2 = writer.try_clone().at(log)?;
    cmd.stdin(Stdio::null()).stdout(writer).stderr(writer2);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => KernelError::MissingTool {
            tool: program.clone(),
            hint: "install the kernel build packages; see README".into(),
        },
        _ => KernelError::io(&program, e),
    })?;
    // The Command still holds the write ends; drop it so EOF arrives.
    drop(cmd);
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    for line in BufReader::new(reader).split(b'\n') {
        let line = line.at(log)?;
        let text = String::from_utf8_lossy(&line).into_owned();
        log_file.write_all(&line).at(log)?;
        log_file.write_all(b"\n").at(log)?;
        observer.line(text.trim());
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
    }
    let status = child.wait().at(&program)?;
    if status.success() {
        return Ok(());
    }
    Err(KernelError::BuildStep {
        step: step.to_string(),
        status: status.to_string(),
        log: log.to_path_buf(),
        tail: tail.into_iter().collect::<Vec<_>>().join("\n"),
    })
}

/// Whether `tool` is an executable on `PATH`.
pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let p = dir.join(tool);
            std::fs::metadata(&p).is_ok_and(|m| m.is_file())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observer::Silent;

    #[test]
    fn failing_step_reports_tail_and_log() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out-line; echo err-line >&2; exit 3"]);
        let err = run_step("demo step", cmd, &log, &Silent).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("demo step failed (exit status: 3)"),
            "{msg}"
        );
        assert!(
            msg.contains("out-line") && msg.contains("err-line"),
            "{msg}"
        );
        let logged = std::fs::read_to_string(&log).unwrap();
        assert!(logged.contains("out-line") && logged.contains("err-line"));
    }

    #[test]
    fn missing_program_is_a_missing_tool() {
        let tmp = tempfile::tempdir().unwrap();
        let err = run_step(
            "x",
            Command::new("ktstr-no-such-tool"),
            &tmp.path().join("l"),
            &Silent,
        )
        .unwrap_err();
        assert!(matches!(err, KernelError::MissingTool { .. }), "{err}");
    }
}
