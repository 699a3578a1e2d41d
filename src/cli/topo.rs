//! `ktstr topo`: the host's own CPU layout.

use std::path::Path;
use std::process::ExitCode;

use super::kernel::JsonArg;
use super::layout_view::{layout_json, layout_lines};

/// Prints the host's layout from /sys.
pub fn run(args: &JsonArg) -> anyhow::Result<ExitCode> {
    let layout = ktstr_topology::sysfs::read_layout(Path::new("/sys"))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&layout_json(&layout))?)?;
    } else {
        for line in layout_lines(&layout) {
            outln!("{line}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
