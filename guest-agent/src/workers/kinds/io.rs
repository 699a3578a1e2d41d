//! File I/O work. The guest has no disk: files live in its RAM-backed
//! `/tmp`, so these exercise the system calls, the page cache and the
//! locks around them, not device waits. Each file is bounded and removed.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Instant;

use super::{Run, IO_SYNC_BLOCKS};
use crate::workers::probe::Probe;

/// A scratch file of this worker, removed on drop.
struct Scratch {
    path: PathBuf,
    file: File,
}

impl Scratch {
    fn new(tag: &str, extra_flags: i32) -> Result<Self, String> {
        let path = std::env::temp_dir().join(format!("ktstr-{tag}-{}", std::process::id()));
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .custom_flags(extra_flags)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Scratch { path, file })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `block_kb` writes through `O_DSYNC`, cycling through 1 MiB.
pub(super) fn io_sync_write(r: &Run, p: &mut Probe, block_kb: u32) -> Result<(), String> {
    let s = Scratch::new("dsync", nix::libc::O_DSYNC)?;
    let block = vec![0xa5u8; block_kb as usize * 1024];
    let span = (IO_SYNC_BLOCKS * 4096).max(block.len() as u64);
    let mut off = 0u64;
    while !r.done() {
        s.file
            .write_all_at(&block, off)
            .map_err(|e| format!("io_sync_write: {e}"))?;
        off = (off + block.len() as u64) % span;
        p.count("bytes_written", block.len() as u64);
        p.progress();
    }
    Ok(())
}

/// Random 4 KiB reads over a `size_kb` file written once.
pub(super) fn io_rand_read(r: &Run, p: &mut Probe, size_kb: u32) -> Result<(), String> {
    let s = Scratch::new("randread", 0)?;
    let blocks = u64::from(size_kb.max(4) / 4);
    let block = [0x3cu8; 4096];
    for b in 0..blocks {
        s.file
            .write_all_at(&block, b * 4096)
            .map_err(|e| format!("io_rand_read: {e}"))?;
    }
    let mut buf = [0u8; 4096];
    let mut x = 0x2545_f491_4f6c_dd1du64;
    while !r.done() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.file
            .read_exact_at(&mut buf, (x % blocks) * 4096)
            .map_err(|e| format!("io_rand_read: {e}"))?;
        p.count("reads", 1);
        p.progress();
    }
    Ok(())
}

/// One convoy member's turn: take the file lock, append 4 KiB, fsync,
/// unlock. Returns how long it waited for the lock.
fn convoy_turn(file: &File, block: &[u8]) -> std::io::Result<std::time::Duration> {
    use std::os::fd::AsRawFd;
    let t = Instant::now();
    // SAFETY: flock on a file descriptor this function borrows.
    if unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let waited = t.elapsed();
    let len = file.metadata()?.len();
    // Keep the file within 1 MiB: start over when full.
    let off = if len >= IO_SYNC_BLOCKS * 4096 { 0 } else { len };
    let result = file.write_all_at(block, off).and_then(|_| file.sync_data());
    // SAFETY: as above; unlocking a lock this thread holds.
    unsafe { nix::libc::flock(file.as_raw_fd(), nix::libc::LOCK_UN) };
    result.map(|_| waited)
}

/// `threads` threads (this one too) appending under one `flock`.
pub(super) fn io_convoy(r: &Run, p: &mut Probe, threads: u32) -> Result<(), String> {
    let s = Scratch::new("convoy", 0)?;
    let done = Arc::new(AtomicBool::new(false));
    let block = [0x77u8; 4096];
    let others: Vec<_> = (1..threads.max(2))
        .map(|_| {
            // Each thread opens its own description of the file: flock
            // locks belong to descriptions, so only then do they convoy.
            let file = OpenOptions::new().read(true).write(true).open(&s.path);
            let d = done.clone();
            thread::spawn(move || {
                let Ok(f) = file else { return };
                while !d.load(Ordering::Relaxed) {
                    if convoy_turn(&f, &block).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    let result = (|| {
        while !r.done() {
            let waited = convoy_turn(&s.file, &block)?;
            p.wake(waited);
            p.count("appends", 1);
            p.progress();
        }
        Ok::<(), std::io::Error>(())
    })();
    done.store(true, Ordering::Relaxed);
    others.into_iter().for_each(|t| {
        let _ = t.join();
    });
    result.map_err(|e| format!("io_convoy: {e}"))
}
