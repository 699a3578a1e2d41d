//! The BPF programs loaded in the guest, read with the bpf(2) syscall
//! (`BPF_PROG_GET_NEXT_ID`, `BPF_PROG_GET_FD_BY_ID`,
//! `BPF_OBJ_GET_INFO_BY_FD`): each program's name and how many
//! instructions the verifier processed to accept it. No libbpf: the agent
//! stays small.

use std::os::fd::{FromRawFd, OwnedFd};

use ktstr_plan::results::BpfProgram;

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

/// The ids of every loaded program, in order.
fn program_ids() -> Vec<u32> {
    let mut ids = Vec::new();
    let mut start = 0u32;
    while ids.len() < MAX_PROGRAMS {
        // union bpf_attr { struct { u32 start_id; u32 next_id; ... } }
        let mut attr = [0u8; 16];
        attr[..4].copy_from_slice(&start.to_le_bytes());
        if bpf(BPF_PROG_GET_NEXT_ID, &mut attr).is_err() {
            break;
        }
        start = u32_at(&attr, 4);
        ids.push(start);
    }
    ids
}

/// One program's info, by id (None when it is gone or unreadable).
fn program(id: u32) -> Option<BpfProgram> {
    let mut attr = [0u8; 16];
    attr[..4].copy_from_slice(&id.to_le_bytes());
    let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut attr).ok()?;
    // SAFETY: the kernel just returned this descriptor to us; nothing else
    // owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut info = vec![0u8; PROG_INFO_LEN];
    // struct { u32 bpf_fd; u32 info_len; u64 info; }
    let mut attr = [0u8; 16];
    attr[..4].copy_from_slice(&(std::os::fd::AsRawFd::as_raw_fd(&fd) as u32).to_le_bytes());
    attr[4..8].copy_from_slice(&(PROG_INFO_LEN as u32).to_le_bytes());
    attr[8..16].copy_from_slice(&(info.as_mut_ptr() as u64).to_le_bytes());
    bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).ok()?;
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
    program_ids().into_iter().filter_map(program).collect()
}
