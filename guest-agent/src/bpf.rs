//! The scheduler's BPF objects in the guest, read with the bpf(2)
//! syscall: each program's name and how many instructions the verifier
//! processed to accept it (`BPF_PROG_GET_NEXT_ID`, `..._GET_FD_BY_ID`,
//! `BPF_OBJ_GET_INFO_BY_FD`), and its global data maps (`.bss`, `.data`,
//! `.rodata`) with the BTF that names their fields, for the failure dump
//! (`BPF_MAP_LOOKUP_ELEM`, `BPF_BTF_GET_FD_BY_ID`). No libbpf: the agent
//! stays small. Sizes are bounded before anything is allocated or sent.

use std::os::fd::{FromRawFd, OwnedFd};

use ktstr_plan::results::{
    BpfBtf, BpfDump, BpfMapDump, BpfProgram, MAX_BPF_BTF_DUMP, MAX_BPF_MAP_DUMP,
};

const BPF_PROG_GET_NEXT_ID: i64 = 11;
const BPF_PROG_GET_FD_BY_ID: i64 = 13;
const BPF_OBJ_GET_INFO_BY_FD: i64 = 15;
/// The most programs read (a scheduler has tens).
const MAX_PROGRAMS: usize = 1024;
/// `struct bpf_prog_info` up to `verified_insns` and the two fields after
/// it (uapi/linux/bpf.h; the kernel fills what it knows and zeroes the
/// rest, and the layout only ever grows at the end).
const PROG_INFO_LEN: usize = 232;
const INFO_TYPE: usize = 0;
const INFO_ID: usize = 4;
const INFO_XLATED_LEN: usize = 20;
const INFO_NAME: usize = 64;
const INFO_VERIFIED_INSNS: usize = 216;

