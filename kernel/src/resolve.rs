//! `--kernel ID`: one identifier that may be a kernels.toml name, a cache
//! key, a version, a source tree, a tarball, a cache entry directory, or a
//! bzImage/vmlinux file, resolved the same way by every command.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::build::{build, BuildRequest};
use crate::cache::{KernelCache, Lookup};
use crate::error::{KernelError, Result};
use crate::kernels_toml::{KernelsToml, NamedKernel};
use crate::manifest::{CacheEntry, Manifest};
use crate::observer::Observer;
use crate::prepare::prepare;
use crate::source::{is_version, SourceKind, SourceSpec, DEBIAN_TARBALL};

/// File names taken to be source tarballs even before they are opened.
const TARBALL_SUFFIXES: [&str; 4] = [".tar.xz", ".txz", ".tar.gz", ".tgz"];

/// The format of a kernel image given directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    /// An x86 boot-protocol image.
    BzImage,
    /// An uncompressed ELF kernel.
    Vmlinux,
}

/// A kernel ready to boot.
#[derive(Debug, Clone)]
pub enum BootKernel {
    /// A built cache entry (with schedulers, config, symbols).
    Entry(CacheEntry),
    /// A bare image file given by path.
    Image {
        /// The file.
        path: PathBuf,
        /// Its format.
        format: ImageFormat,
    },
}

impl BootKernel {
    /// The image a run boots: the entry's bzImage, or the file given.
    pub fn boot_image(&self) -> PathBuf {
        match self {
            BootKernel::Entry(e) => e.bzimage(),
            BootKernel::Image { path, .. } => path.clone(),
        }
    }

    /// The image ktstr's own KVM VMM boots: the uncompressed `vmlinux`
    /// (entered through PVH, nothing to decompress) where there is one,
    /// else the bzImage.
    pub fn own_vmm_image(&self) -> PathBuf {
        match self {
            BootKernel::Entry(e) if e.vmlinux().is_file() => e.vmlinux(),
            _ => self.boot_image(),
        }
    }
}

/// What an identifier denotes before anything is built.
#[derive(Debug, Clone)]
pub enum Target {
    /// Something bootable already.
    Ready(BootKernel),
    /// A source that must be built (or found in the cache by its key).
    Source(BuildRequest),
}

/// Resolves kernel identifiers against a cache and an optional
/// kernels.toml.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// The cache.
    pub cache: KernelCache,
    /// The named kernels, if a kernels.toml was found.
    pub named: Option<KernelsToml>,
    /// Mirror for bare version numbers.
    pub mirror: String,
}

impl Resolver {
    /// What `id` denotes (`None`: the default kernel).
    pub fn target(&self, id: Option<&str>) -> Result<Target> {
        let Some(id) = id else {
            return self.default_target();
        };
        if let Some(named) = self.named.as_ref().and_then(|t| t.kernels.get(id)) {
            return Ok(Target::Source(request_for(named)));
        }
        let key_dir = self.cache.layout().entry_dir(id);
        if !id.contains('/') && key_dir.is_dir() {
            return self.entry_target(id);
        }
        let path = Path::new(id);
        if path.exists() {
            return path_target(path);
        }
        if TARBALL_SUFFIXES.iter().any(|s| id.ends_with(s)) {
            // Named like a tarball: identification reports it missing by name.
            return Ok(Target::Source(plain_request(SourceSpec::Tarball(
                path.to_path_buf(),
            ))));
        }
        if is_version(id) {
            return Ok(self.version_target(id));
        }
        Err(KernelError::UnknownKernel { id: id.to_string() })
    }

    fn default_target(&self) -> Result<Target> {
        if let Some(t) = &self.named {
            if let Some(name) = &t.default {
                return Ok(Target::Source(request_for(&t.kernels[name])));
            }
        }
        let debian = PathBuf::from(DEBIAN_TARBALL);
        if debian.is_file() {
            return Ok(Target::Source(plain_request(SourceSpec::Tarball(debian))));
        }
        Err(KernelError::NoDefaultSource { path: debian })
    }

