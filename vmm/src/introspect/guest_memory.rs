//! Guest RAM as the host reads it: read-only mappings of the files that
//! back the guest's memory (the QEMU backend's memfds, one per NUMA node),
//! placed at their guest-physical addresses.
//!
//! Every read is bounds-checked against the mappings: a guest-controlled
//! address can make a read fail, never make the host touch memory outside
//! guest RAM. The guest writes its RAM while the host reads it, so values
//! may be torn or stale; readers treat them as untrusted samples.

use std::fs::File;
use std::sync::Arc;

use super::IntrospectError;

/// One file that backs a stretch of guest RAM (RAM is the concatenation of
/// the backings, in order).
#[derive(Debug)]
pub struct RamBacking {
    /// The file; mapped read-only and shared, so the host sees the guest's
    /// writes.
    pub file: File,
    /// Its length in bytes.
    pub len: u64,
}

/// A stretch of guest-physical addresses backed by part of one mapping.
#[derive(Debug)]
struct Region {
    gpa: u64,
    len: u64,
    map: Arc<memmap2::Mmap>,
    map_offset: usize,
}

/// Read-only, bounds-checked access to guest RAM by guest-physical address.
#[derive(Debug)]
pub struct GuestMemory {
    regions: Vec<Region>,
}

impl GuestMemory {
    /// Maps `backings` (guest RAM in order) at the guest-physical
    /// `ranges` (start, length), which must cover exactly as many bytes as
    /// the backings hold.
    pub fn map(backings: &[RamBacking], ranges: &[(u64, u64)]) -> Result<Self, IntrospectError> {
        let total: u64 = backings.iter().map(|b| b.len).sum();
        let covered: u64 = ranges.iter().map(|r| r.1).sum();
        if total != covered {
            return Err(IntrospectError::Map(format!(
                "{total} bytes of backing for {covered} bytes of guest-physical ranges"
            )));
        }
        let mut maps = Vec::new();
        for b in backings {
            // SAFETY: a shared read-only mapping of a file the VM backend
            // created and sealed against shrinking (so no access can fault
            // with SIGBUS); the guest changing its contents under us is
            // expected, and every read copies bytes out volatilely instead
            // of handing out references.
            let map = unsafe { memmap2::MmapOptions::new().len(b.len as usize).map(&b.file) }
                .map_err(|e| IntrospectError::Map(e.to_string()))?;
            maps.push(Arc::new(map));
        }
        let mut regions = Vec::new();
        let (mut file, mut file_pos) = (0usize, 0u64);
        for &(start, len) in ranges {
            let (mut gpa, mut left) = (start, len);
            while left > 0 {
                let map = &maps[file];
                let room = map.len() as u64 - file_pos;
                let take = room.min(left);
                regions.push(Region {
                    gpa,
                    len: take,
                    map: Arc::clone(map),
                    map_offset: file_pos as usize,
                });
                gpa += take;
                left -= take;
                file_pos += take;
                if file_pos == map.len() as u64 {
                    file += 1;
                    file_pos = 0;
                }
            }
        }
        Ok(GuestMemory { regions })
    }

    /// Guest RAM in bytes.
    pub fn size(&self) -> u64 {
        self.regions.iter().map(|r| r.len).sum()
    }