/// The bpf(2) syscall on an attribute buffer.
fn bpf(cmd: i64, attr: &mut [u8]) -> std::io::Result<i64> {
    // SAFETY: `attr` is a live, writable buffer of the length passed; the
    // kernel reads and writes at most that many bytes of it.
    let r = unsafe {
        nix::libc::syscall(
            nix::libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            attr.len() as nix::libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The ids of every object `cmd` walks (`BPF_PROG_GET_NEXT_ID`,
/// `BPF_MAP_GET_NEXT_ID`), in order, at most `most`.
fn next_ids(cmd: i64, most: usize) -> Vec<u32> {
    let mut ids = Vec::new();
    let mut start = 0u32;
    while ids.len() < most {
        // union bpf_attr { struct { u32 start_id; u32 next_id; ... } }
        let mut attr = [0u8; 16];
        attr[..4].copy_from_slice(&start.to_le_bytes());
        if bpf(cmd, &mut attr).is_err() {
            break;
        }
        start = u32_at(&attr, 4);
        ids.push(start);
    }
    ids
}

/// One program's info, by id (None when it is gone or unreadable).
fn program(id: u32) -> Option<BpfProgram> {
    let fd = fd_by_id(BPF_PROG_GET_FD_BY_ID, id)?;
    let mut info = vec![0u8; PROG_INFO_LEN];
    info_by_fd(&fd, &mut info)?;
    let name = &info[INFO_NAME..INFO_NAME + 16];
    let end = name.iter().position(|&b| b == 0).unwrap_or(16);
    Some(BpfProgram {
        id: u32_at(&info, INFO_ID),
        name: String::from_utf8_lossy(&name[..end]).into_owned(),
        prog_type: u32_at(&info, INFO_TYPE),
        xlated_bytes: u32_at(&info, INFO_XLATED_LEN),
        verified_insns: u32_at(&info, INFO_VERIFIED_INSNS),
    })
}

/// Every BPF program loaded in the guest now.
pub fn loaded_programs() -> Vec<BpfProgram> {
    next_ids(BPF_PROG_GET_NEXT_ID, MAX_PROGRAMS)
        .into_iter()
        .filter_map(program)
        .collect()
}

const BPF_MAP_LOOKUP_ELEM: i64 = 1;
const BPF_MAP_GET_NEXT_ID: i64 = 12;
const BPF_MAP_GET_FD_BY_ID: i64 = 14;
const BPF_BTF_GET_FD_BY_ID: i64 = 19;
/// `struct bpf_map_info` (uapi/linux/bpf.h).
const MAP_INFO_LEN: usize = 88;
const MAP_VALUE_SIZE: usize = 12;
const MAP_NAME: usize = 24;
const MAP_BTF_ID: usize = 64;
const MAP_BTF_VALUE_TYPE_ID: usize = 72;
/// The most maps looked at.
const MAX_MAPS: usize = 4096;

/// A descriptor for object `id` got with `cmd`.
fn fd_by_id(cmd: i64, id: u32) -> Option<OwnedFd> {
    let mut attr = [0u8; 16];
    attr[..4].copy_from_slice(&id.to_le_bytes());
    let fd = bpf(cmd, &mut attr).ok()?;
    // SAFETY: the kernel just returned this descriptor; nothing else owns
    // it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `BPF_OBJ_GET_INFO_BY_FD` into `info`.
fn info_by_fd(fd: &OwnedFd, info: &mut [u8]) -> Option<()> {
    // struct { u32 bpf_fd; u32 info_len; u64 info; }
    let mut attr = [0u8; 16];
    attr[..4].copy_from_slice(&(std::os::fd::AsRawFd::as_raw_fd(fd) as u32).to_le_bytes());
    attr[4..8].copy_from_slice(&(info.len() as u32).to_le_bytes());
    attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_le_bytes());
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).ok().map(|_| ())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// A global data map's value (key 0), if `id` is one.
fn global_map(id: u32) -> Option<BpfMapDump> {
    let fd = fd_by_id(BPF_MAP_GET_FD_BY_ID, id)?;
    let mut info = [0u8; MAP_INFO_LEN];
    info_by_fd(&fd, &mut info)?;
    let name = &info[MAP_NAME..MAP_NAME + 16];
    let end = name.iter().position(|&b| b == 0).unwrap_or(16);
    let name = String::from_utf8_lossy(&name[..end]).into_owned();
    if ![".bss", ".data", ".rodata"]
        .iter()
        .any(|s| name.ends_with(s))
    {
        return None;
    }
    let size = u32_at(&info, MAP_VALUE_SIZE) as usize;
    if size > 16 * MAX_BPF_MAP_DUMP {
        return None;
    }
    let mut value = vec![0u8; size];
    let key = 0u32.to_le_bytes();
    // struct { u32 map_fd; u32 pad; u64 key; u64 value; u64 flags; }
    let mut attr = [0u8; 32];
    attr[..4].copy_from_slice(&(std::os::fd::AsRawFd::as_raw_fd(&fd) as u32).to_le_bytes());
    attr[8..16].copy_from_slice(&(key.as_ptr() as u64).to_le_bytes());
    attr[16..24].copy_from_slice(&(value.as_mut_ptr() as u64).to_le_bytes());
    bpf(BPF_MAP_LOOKUP_ELEM, &mut attr).ok()?;
    value.truncate(MAX_BPF_MAP_DUMP);
    Some(BpfMapDump {
        name,
        value_hex: hex(&value),
        btf_id: u32_at(&info, MAP_BTF_ID),
        value_type_id: u32_at(&info, MAP_BTF_VALUE_TYPE_ID),
    })
}

/// BTF object `id`'s raw bytes (None when larger than the limit).
fn btf_bytes(id: u32) -> Option<Vec<u8>> {
    let fd = fd_by_id(BPF_BTF_GET_FD_BY_ID, id)?;
    // struct bpf_btf_info { u64 btf; u32 btf_size; u32 id; u64 name;
    // u32 name_len; u32 kernel_btf; }: first ask the size.
    let mut info = [0u8; 32];
    info_by_fd(&fd, &mut info)?;
    let size = u32_at(&info, 8) as usize;
    if size == 0 || size > MAX_BPF_BTF_DUMP {
        return None;
    }
    let mut buf = vec![0u8; size];
    let mut info = [0u8; 32];
    info[..8].copy_from_slice(&(buf.as_mut_ptr() as u64).to_le_bytes());
    info[8..12].copy_from_slice(&(size as u32).to_le_bytes());
    info_by_fd(&fd, &mut info)?;
    Some(buf)
}

/// The global data maps of every loaded BPF object (the scheduler's),
/// with their BTF, read now.
pub fn dump_globals(when: &str) -> BpfDump {
    let maps: Vec<BpfMapDump> = next_ids(BPF_MAP_GET_NEXT_ID, MAX_MAPS)
        .into_iter()
        .filter_map(global_map)
        .collect();
    let mut btfs: Vec<BpfBtf> = Vec::new();
    for m in &maps {
        if m.btf_id != 0 && !btfs.iter().any(|b| b.id == m.btf_id) {
            if let Some(b) = btf_bytes(m.btf_id) {
                btfs.push(BpfBtf {
                    id: m.btf_id,
                    hex: hex(&b),
                });
            }
        }
    }
    BpfDump {
        when: when.into(),
        maps,
        btfs,
    }
}