    /// A cache key: the entry if valid, else a rebuild from its recorded
    /// source.
    fn entry_target(&self, key: &str) -> Result<Target> {
        match self.cache.lookup(key) {
            Lookup::Valid(entry) => Ok(Target::Ready(BootKernel::Entry(entry))),
            _ => {
                let dir = self.cache.layout().entry_dir(key);
                let manifest =
                    Manifest::load(&dir).map_err(|reason| KernelError::InvalidEntry {
                        id: key.to_string(),
                        rebuild: format!("ktstr kernel build {key}"),
                        key: key.to_string(),
                        reason,
                    })?;
                Ok(Target::Source(request_from_manifest(&manifest)))
            }
        }
    }

    /// A version: the newest valid entry built from that kernel.org release
    /// with ktstr's fragment alone, else a download of that release. (A
    /// distribution tarball with the same number is patched: not a match.)
    fn version_target(&self, version: &str) -> Target {
        let rows = self.cache.list(false).unwrap_or_default();
        for row in rows {
            let Some(m) = row.manifest else { continue };
            if m.version == version
                && m.source.kind == SourceKind::Release
                && m.fragments.len() == 1
            {
                if let Lookup::Valid(entry) = self.cache.lookup(&row.key) {
                    return Target::Ready(BootKernel::Entry(entry));
                }
            }
        }
        Target::Source(plain_request(SourceSpec::Release {
            version: version.to_string(),
            mirror: self.mirror.clone(),
        }))
    }

    /// The bootable kernel for `id`, without building: a source that is not
    /// in the cache yet is [`KernelError::NotBuilt`].
    pub fn locate(&self, id: Option<&str>, observer: &dyn Observer) -> Result<BootKernel> {
        let shown = id.unwrap_or("(default)").to_string();
        let rebuild = match id {
            Some(id) => format!("ktstr kernel build {id}"),
            None => "ktstr kernel build".to_string(),
        };
        let invalid = |key: String, reason: String| KernelError::InvalidEntry {
            id: shown.clone(),
            rebuild: rebuild.clone(),
            key,
            reason,
        };
        if let Some(key) = id.filter(|k| !k.contains('/')) {
            if let Lookup::Invalid(reason) = self.cache.lookup(key) {
                return Err(invalid(key.to_string(), reason));
            }
        }
        match self.target(id)? {
            Target::Ready(k) => Ok(k),
            Target::Source(req) => {
                let layout = self.cache.layout();
                let prepared =
                    prepare(layout, &req.source, req.extra_kconfig.as_deref(), observer)?;
                match self.cache.lookup(&prepared.key) {
                    Lookup::Valid(entry) => Ok(BootKernel::Entry(entry)),
                    Lookup::Invalid(reason) => Err(invalid(prepared.key, reason)),
                    Lookup::Absent => Err(KernelError::NotBuilt {
                        id: shown,
                        key: prepared.key,
                    }),
                }
            }
        }
    }

    /// The bootable kernel for `id`, building it first if needed.
    pub fn obtain(&self, id: Option<&str>, observer: &dyn Observer) -> Result<BootKernel> {
        match self.target(id)? {
            Target::Ready(k) => Ok(k),
            Target::Source(req) => Ok(BootKernel::Entry(build(&self.cache, &req, observer)?.entry)),
        }
    }
}

fn plain_request(source: SourceSpec) -> BuildRequest {
    BuildRequest {
        source,
        extra_kconfig: None,
        jobs: None,
        force: false,
    }
}

/// The build request for a kernels.toml entry.
pub fn request_for(named: &NamedKernel) -> BuildRequest {
    BuildRequest {
        extra_kconfig: named.extra_kconfig.clone(),
        ..plain_request(named.source.clone())
    }
}

/// The request that rebuilds the entry `m` describes from its recorded
/// source and fragments.
pub fn request_from_manifest(m: &Manifest) -> BuildRequest {
    let source = match m.source.kind {
        SourceKind::Tree => SourceSpec::Tree(m.source.location.clone().into()),
        SourceKind::Tarball => SourceSpec::Tarball(m.source.location.clone().into()),
        SourceKind::Release => {
            let mirror = m
                .source
                .location
                .rsplit_once("/v")
                .map_or_else(|| m.source.location.clone(), |(base, _)| base.to_string());
            SourceSpec::Release {
                version: m.version.clone(),
                mirror,
            }
        }
    };
    BuildRequest {
        extra_kconfig: m.fragments.get(1).map(PathBuf::from),
        ..plain_request(source)
    }
}

