//! The shared libraries an ELF binary needs, found the way the dynamic
//! loader finds them: `PT_INTERP`, then each `DT_NEEDED` through the
//! binary's `DT_RPATH`/`DT_RUNPATH`, the directories of `/etc/ld.so.conf`
//! and the system defaults, recursively.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

use goblin::elf::Elf;

use crate::VmError;

/// Searched after a binary's own run paths and ld.so.conf.
const DEFAULT_DIRS: [&str; 6] = [
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
];

/// What the loader must find for a set of binaries: guest path (the path
/// the loader asks for) to host file.
pub type Libraries = BTreeMap<String, PathBuf>;

/// The dependency closure of `binaries`. Statically linked binaries and
/// non-ELF files (scripts) need nothing.
pub fn closure(binaries: &[PathBuf]) -> Result<Libraries, VmError> {
    let search = system_dirs();
    let mut found = Libraries::new();
    let mut queue: VecDeque<PathBuf> = binaries.iter().cloned().collect();
    while let Some(bin) = queue.pop_front() {
        let data =
            fs::read(&bin).map_err(|e| VmError::Initramfs(format!("{}: {e}", bin.display())))?;
        let Ok(elf) = Elf::parse(&data) else {
            continue;
        };
        if let Some(interp) = elf.interpreter {
            if !found.contains_key(interp) {
                found.insert(interp.to_string(), PathBuf::from(interp));
            }
        }
        let mut dirs = run_paths(&elf, &bin);
        dirs.extend(search.iter().cloned());
        for name in &elf.libraries {
            if found.keys().any(|k| k.ends_with(&format!("/{name}"))) {
                continue;
            }
            let host = locate(name, &dirs, &elf).ok_or_else(|| {
                VmError::Initramfs(format!(
                    "{} needs {name}, which is in none of {}",
                    bin.display(),
                    dirs.iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            found.insert(host.to_string_lossy().into_owned(), host.clone());
            queue.push_back(host);
        }
    }
    Ok(found)
}

/// `DT_RPATH`/`DT_RUNPATH` entries with `$ORIGIN` expanded.
fn run_paths(elf: &Elf, bin: &Path) -> Vec<PathBuf> {
    let origin = bin
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    elf.rpaths
        .iter()
        .chain(elf.runpaths.iter())
        .flat_map(|p| p.split(':'))
        .filter(|p| !p.is_empty())
        .map(|p| PathBuf::from(p.replace("$ORIGIN", &origin).replace("${ORIGIN}", &origin)))
        .collect()
}

/// The first `dir/name` that is an ELF of the same class and machine.
fn locate(name: &str, dirs: &[PathBuf], wanted: &Elf) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| {
        fs::read(p).ok().is_some_and(|data| {
            Elf::parse(&data).is_ok_and(|e| {
                e.is_64 == wanted.is_64 && e.header.e_machine == wanted.header.e_machine
            })
        })
    })
}

/// Directories from `/etc/ld.so.conf` (following `include` globs of the
/// form `dir/*.conf`), then the defaults.
fn system_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    read_ld_conf(Path::new("/etc/ld.so.conf"), &mut dirs, 0);
    for d in DEFAULT_DIRS {
        let d = PathBuf::from(d);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs
}

fn read_ld_conf(path: &Path, dirs: &mut Vec<PathBuf>, depth: u32) {
    let Ok(text) = fs::read_to_string(path) else {
        return;
    };
    for line in text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
    {
        if let Some(pattern) = line.strip_prefix("include") {
            if depth < 4 {
                for conf in glob_conf(pattern.trim()) {
                    read_ld_conf(&conf, dirs, depth + 1);
                }
            }
        } else if line.starts_with('/') {
            let d = PathBuf::from(line);
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
}

/// Expands `dir/*.suffix` (the only glob ld.so.conf files use in practice).
fn glob_conf(pattern: &str) -> Vec<PathBuf> {
    let p = Path::new(pattern);
    let (Some(dir), Some(file)) = (p.parent(), p.file_name()) else {
        return Vec::new();
    };
    let file = file.to_string_lossy();
    let suffix = file.strip_prefix('*').unwrap_or(&file).to_string();
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(&suffix))
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_libc_and_loader_of_a_dynamic_binary() {
        let libs = closure(&[PathBuf::from("/bin/ls")]).unwrap();
        assert!(
            libs.keys().any(|k| k.ends_with("ld-linux-x86-64.so.2")),
            "{libs:?}"
        );
        assert!(libs.keys().any(|k| k.ends_with("/libc.so.6")), "{libs:?}");
        for host in libs.values() {
            assert!(host.is_file(), "{}", host.display());
        }
    }

    #[test]
    fn scripts_need_nothing_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s.sh");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        assert!(closure(&[script]).unwrap().is_empty());
        let e = closure(&[dir.path().join("nope")]).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }
}
