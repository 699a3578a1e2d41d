//! Builds the own VMM's tiny test kernels with binutils (shared by
//! `tests/kvm_boot.rs` and `benches/kvm_boot.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn tool(dir: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} (binutils): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn source(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/guest")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// `as --64` of `name` (which includes `common.inc` beside it).
fn assemble(dir: &Path, name: &str, object: &str) {
    let include = source("");
    tool(
        dir,
        "as",
        &["--64", "-I", &include, "-o", object, &source(name)],
    );
}

/// The PVH test kernel (an ELF with the Xen PHYS32_ENTRY note).
pub fn pvh_kernel(dir: &Path) -> PathBuf {
    assemble(dir, "pvh.S", "pvh.o");
    tool(
        dir,
        "ld",
        &[
            "-m",
            "elf_x86_64",
            "-N",
            "--build-id=none",
            "--no-warn-rwx-segments",
            "-Ttext=0x100000",
            "-e",
            "pvh_start",
            "-o",
            "pvh.elf",
            "pvh.o",
        ],
    );
    dir.join("pvh.elf")
}

/// The bzImage test kernel.
pub fn bz_kernel(dir: &Path) -> PathBuf {
    assemble(dir, "bzimage.S", "bz.o");
    tool(
        dir,
        "objcopy",
        &["-O", "binary", "-j", ".text", "bz.o", "bzImage"],
    );
    dir.join("bzImage")
}
