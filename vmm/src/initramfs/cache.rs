//! Base images cached by the content hash of everything in them.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;

use super::{elf_deps, write_base, Compression, InitramfsContents, LD_SO_CACHE};
use crate::error::IoAt;
use crate::VmError;

/// Bumped when the image layout changes, so old bases are not reused.
const FORMAT_VERSION: &str = "ktstr-initramfs-2";
/// Base images kept; older ones are removed when a new one is written.
const KEEP: usize = 8;

/// A base image on disk.
#[derive(Debug, Clone)]
pub struct BaseImage {
    /// The compressed cpio file.
    pub path: PathBuf,
    /// Its content key (BLAKE3 of the format, compression, and every
    /// file's guest path and content).
    pub key: String,
    /// Whether it was found in the cache rather than built now.
    pub cached: bool,
    /// Files in it, libraries included.
    pub files: usize,
}

/// The directory of cached base images.
#[derive(Debug, Clone)]
pub struct InitramfsCache {
    dir: PathBuf,
}

impl InitramfsCache {
    /// Bases under `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        InitramfsCache { dir: dir.into() }
    }

    /// The base image for `contents`, built now if no image with the same
    /// content key exists.
    pub fn base(
        &self,
        contents: &InitramfsContents,
        compression: Compression,
    ) -> Result<BaseImage, VmError> {
        let primary = contents.primary();
        let elf_inputs: Vec<PathBuf> = primary.iter().map(|f| f.host.clone()).collect();
        let libs = elf_deps::closure(&elf_inputs)?;
        let key = content_key(contents, &libs, compression)?;
        let ext = match compression {
            Compression::Gzip => "cpio.gz",
            Compression::None => "cpio",
        };
        let path = self.dir.join(format!("base-{key}.{ext}"));
        let files = primary.len() + libs.len();
        if path.is_file() {
            return Ok(BaseImage {
                path,
                key,
                cached: true,
                files,
            });
        }
        fs::create_dir_all(&self.dir).at(&self.dir)?;
        let tmp = tempfile::NamedTempFile::new_in(&self.dir).at(&self.dir)?;
        let out = BufWriter::new(tmp.as_file().try_clone().at(tmp.path())?);
        match compression {
            Compression::Gzip => {
                let gz = GzEncoder::new(out, flate2::Compression::fast());
                let gz = write_base(gz, contents, &libs)?;
                let mut out = gz.finish().at(tmp.path())?;
                out.flush().at(tmp.path())?;
            }
            Compression::None => {
                let mut out = write_base(out, contents, &libs)?;
                out.flush().at(tmp.path())?;
            }
        }
        tmp.persist(&path).map_err(|e| VmError::Io {
            path: path.clone(),
            error: e.error,
        })?;
        self.prune(&path);
        Ok(BaseImage {
            path,
            key,
            cached: false,
            files,
        })
    }

    /// Removes all but the newest [`KEEP`] bases (never `keep`).
    fn prune(&self, keep: &Path) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        let mut bases: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("base-"))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .collect();
        bases.sort_by_key(|b| std::cmp::Reverse(b.0));
        for (_, p) in bases.into_iter().skip(KEEP) {
            if p != keep {
                let _ = fs::remove_file(p);
            }
        }
    }
}

fn content_key(
    contents: &InitramfsContents,
    libs: &elf_deps::Libraries,
    compression: Compression,
) -> Result<String, VmError> {
    let mut h = blake3::Hasher::new();
    h.update(FORMAT_VERSION.as_bytes());
    h.update(format!("{compression:?}").as_bytes());
    let mut entries: Vec<(String, PathBuf)> = contents
        .primary()
        .into_iter()
        .map(|f| (f.guest, f.host))
        .chain(libs.iter().map(|(g, h)| (g.clone(), h.clone())))
        .collect();
    if Path::new(LD_SO_CACHE).is_file() {
        entries.push((LD_SO_CACHE.into(), PathBuf::from(LD_SO_CACHE)));
    }
    for (guest, host) in entries {
        h.update(guest.as_bytes());
        h.update(&[0]);
        let mut f = fs::File::open(&host).at(&host)?;
        let mut fh = blake3::Hasher::new();
        std::io::copy(&mut f, &mut fh).at(&host)?;
        h.update(fh.finalize().as_bytes());
        use std::os::unix::fs::PermissionsExt;
        let mode = f.metadata().at(&host)?.permissions().mode();
        h.update(&mode.to_le_bytes());
    }
    Ok(h.finalize().to_hex()[..16].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initramfs::GuestFile;

    fn contents(extra: &Path) -> InitramfsContents {
        InitramfsContents {
            agent: PathBuf::from("/bin/true"),
            busybox: None,
            files: vec![GuestFile {
                host: extra.to_path_buf(),
                guest: "/bin/extra".into(),
            }],
        }
    }

    #[test]
    fn same_content_is_reused_and_changed_content_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        let extra = dir.path().join("extra.txt");
        fs::write(&extra, "one").unwrap();
        let cache = InitramfsCache::new(dir.path().join("cache"));
        let a = cache.base(&contents(&extra), Compression::Gzip).unwrap();
        assert!(!a.cached);
        assert!(a.files >= 3, "agent, extra and libc at least");
        let b = cache.base(&contents(&extra), Compression::Gzip).unwrap();
        assert!(b.cached);
        assert_eq!(a.path, b.path);
        fs::write(&extra, "two").unwrap();
        let c = cache.base(&contents(&extra), Compression::Gzip).unwrap();
        assert!(!c.cached);
        assert_ne!(c.key, a.key);
        let raw = cache.base(&contents(&extra), Compression::None).unwrap();
        assert!(fs::read(&raw.path).unwrap().starts_with(b"070701"));
        let gz = fs::read(&c.path).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    }
}