    /// Copies `buf.len()` bytes from guest-physical `gpa`; the range must
    /// lie within guest RAM.
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), IntrospectError> {
        let out_of_range = IntrospectError::OutOfRange {
            gpa,
            len: buf.len(),
        };
        let mut done = 0usize;
        while done < buf.len() {
            let at = gpa.checked_add(done as u64).ok_or(out_of_range.clone())?;
            let region = self
                .regions
                .iter()
                .find(|r| at >= r.gpa && at - r.gpa < r.len)
                .ok_or(out_of_range.clone())?;
            let within = (at - region.gpa) as usize;
            let take = (buf.len() - done).min(region.len as usize - within);
            let base = region.map.as_ptr();
            for (i, byte) in buf[done..done + take].iter_mut().enumerate() {
                // SAFETY: `region.map_offset + within + i` is below the
                // mapping's length (the region lies within its mapping and
                // `take` stays inside the region); the mapping lives as
                // long as `region`. A volatile read: the guest writes this
                // memory concurrently.
                *byte = unsafe { base.add(region.map_offset + within + i).read_volatile() };
            }
            done += take;
        }
        Ok(())
    }

    /// A little-endian u32 at `gpa`.
    pub fn read_u32(&self, gpa: u64) -> Result<u32, IntrospectError> {
        let mut b = [0u8; 4];
        self.read(gpa, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// A little-endian u64 at `gpa`.
    pub fn read_u64(&self, gpa: u64) -> Result<u64, IntrospectError> {
        let mut b = [0u8; 8];
        self.read(gpa, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }
}

/// A sealed memfd of `len` bytes to back guest RAM: it cannot be shrunk
/// (so the host's mapping never faults) and is closed on exec unless the
/// backend hands it on deliberately.
pub fn ram_memfd(name: &str, len: u64) -> Result<File, IntrospectError> {
    use nix::fcntl::{fcntl, FcntlArg, SealFlag};
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create(name, MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING)
        .map_err(|e| IntrospectError::Map(format!("memfd_create: {e}")))?;
    let file = File::from(fd);
    file.set_len(len)
        .map_err(|e| IntrospectError::Map(format!("sizing the RAM memfd: {e}")))?;
    fcntl(&file, FcntlArg::F_ADD_SEALS(SealFlag::F_SEAL_SHRINK))
        .map_err(|e| IntrospectError::Map(format!("sealing the RAM memfd: {e}")))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    fn backing(len: u64, fill: u8) -> RamBacking {
        let file = ram_memfd("ktstr-test", len).unwrap();
        file.write_all_at(&vec![fill; len as usize], 0).unwrap();
        RamBacking { file, len }
    }

    #[test]
    fn reads_follow_the_ranges_across_backings_and_holes() {
        let b = [backing(8192, 1), backing(8192, 2)];
        // 12 KiB low, a hole, 4 KiB high: the second backing is split.
        let m = GuestMemory::map(&b, &[(0, 12288), (1 << 32, 4096)]).unwrap();
        assert_eq!(m.size(), 16384);
        assert_eq!(m.read_u32(0).unwrap(), 0x01010101);
        assert_eq!(m.read_u32(8192).unwrap(), 0x02020202);
        assert_eq!(m.read_u64(1 << 32).unwrap(), 0x0202020202020202);
        // A read that straddles the two backings at 8 KiB.
        let mut buf = [0u8; 4];
        m.read(8190, &mut buf).unwrap();
        assert_eq!(buf, [1, 1, 2, 2]);
        // The guest's writes show through.
        b[0].file.write_all_at(&[9, 9, 9, 9], 4).unwrap();
        assert_eq!(m.read_u32(4).unwrap(), 0x09090909);
    }

    #[test]
    fn reads_outside_ram_fail_instead_of_faulting() {
        let b = [backing(4096, 1)];
        let m = GuestMemory::map(&b, &[(0, 4096)]).unwrap();
        for gpa in [4096, 4094, u64::MAX - 2, 1 << 40] {
            let err = m.read_u32(gpa).unwrap_err();
            assert!(matches!(err, IntrospectError::OutOfRange { .. }), "{err}");
        }
        let mut big = vec![0u8; 8192];
        assert!(m.read(0, &mut big).is_err());
    }

    #[test]
    fn a_layout_that_does_not_cover_the_backings_is_refused() {
        let b = [backing(4096, 1)];
        let err = GuestMemory::map(&b, &[(0, 8192)]).unwrap_err();
        assert!(err.to_string().contains("4096 bytes of backing"), "{err}");
    }
}
