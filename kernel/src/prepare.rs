//! Turning a source and fragments into a cache key, without building:
//! identify the source by content, hash the configuration inputs, and
//! derive the key and the kbuild slot.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::download::{fetch_release, tarball_url};
use crate::error::Result;
use crate::kconfig::{config_hash, Fragment};
use crate::layout::CacheLayout;
use crate::observer::Observer;
use crate::source::{identify_tarball, identify_tree, SourceIdentity, SourceKind, SourceSpec};

/// Target architecture of the guest kernels built here.
pub const ARCH: &str = "x86_64";

/// A source identified and keyed, ready to be looked up or built.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The source, by content.
    pub identity: SourceIdentity,
    /// Fragments applied after tinyconfig, in order.
    pub fragments: Vec<Fragment>,
    /// Hash of the configuration inputs.
    pub config_hash: String,
    /// The cache key.
    pub key: String,
    /// The kbuild output slot (shared by successive states of one tree).
    pub slot: String,
    /// The tarball to extract (none for trees).
    pub tarball: Option<PathBuf>,
}

/// The cache key: `<version>-<source 8 hex>-<config 8 hex>`.
pub fn cache_key(version: &str, content_id: &str, config_hash: &str) -> String {
    format!("{version}-{}-{}", &content_id[..8], &config_hash[..8])
}

/// Identifies `source` (downloading a release if needed), reads the extra
/// fragment, and computes the key.
pub fn prepare(
    layout: &CacheLayout,
    source: &SourceSpec,
    extra_kconfig: Option<&Path>,
    observer: &dyn Observer,
) -> Result<Prepared> {
    let mut fragments = vec![Fragment::ktstr()];
    if let Some(extra) = extra_kconfig {
        fragments.push(Fragment::from_file(extra)?);
    }
    let cfg = config_hash(ARCH, &fragments);
    let (identity, tarball) = match source {
        SourceSpec::Tarball(path) => {
            let location = path.to_string_lossy();
            let id = identify_tarball(layout, path, SourceKind::Tarball, &location)?;
            (id, Some(path.clone()))
        }
        SourceSpec::Release { version, mirror } => {
            let path = fetch_release(layout, version, mirror, observer)?;
            let url = tarball_url(mirror, version);
            (
                identify_tarball(layout, &path, SourceKind::Release, &url)?,
                Some(path),
            )
        }
        SourceSpec::Tree(path) => (identify_tree(path)?, None),
    };
    let slot = match identity.kind {
        SourceKind::Tree => {
            let path_hash = hex::encode(Sha256::digest(identity.location.as_bytes()));
            format!("tree-{}-{}", &path_hash[..16], &cfg[..8])
        }
        SourceKind::Tarball | SourceKind::Release => {
            format!("{}-{}", &identity.content_id[..16], &cfg[..8])
        }
    };
    Ok(Prepared {
        key: cache_key(&identity.version, &identity.content_id, &cfg),
        identity,
        fragments,
        config_hash: cfg,
        slot,
        tarball,
    })
}
