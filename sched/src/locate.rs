//! Where a scheduler named in a script or on the command line is on the
//! host: a path (it has a `/`), one installed in the cache, or a program
//! on PATH; and whether what is there can run as a scheduler at all.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ktstr_kernel::CacheLayout;

use crate::install::installed;

/// Why the file at `path` cannot be started as a scheduler, if it cannot
/// (a phrase such as "is not executable (mode 644)"): it must be a regular
/// file, executable, and an ELF program (the guest has no interpreter for
/// scripts).
pub fn check_program(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be read: {e}"))?;
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        return Err(format!("is not executable (mode {:o})", mode & 0o7777));
    }
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic));
    if read.is_err() || magic != *b"\x7fELF" {
        return Err("is not an ELF program".into());
    }
    Ok(())
}

/// The host binary of scheduler `name` (not a kernel sample scheduler):
/// a path when `name` has a `/`, else one installed in the cache, else a
/// program on PATH. `Err` says why there is none.
pub fn on_host(name: &str) -> Result<PathBuf, String> {
    if name.contains('/') {
        let path = PathBuf::from(name);
        check_program(&path)?;
        return Ok(path);
    }
    let cached = CacheLayout::from_env()
        .ok()
        .and_then(|l| installed(&l, name, None))
        .map(|i| i.binary);
    let found = cached.or_else(|| on_path(name)).ok_or_else(|| {
        format!(
            "not found: not a sample scheduler of the kernel cache, not installed \
             (ktstr sched install {name}), not on PATH"
        )
    })?;
    check_program(&found).map_err(|why| format!("({}) {why}", found.display()))?;
    Ok(found)
}

/// The first executable file `name` in a directory of `PATH`.
fn on_path(name: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_executable_elf_files_are_schedulers() {
        assert!(check_program(Path::new("/bin/true")).is_ok());
        let e = on_host("/etc/passwd").unwrap_err();
        assert!(e.contains("not executable"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(check_program(&script).unwrap_err().contains("not an ELF"));
        assert!(check_program(dir.path())
            .unwrap_err()
            .contains("not a regular file"));
        assert!(on_host("/nonexistent/scx")
            .unwrap_err()
            .starts_with("cannot be read"));
        let e = on_host("scx_surely_not_on_this_host").unwrap_err();
        assert!(e.starts_with("not found"), "{e}");
    }
}
