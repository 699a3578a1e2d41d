//! Host files a scenario ships into the guest: `guest_file(path)` (a
//! scheduler's configuration, say) and `payload(program, args)` (a real
//! program as a cgroup's work, with its shared libraries).

use rhai::{Array, Engine};

use super::def::def;
use super::{fail, strings, Ctx, RhaiResult};
use crate::backend::Action;
use ktstr_plan::work::Work;

pub(super) fn register(engine: &mut Engine, ctx: &Ctx) {
    register_guest_file(engine, ctx);
    register_payload(engine, ctx);
}

/// The host file of payload `program`: a path (relative to `dir`) when it
/// has a slash, else the first executable of that name on PATH.
fn find_program(program: &str, dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &std::path::Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let p = dir.join(program);
        return if runnable(&p) {
            Ok(p)
        } else {
            Err(format!("payload {}: not an executable file", p.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(program))
        .find(|p| runnable(p))
        .ok_or_else(|| {
            format!(
                "payload `{program}` is not on PATH (install it on the host: scripts/setup.sh \
                 installs stress-ng, fio and rt-tests)"
            )
        })
}

fn register_payload(engine: &mut Engine, ctx: &Ctx) {
    let c = ctx.clone();
    def(
        engine,
        "payload(program: string, args: array) -> Work",
        "A real program as a cgroup's work: each worker runs `program` with `args`\n(strings) once, for the whole run or until it exits (ktstr stops it with\nSIGTERM at the end). ktstr ships it and its shared libraries into the guest,\nkeeps its output and reads its own metrics: stress-ng's bogo ops\n(`--metrics-brief`), fio's IOPS (`--output-format=json`), hackbench's time,\ncyclictest's latencies; claim them with `r.cgroup(\"x\").payload(\"bogo_ops_per_s\")`.\nA non-zero exit fails the run.",
        move |program: &str, args: Array| -> RhaiResult<Work> {
            let host = find_program(program, &c.dir).or_else(fail)?;
            let f = ktstr_plan::ShippedFile::new(&host).or_else(fail)?;
            let path = f.guest.clone();
            c.apply(Action::ShipFile(f))?;
            let args = strings("payload arguments", args)?;
            Ok(Work::Payload {
                run: Box::new(ktstr_plan::payload::PayloadRun {
                    program: program.to_string(),
                    path,
                    args,
                }),
            })
        },
    );
}

fn register_guest_file(engine: &mut Engine, ctx: &Ctx) {
    let c = ctx.clone();
    def(
        engine,
        "guest_file(path: string) -> string",
        "Ships the host file at `path` (relative to the scenario's directory) into\nthe guest and returns its path there (`/files/NAME`), to pass to the\nscheduler: `scheduler(\"scx_layered\", [\"--config\", guest_file(\"layered.json\")])`.\nThe file must exist, be at most 64 MiB and have a plain name; checked\nbefore anything boots.",
        move |path: &str| -> RhaiResult<String> {
            let host = c.dir.join(path);
            let f = ktstr_plan::ShippedFile::new(&host).or_else(fail)?;
            let guest = f.guest.clone();
            c.apply(Action::ShipFile(f))?;
            Ok(guest)
        },
    );
}
