//! Shrinking the guest agent before it is packed: a debug build of it is
//! tens of MiB, nearly all debug info and symbol tables, which every
//! guest would otherwise decompress at boot. The kernel and the dynamic
//! loader read only the program headers, so an executable keeps working
//! when it is cut after the last byte its program headers cover and its
//! section header table is dropped (what `sstrip` does).

use goblin::elf::Elf;

/// Offsets in a 64-bit ELF header.
const E_SHOFF: usize = 0x28;
const E_SHNUM: usize = 0x3c;
const E_SHSTRNDX: usize = 0x3e;

/// `data` without section headers and what only they describe, or None
/// when it is not a little-endian 64-bit ELF or nothing would be saved.
pub fn strip_executable(data: &[u8]) -> Option<Vec<u8>> {
    let elf = Elf::parse(data).ok()?;
    if !elf.is_64 || !elf.little_endian {
        return None;
    }
    let headers_end =
        elf.header.e_phoff + u64::from(elf.header.e_phnum) * u64::from(elf.header.e_phentsize);
    let end = elf
        .program_headers
        .iter()
        .map(|p| p.p_offset.saturating_add(p.p_filesz))
        .chain([headers_end])
        .max()?;
    let end = usize::try_from(end).ok()?;
    if end >= data.len() {
        return None;
    }
    let mut out = data[..end].to_vec();
    out[E_SHOFF..E_SHOFF + 8].fill(0);
    out[E_SHNUM..E_SHNUM + 2].fill(0);
    out[E_SHSTRNDX..E_SHSTRNDX + 2].fill(0);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    #[test]
    fn stripped_programs_keep_their_segments_and_still_run() {
        let original = std::fs::read("/bin/true").unwrap();
        let Some(stripped) = strip_executable(&original) else {
            return; // already stripped to the bone
        };
        assert!(stripped.len() < original.len());
        let (a, b) = (
            Elf::parse(&original).unwrap(),
            Elf::parse(&stripped).unwrap(),
        );
        assert_eq!(b.section_headers.len(), 0);
        assert_eq!(a.program_headers, b.program_headers);
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("true");
        std::fs::write(&exe, &stripped).unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(Command::new(&exe).status().unwrap().success());
    }

    #[test]
    fn big_debug_binaries_shrink_and_others_are_left_alone() {
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let stripped = strip_executable(&me).expect("a test binary has debug info");
        assert!(
            stripped.len() * 2 < me.len(),
            "{} of {}",
            stripped.len(),
            me.len()
        );
        assert_eq!(strip_executable(b"#!/bin/sh\nexit 0\n"), None);
        assert_eq!(strip_executable(&stripped), None, "nothing left to strip");
    }
}
