//! Kernel sources: what a user can point at (tarball, tree, release
//! version), how each is identified by content so the cache can be keyed
//! on it, and how a tarball is extracted.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};
use std::process::Command;
use std::time::UNIX_EPOCH;

use sha2::{Digest, Sha256};

use crate::error::{IoContext, KernelError, Result};
use crate::layout::{remove_dir_if_exists, CacheLayout};
use crate::observer::Observer;

/// Debian's packaged kernel source, the default source on Debian.
pub const DEBIAN_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";

/// Default kernel.org mirror; override with `KTSTR_KERNEL_MIRROR` or a
/// kernels.toml `mirror` field.
pub const KERNEL_ORG_MIRROR: &str = "https://cdn.kernel.org/pub/linux/kernel";

/// What a kernel is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// A local `.tar.xz` / `.tar.gz` of a kernel tree.
    Tarball(PathBuf),
    /// A local kernel source tree.
    Tree(PathBuf),
    /// A release downloaded from a kernel.org-style mirror.
    Release {
        /// e.g. `6.12.58`.
        version: String,
        /// Base URL holding `v6.x/linux-*.tar.xz` and `v6.x/sha256sums.asc`.
        mirror: String,
    },
}

/// How a source was given, as recorded in cache manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A local tarball.
    Tarball,
    /// A local tree.
    Tree,
    /// A downloaded release.
    Release,
}

/// A source identified by content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceIdentity {
    /// How it was given.
    pub kind: SourceKind,
    /// The path or URL it came from.
    pub location: String,
    /// Kernel version from the tree's Makefile, e.g. `6.12.117`.
    pub version: String,
    /// SHA-256 of the tarball, or a fingerprint of the tree's state.
    pub content_id: String,
}

/// Parses `VERSION`, `PATCHLEVEL`, `SUBLEVEL`, `EXTRAVERSION` from a
/// top-level kernel Makefile.
pub fn version_from_makefile(text: &str) -> Option<String> {
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    for line in text.lines().take(20) {
        if let Some((k, v)) = line.split_once('=') {
            let k = k.trim();
            if matches!(k, "VERSION" | "PATCHLEVEL" | "SUBLEVEL" | "EXTRAVERSION") {
                fields.insert(k, v.trim().to_string());
            }
        }
    }
    let major = fields.get("VERSION").filter(|v| !v.is_empty())?;
    let minor = fields.get("PATCHLEVEL").filter(|v| !v.is_empty())?;
    let mut version = format!("{major}.{minor}");
    if let Some(sub) = fields
        .get("SUBLEVEL")
        .filter(|s| !s.is_empty() && *s != "0")
    {
        version.push('.');
        version.push_str(sub);
    }
    if let Some(extra) = fields.get("EXTRAVERSION") {
        version.push_str(extra);
    }
    Some(version)
}

/// Whether `s` looks like a kernel release number (`6.12`, `6.12.58`,
/// `6.13-rc3`).
pub fn is_version(s: &str) -> bool {
    let (nums, rc) = match s.split_once("-rc") {
        Some((n, rc)) => (n, Some(rc)),
        None => (s, None),
    };
    let parts: Vec<_> = nums.split('.').collect();
    (2..=3).contains(&parts.len())
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && rc.is_none_or(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_digit()))
}

/// A reader that hashes everything read through it and counts bytes.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

enum Compression {
    Xz,
    Gzip,
}

