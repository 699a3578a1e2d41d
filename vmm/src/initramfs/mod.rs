//! Initramfs images: a cached base (guest agent, busybox, extra files and
//! every shared library they need) plus a small per-job suffix, appended
//! back to back as the kernel allows.

mod cache;
pub mod cpio;
pub mod elf_deps;
mod strip;

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use cache::{BaseImage, InitramfsCache};
use cpio::CpioWriter;
use ktstr_proto::{JobSpec, JOB_PATH};

use crate::error::IoAt;
use crate::VmError;

/// Where the loader's cache goes in the guest (copied from the host, so
/// that libraries placed at their host paths are found the host's way).
const LD_SO_CACHE: &str = "/etc/ld.so.cache";

/// A host file placed in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestFile {
    /// The file on the host.
    pub host: PathBuf,
    /// Its absolute path in the guest.
    pub guest: String,
}

/// What goes into a base image.
#[derive(Debug, Clone)]
pub struct InitramfsContents {
    /// The guest agent, installed as `/init`.
    pub agent: PathBuf,
    /// busybox, installed as `/bin/busybox` (shell and exec jobs).
    pub busybox: Option<PathBuf>,
    /// Further files (schedulers, `-i` files); ELF ones bring their
    /// libraries.
    pub files: Vec<GuestFile>,
}

impl InitramfsContents {
    /// Every file of the image without libraries, guest path first.
    fn primary(&self) -> Vec<GuestFile> {
        let mut v = vec![GuestFile {
            host: self.agent.clone(),
            guest: "/init".into(),
        }];
        if let Some(b) = &self.busybox {
            v.push(GuestFile {
                host: b.clone(),
                guest: "/bin/busybox".into(),
            });
        }
        v.extend(self.files.iter().cloned());
        v
    }
}

/// How the base image is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// gzip (`CONFIG_RD_GZIP`).
    Gzip,
    /// None: every kernel with initramfs support reads plain cpio.
    None,
}

impl Compression {
    /// gzip if the kernel's config enables `CONFIG_RD_GZIP` (or no config
    /// is known), else none.
    pub fn for_kernel_config(config: Option<&str>) -> Self {
        match config {
            Some(c) if !c.lines().any(|l| l.trim() == "CONFIG_RD_GZIP=y") => Compression::None,
            _ => Compression::Gzip,
        }
    }
}

/// The uncompressed cpio suffix carrying the job file.
pub fn job_suffix(job: &JobSpec) -> Vec<u8> {
    let json = serde_json::to_vec_pretty(job).expect("jobs always serialize");
    let mut w = CpioWriter::new(Vec::new());
    w.file(JOB_PATH, 0o644, &json)
        .and_then(|_| w.finish())
        .expect("writing to memory cannot fail")
}

/// Writes `base`, padding to 4 bytes, then `suffix` to `out`: one
/// initramfs the kernel unpacks archive by archive.
pub fn assemble(base: &Path, suffix: &[u8], out: &Path) -> Result<(), VmError> {
    let mut dst = File::create(out).at(out)?;
    let mut src = File::open(base).at(base)?;
    let n = io::copy(&mut src, &mut dst).at(out)?;
    let pad = (4 - (n % 4) as usize) % 4;
    dst.write_all(&[0u8; 3][..pad]).at(out)?;
    dst.write_all(suffix).at(out)?;
    Ok(())
}

/// Writes the uncompressed base archive for `contents` with `libs`.
fn write_base<W: Write>(
    out: W,
    contents: &InitramfsContents,
    libs: &elf_deps::Libraries,
) -> Result<W, VmError> {
    let mut w = CpioWriter::new(out);
    let err = |e: io::Error| VmError::Initramfs(format!("writing the archive: {e}"));
    for d in [
        "/dev", "/proc", "/sys", "/tmp", "/root", "/ktstr", "/bin", "/sbin",
    ] {
        w.dir(d).map_err(err)?;
    }
    w.char_device("/dev/console", 5, 1).map_err(err)?;
    for f in contents.primary() {
        // Only the agent is ours to strip; users' files go in as given.
        let strip = f.host == contents.agent;
        put_file(&mut w, &f.host, &f.guest, strip)?;
    }
    for (guest, host) in libs {
        put_file(&mut w, host, guest, false)?;
    }
    if Path::new(LD_SO_CACHE).is_file() {
        put_file(&mut w, Path::new(LD_SO_CACHE), LD_SO_CACHE, false)?;
    }
    w.finish().map_err(err)
}

/// Adds `host` as `guest`; `strip` drops its debug info and section
/// headers ([`strip::strip_executable`]).
fn put_file<W: Write>(
    w: &mut CpioWriter<W>,
    host: &Path,
    guest: &str,
    strip: bool,
) -> Result<(), VmError> {
    use std::os::unix::fs::PermissionsExt;
    let mut data = std::fs::read(host).at(host)?;
    if strip {
        data = strip::strip_executable(&data).unwrap_or(data);
    }
    let mode = std::fs::metadata(host).at(host)?.permissions().mode();
    w.file(guest, mode, &data)
        .map_err(|e| VmError::Initramfs(format!("adding {}: {e}", host.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_follows_the_kernel_config() {
        assert_eq!(Compression::for_kernel_config(None), Compression::Gzip);
        let c = "CONFIG_RD_GZIP=y\nCONFIG_RD_LZ4=y\n";
        assert_eq!(Compression::for_kernel_config(Some(c)), Compression::Gzip);
        let c = "# CONFIG_RD_GZIP is not set\n";
        assert_eq!(Compression::for_kernel_config(Some(c)), Compression::None);
    }

    #[test]
    fn suffix_is_a_cpio_holding_the_job() {
        let job = JobSpec {
            job: ktstr_proto::Job::Probe,
            fault: None,
        };
        let s = job_suffix(&job);
        assert!(s.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&s);
        assert!(text.contains("ktstr/job.json"));
        assert!(text.contains("\"probe\""));
        assert!(text.contains("TRAILER!!!"));
    }
}