/// What a path on disk denotes, judged by content.
fn path_target(path: &Path) -> Result<Target> {
    if path.is_dir() {
        if path.join("manifest.json").is_file() {
            let manifest = Manifest::load(path).map_err(|reason| KernelError::BadTree {
                path: path.to_path_buf(),
                reason,
            })?;
            manifest
                .verify(path)
                .map_err(|reason| KernelError::BadTree {
                    path: path.to_path_buf(),
                    reason: format!("corrupt cache entry: {reason}"),
                })?;
            return Ok(Target::Ready(BootKernel::Entry(CacheEntry {
                dir: path.to_path_buf(),
                manifest: Box::new(manifest),
            })));
        }
        return Ok(Target::Source(plain_request(SourceSpec::Tree(
            path.to_path_buf(),
        ))));
    }
    let mut head = vec![0u8; 0x210];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| KernelError::io(path, e))?;
    let head = &head[..n];
    if head.starts_with(b"\x7fELF") {
        return Ok(image(path, ImageFormat::Vmlinux));
    }
    if head.len() >= 0x206 && &head[0x202..0x206] == b"HdrS" {
        return Ok(image(path, ImageFormat::BzImage));
    }
    // Anything else is taken as a tarball; identification reports a
    // corrupt one with its name.
    Ok(Target::Source(plain_request(SourceSpec::Tarball(
        path.to_path_buf(),
    ))))
}

fn image(path: &Path, format: ImageFormat) -> Target {
    Target::Ready(BootKernel::Image {
        path: path.to_path_buf(),
        format,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::CacheLayout;

    fn resolver(root: &Path) -> Resolver {
        Resolver {
            cache: KernelCache::new(CacheLayout::at(root)),
            named: None,
            mirror: "http://127.0.0.1:9/m".into(),
        }
    }

    #[test]
    fn identifies_images_by_content() {
        let tmp = tempfile::tempdir().unwrap();
        let r = resolver(tmp.path());
        let elf = tmp.path().join("vmlinux");
        std::fs::write(&elf, b"\x7fELF\x02\x01").unwrap();
        let mut bz = vec![0u8; 0x400];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        let bzp = tmp.path().join("bz");
        std::fs::write(&bzp, &bz).unwrap();
        match r.target(Some(elf.to_str().unwrap())).unwrap() {
            Target::Ready(BootKernel::Image { format, .. }) => {
                assert_eq!(format, ImageFormat::Vmlinux)
            }
            other => panic!("{other:?}"),
        }
        match r.target(Some(bzp.to_str().unwrap())).unwrap() {
            Target::Ready(BootKernel::Image { format, .. }) => {
                assert_eq!(format, ImageFormat::BzImage)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn versions_trees_and_unknowns() {
        let tmp = tempfile::tempdir().unwrap();
        let r = resolver(tmp.path());
        match r.target(Some("6.12.58")).unwrap() {
            Target::Source(req) => assert!(matches!(req.source, SourceSpec::Release { .. })),
            other => panic!("{other:?}"),
        }
        match r.target(Some(tmp.path().to_str().unwrap())).unwrap() {
            Target::Source(req) => assert!(matches!(req.source, SourceSpec::Tree(_))),
            other => panic!("{other:?}"),
        }
        let e = r.target(Some("no-such-kernel")).unwrap_err().to_string();
        assert!(e.starts_with("no kernel matches `no-such-kernel`"), "{e}");
    }

    #[test]
    fn release_manifest_round_trips_its_mirror() {
        let m = Manifest {
            format: 1,
            key: "k".into(),
            version: "6.12.58".into(),
            source: crate::source::SourceIdentity {
                kind: SourceKind::Release,
                location: "http://127.0.0.1:8/pub/v6.x/linux-6.12.58.tar.xz".into(),
                version: "6.12.58".into(),
                content_id: "0".repeat(64),
            },
            arch: "x86_64".into(),
            config_hash: "0".repeat(64),
            fragments: vec!["ktstr.kconfig".into()],
            build_slot: "s".into(),
            created_unix: 0,
            build_seconds: 0.0,
            files: vec![],
            schedulers: vec![],
            selftests: Default::default(),
        };
        match request_from_manifest(&m).source {
            SourceSpec::Release { mirror, version } => {
                assert_eq!(mirror, "http://127.0.0.1:8/pub");
                assert_eq!(version, "6.12.58");
            }
            other => panic!("{other:?}"),
        }
    }
}
