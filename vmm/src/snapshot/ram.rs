//! Guest RAM images: a node's RAM saved as a sparse file (only blocks
//! that are not all zero are written, found through the source's data
//! extents), and loaded back into a fresh sealed memfd that the restored
//! VM and the host's introspection share. Both directions hash what they
//! carry (each non-zero block with its index), so a load that does not
//! reproduce the saved digest is refused before any VM sees the memory.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use nix::unistd::{lseek, Whence};
use serde::{Deserialize, Serialize};

use crate::introspect::{ram_memfd, RamBacking};

/// Blocks of this size are stored or skipped whole.
const BLOCK: u64 = 64 << 10;

/// What one RAM image holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RamDigest {
    /// The node's RAM in bytes (the image's logical size).
    pub len: u64,
    /// Bytes stored (non-zero blocks).
    pub data_bytes: u64,
    /// BLAKE3 over each non-zero block's index and bytes, in order.
    pub blake3: String,
}

/// The data extents of `file` within `len`: (start, end) pairs, from
/// `SEEK_DATA`/`SEEK_HOLE` (tmpfs and ext4 both answer them; a file
/// system that does not reports all of it as data).
fn data_extents(file: &File, len: u64) -> io::Result<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut at = 0u64;
    while at < len {
        let start = match lseek(file, at as i64, Whence::SeekData) {
            Ok(s) => s as u64,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(io::Error::from(e)),
        };
        if start >= len {
            break;
        }
        let end = match lseek(file, start as i64, Whence::SeekHole) {
            Ok(e) => (e as u64).min(len),
            Err(e) => return Err(io::Error::from(e)),
        };
        out.push((start, end));
        at = end;
    }
    Ok(out)
}

/// Calls `each(offset, block)` for every non-zero block of `file`'s first
/// `len` bytes, in order; returns the digest.
fn for_each_block(
    file: &File,
    len: u64,
    mut each: impl FnMut(u64, &[u8]) -> io::Result<()>,
) -> io::Result<RamDigest> {
    let zero = vec![0u8; BLOCK as usize];
    let mut buf = vec![0u8; BLOCK as usize];
    let mut hasher = blake3::Hasher::new();
    let mut data_bytes = 0;
    let mut next_block = 0u64;
    for (start, end) in data_extents(file, len)? {
        let mut block = (start / BLOCK).max(next_block);
        while block * BLOCK < end {
            let off = block * BLOCK;
            let n = BLOCK.min(len - off) as usize;
            file.read_exact_at(&mut buf[..n], off)?;
            if buf[..n] != zero[..n] {
                hasher.update(&block.to_le_bytes());
                hasher.update(&buf[..n]);
                data_bytes += n as u64;
                each(off, &buf[..n])?;
            }
            block += 1;
        }
        next_block = block;
    }
    Ok(RamDigest {
        len,
        data_bytes,
        blake3: hasher.finalize().to_hex().to_string(),
    })
}

/// Saves `ram` (a node's RAM file) as the sparse image `dst`.
pub fn save(ram: &RamBacking, dst: &Path) -> io::Result<RamDigest> {
    let out = File::create(dst)?;
    out.set_len(ram.len)?;
    let digest = for_each_block(&ram.file, ram.len, |off, block| {
        out.write_all_at(block, off)
    })?;
    // No fsync: a torn image after a crash fails its hash on the next
    // use and is taken again.
    Ok(digest)
}

/// Loads the image `src` into a fresh sealed memfd, checking it against
/// `expected` on the way; an image of another size or content is an
/// error and its memory is dropped.
pub fn load(src: &Path, expected: &RamDigest, name: &str) -> Result<RamBacking, String> {
    let file = File::open(src).map_err(|e| format!("{}: {e}", src.display()))?;
    let size = file
        .metadata()
        .map_err(|e| format!("{}: {e}", src.display()))?
        .len();
    if size != expected.len {
        return Err(format!(
            "{} holds {size} bytes, the manifest says {}",
            src.display(),
            expected.len
        ));
    }
    let ram = ram_memfd(name, expected.len).map_err(|e| e.to_string())?;
    let digest = for_each_block(&file, expected.len, |off, block| {
        ram.write_all_at(block, off)
    })
    .map_err(|e| format!("{}: {e}", src.display()))?;
    if digest != *expected {
        return Err(format!(
            "{} does not match its manifest ({} data bytes, hash {}; expected {} and {})",
            src.display(),
            digest.data_bytes,
            &digest.blake3[..16],
            expected.data_bytes,
            &expected.blake3[..16.min(expected.blake3.len())]
        ));
    }
    Ok(RamBacking {
        file: ram,
        len: expected.len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram_with(len: u64, writes: &[(u64, &[u8])]) -> RamBacking {
        let file = ram_memfd("ktstr-test", len).unwrap();
        for (off, bytes) in writes {
            file.write_all_at(bytes, *off).unwrap();
        }
        RamBacking { file, len }
    }

    fn read_all(ram: &RamBacking) -> Vec<u8> {
        let mut v = vec![0u8; ram.len as usize];
        ram.file.read_exact_at(&mut v, 0).unwrap();
        v
    }

    #[test]
    fn a_saved_image_loads_back_byte_for_byte_and_stays_sparse() {
        let len = 8 << 20;
        let src = ram_with(
            len,
            &[
                (4096, b"hello"),
                (3 << 20, &[7u8; 70_000]),
                (len - 3, b"end"),
            ],
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ram0");
        let digest = save(&src, &path).unwrap();
        assert_eq!(digest.len, len);
        // Three touched places, one of them two blocks long.
        assert_eq!(digest.data_bytes, 4 * BLOCK);
        let back = load(&path, &digest, "ktstr-test").unwrap();
        assert_eq!(read_all(&back), read_all(&src));
        // Zero-written blocks were not stored: the image is mostly holes.
        let on_disk = std::os::unix::fs::MetadataExt::blocks(&path.metadata().unwrap()) * 512;
        assert!(on_disk < len / 4, "{on_disk} bytes allocated");
    }

    #[test]
    fn a_truncated_or_altered_image_is_refused() {
        let src = ram_with(1 << 20, &[(0, b"data"), (512 << 10, b"more")]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ram0");
        let digest = save(&src, &path).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(b"x", 1).unwrap();
        let e = load(&path, &digest, "t").err().unwrap();
        assert!(e.contains("does not match its manifest"), "{e}");
        f.set_len(1000).unwrap();
        let e = load(&path, &digest, "t").err().unwrap();
        assert!(e.contains("holds 1000 bytes"), "{e}");
    }
}
