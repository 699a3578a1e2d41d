//! Assembles a real-mode test guest of `tests/guest/` into a flat binary
//! with binutils (shared by the freestanding tests).

use std::path::Path;
use std::process::Command;

/// `as --32` then `objcopy -O binary` of `tests/guest/<name>` (which may
/// include `real_mode_io.inc` beside it).
pub fn assemble(name: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let guest = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guest");
    let src = guest.join(name);
    let obj = dir.path().join("t.o");
    let bin = dir.path().join("t.bin");
    let ok = Command::new("as")
        .args(["--32", "-I"])
        .arg(&guest)
        .arg("-o")
        .arg(&obj)
        .arg(&src)
        .status()
        .expect("as (binutils) runs")
        .success();
    assert!(ok, "as failed on {name}");
    let ok = Command::new("objcopy")
        .args(["-O", "binary", "-j", ".text"])
        .arg(&obj)
        .arg(&bin)
        .status()
        .expect("objcopy runs")
        .success();
    assert!(ok, "objcopy failed on {name}");
    std::fs::read(bin).unwrap()
}