fn sniff_compression(path: &Path) -> Result<Compression> {
    let mut magic = [0u8; 6];
    let mut f = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => KernelError::TarballMissing {
            path: path.to_path_buf(),
        },
        _ => KernelError::io(path, e),
    })?;
    let n = read_up_to(&mut f, &mut magic).at(path)?;
    match &magic[..n] {
        [0xFD, b'7', b'z', b'X', b'Z', 0x00] => Ok(Compression::Xz),
        [0x1F, 0x8B, ..] => Ok(Compression::Gzip),
        _ => Err(KernelError::TarballCorrupt {
            path: path.to_path_buf(),
            reason: "not an xz or gzip compressed tarball".into(),
        }),
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn decoder<'a, R: Read + 'a>(c: &Compression, r: R) -> Box<dyn Read + 'a> {
    match c {
        Compression::Xz => Box::new(xz2::read::XzDecoder::new(r)),
        Compression::Gzip => Box::new(flate2::read::GzDecoder::new(r)),
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> KernelError {
    KernelError::TarballCorrupt {
        path: path.to_path_buf(),
        reason: one_line(&e.to_string()),
    }
}

/// Collapses a message onto one line.
pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Hashes a tarball and reads the kernel version from its top-level
/// Makefile in one pass (decompressing only up to the Makefile).
fn hash_and_version(path: &Path) -> Result<(String, String)> {
    let compression = sniff_compression(path)?;
    let file = std::fs::File::open(path).at(path)?;
    let mut hashing = HashingReader {
        inner: BufReader::with_capacity(1 << 20, file),
        hasher: Sha256::new(),
        read: 0,
    };
    let version = {
        let mut archive = tar::Archive::new(decoder(&compression, &mut hashing));
        let mut found = None;
        for entry in archive.entries().map_err(|e| corrupt(path, e))? {
            let mut entry = entry.map_err(|e| corrupt(path, e))?;
            let entry_path = entry.path().map_err(|e| corrupt(path, e))?.into_owned();
            let comps: Vec<_> = entry_path.components().collect();
            if comps.len() == 2 && comps[1] == Component::Normal("Makefile".as_ref()) {
                let mut text = String::new();
                entry
                    .read_to_string(&mut text)
                    .map_err(|e| corrupt(path, e))?;
                found = version_from_makefile(&text);
                break;
            }
        }
        found.ok_or_else(|| {
            corrupt(
                path,
                "no top-level kernel Makefile: not a kernel source tarball",
            )
        })?
    };
    std::io::copy(&mut hashing, &mut std::io::sink()).at(path)?;
    Ok((hex::encode(hashing.hasher.finalize()), version))
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct MemoEntry {
    size: u64,
    mtime_ns: u128,
    sha256: String,
    version: String,
}

fn fingerprint(meta: &std::fs::Metadata) -> (u64, u128) {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    (meta.len(), mtime)
}

/// Identifies a tarball by content, using the memo when the file's size and
/// mtime are unchanged since it was last hashed.
pub fn identify_tarball(
    layout: &CacheLayout,
    path: &Path,
    kind: SourceKind,
    location: &str,
) -> Result<SourceIdentity> {
    let canonical = std::fs::canonicalize(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => KernelError::TarballMissing {
            path: path.to_path_buf(),
        },
        _ => KernelError::io(path, e),
    })?;
    let meta = std::fs::metadata(&canonical).at(&canonical)?;
    let (size, mtime_ns) = fingerprint(&meta);
    let key = canonical.to_string_lossy().into_owned();
    let memo_path = layout.sources_memo();
    let memo: BTreeMap<String, MemoEntry> = std::fs::read(&memo_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let hit = memo
        .get(&key)
        .filter(|m| m.size == size && m.mtime_ns == mtime_ns)
        .cloned();
    let entry = match hit {
        Some(m) => m,
        None => {
            let (sha256, version) = hash_and_version(&canonical)?;
            let m = MemoEntry {
                size,
                mtime_ns,
                sha256,
                version,
            };
            let _guard = layout.lock("sources-memo")?;
            let mut fresh: BTreeMap<String, MemoEntry> = std::fs::read(&memo_path)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            fresh.insert(key, m.clone());
            write_atomic(
                &memo_path,
                &serde_json::to_vec_pretty(&fresh).expect("memo serializes"),
            )?;
            m
        }
    };
    Ok(SourceIdentity {
        kind,
        location: location.to_string(),
        version: entry.version,
        content_id: entry.sha256,
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

/// Identifies a source tree: version from its Makefile, fingerprint from
/// git state when it is a git checkout, else from the newest mtime.
pub fn identify_tree(path: &Path) -> Result<SourceIdentity> {
    let bad = |reason: &str| KernelError::BadTree {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let canonical = std::fs::canonicalize(path).map_err(|_| bad("not found"))?;
    let makefile =
        std::fs::read_to_string(canonical.join("Makefile")).map_err(|_| bad("no Makefile"))?;
    if !canonical.join("Kconfig").is_file() {
        return Err(bad("no Kconfig: not a kernel source tree"));
    }
    let version = version_from_makefile(&makefile)
        .ok_or_else(|| bad("Makefile has no VERSION/PATCHLEVEL"))?;
    let mut h = Sha256::new();
    h.update(canonical.to_string_lossy().as_bytes());
    match git_state(&canonical) {
        Some(state) => h.update(state),
        None => h.update(newest_mtime(&canonical).to_le_bytes()),
    }
    Ok(SourceIdentity {
        kind: SourceKind::Tree,
        location: canonical.to_string_lossy().into_owned(),
        version,
        content_id: hex::encode(h.finalize()),
    })
}

fn git_state(tree: &Path) -> Option<Vec<u8>> {
    if !tree.join(".git").exists() {
        return None;
    }
    let run = |args: &[&str]| -> Option<Vec<u8>> {
        let out = Command::new("git")
            .arg("-C")
            .arg(tree)
            .args(args)
            .output()
            .ok()?;
        out.status.success().then_some(out.stdout)
    };
    let mut state = run(&["rev-parse", "HEAD"])?;
    state.extend(run(&["diff", "HEAD"])?);
    state.extend(run(&["status", "--porcelain=v1"])?);
    Some(state)
}

fn newest_mtime(dir: &Path) -> u128 {
    let mut newest = 0u128;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in rd.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                newest = newest.max(fingerprint(&meta).1);
            }
        }
    }
    newest
}

/// Extracts a tarball into `layout.src_dir()/<id>` (once; later calls reuse
/// it) and returns the kernel tree inside.
pub fn extract(
    layout: &CacheLayout,
    tarball: &Path,
    id: &SourceIdentity,
    observer: &dyn Observer,
) -> Result<PathBuf> {
    let short = &id.content_id[..16];
    let dest = layout.src_dir().join(short);
    let _guard = layout.lock(&format!("src-{short}"))?;
    if let Some(tree) = single_subdir(&dest) {
        return Ok(tree);
    }
    let staging = layout.src_dir().join(format!(".staging-{short}"));
    remove_dir_if_exists(&staging)?;
    std::fs::create_dir_all(&staging).at(&staging)?;
    let compression = sniff_compression(tarball)?;
    let total = std::fs::metadata(tarball).at(tarball)?.len();
    observer.phase(&format!("extract {}", tarball.display()), Some(total));
    let file = std::fs::File::open(tarball).at(tarball)?;
    let counting = ProgressReader {
        inner: BufReader::with_capacity(1 << 20, file),
        done: 0,
        observer,
    };
    let mut archive = tar::Archive::new(decoder(&compression, counting));
    archive.set_preserve_permissions(true);
    archive.unpack(&staging).map_err(|e| corrupt(tarball, e))?;
    if single_subdir(&staging).is_none() {
        return Err(corrupt(tarball, "expected exactly one top-level directory"));
    }
    remove_dir_if_exists(&dest)?;
    std::fs::rename(&staging, &dest).at(&dest)?;
    observer.finish("extracted");
    single_subdir(&dest).ok_or_else(|| corrupt(tarball, "extraction vanished"))
}

/// The kernel tree of source `id`, if it is on disk: a local tree where
/// it was given, or a tarball's extraction (see [`extract`]).
pub fn tree_on_disk(layout: &CacheLayout, id: &SourceIdentity) -> Option<PathBuf> {
    match id.kind {
        SourceKind::Tree => {
            let tree = PathBuf::from(&id.location);
            tree.join("Makefile").is_file().then_some(tree)
        }
        SourceKind::Tarball | SourceKind::Release => {
            single_subdir(&layout.src_dir().join(&id.content_id[..16]))
        }
    }
}

fn single_subdir(dir: &Path) -> Option<PathBuf> {
    let mut subdirs = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.path().is_dir());
    let first = subdirs.next()?.path();
    (subdirs.next().is_none() && first.join("Makefile").is_file()).then_some(first)
}

struct ProgressReader<'a, R> {
    inner: R,
    done: u64,
    observer: &'a dyn Observer,
}

impl<R: BufRead> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        self.observer.advance(self.done);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_parsing() {
        let mk = "# SPDX\nVERSION = 6\nPATCHLEVEL = 12\nSUBLEVEL = 117\nEXTRAVERSION =\nNAME = x\n";
        assert_eq!(version_from_makefile(mk).as_deref(), Some("6.12.117"));
        let rc = "VERSION = 6\nPATCHLEVEL = 13\nSUBLEVEL = 0\nEXTRAVERSION = -rc3\n";
        assert_eq!(version_from_makefile(rc).as_deref(), Some("6.13-rc3"));
        assert_eq!(version_from_makefile("all:\n\ttrue\n"), None);
    }

    #[test]
    fn version_syntax() {
        for ok in ["6.12", "6.12.58", "6.13-rc3"] {
            assert!(is_version(ok), "{ok}");
        }
        for bad in [
            "6",
            "6.12.58.1",
            "v6.12",
            "6.x",
            "6.12-rc",
            "/tmp/6.12",
            "6..1",
        ] {
            assert!(!is_version(bad), "{bad}");
        }
    }
}
