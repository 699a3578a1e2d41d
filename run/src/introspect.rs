//! The kernel layout the host-side monitor reads a guest with, computed
//! once per kernel cache entry from its vmlinux (symbols and BTF) and kept
//! in the entry beside the files it describes.

use std::path::Path;

use ktstr_kernel::{BootKernel, ImageFormat};
use ktstr_vmm::introspect::{KernelLayout, LAYOUT_FORMAT};
use serde::{Deserialize, Serialize};

/// The cached layout and the vmlinux it was read from.
#[derive(Debug, Serialize, Deserialize)]
struct CachedLayout {
    /// The vmlinux's BLAKE3 hash as the entry's manifest records it.
    vmlinux_blake3: String,
    layout: KernelLayout,
}

/// The cache file's name in an entry (versioned by the layout format).
fn cache_name() -> String {
    format!("introspect-v{LAYOUT_FORMAT}.json")
}

/// The layout of `kernel`, or why there is none ("monitor unavailable"
/// then says so in the verdict's notes). A cache entry's layout is read
/// from its cache file when that matches the entry's vmlinux, else
/// computed and stored.
pub fn layout_for(kernel: &BootKernel) -> Result<KernelLayout, String> {
    match kernel {
        BootKernel::Image {
            format: ImageFormat::BzImage,
            path,
        } => Err(format!(
            "{} is a bzImage: without its vmlinux there are no symbols or BTF",
            path.display()
        )),
        BootKernel::Image { path, .. } => {
            KernelLayout::from_vmlinux(path).map_err(|e| e.to_string())
        }
        BootKernel::Entry(e) => {
            let hash = e
                .manifest
                .files
                .iter()
                .find(|f| f.path == "vmlinux")
                .map(|f| f.blake3.clone())
                .ok_or_else(|| format!("{}: the entry records no vmlinux", e.dir.display()))?;
            let cache = e.dir.join(cache_name());
            if let Some(layout) = read_cached(&cache, &hash) {
                return Ok(layout);
            }
            let layout = KernelLayout::from_vmlinux(&e.vmlinux()).map_err(|e| e.to_string())?;
            // A cache that cannot be written only costs the next run the
            // same computation.
            let _ = write_cached(&cache, &hash, &layout);
            Ok(layout)
        }
    }
}

fn read_cached(path: &Path, hash: &str) -> Option<KernelLayout> {
    let text = std::fs::read_to_string(path).ok()?;
    let cached: CachedLayout = serde_json::from_str(&text).ok()?;
    (cached.vmlinux_blake3 == hash && cached.layout.format == LAYOUT_FORMAT)
        .then_some(cached.layout)
}

fn write_cached(path: &Path, hash: &str, layout: &KernelLayout) -> std::io::Result<()> {
    let cached = CachedLayout {
        vmlinux_blake3: hash.to_string(),
        layout: layout.clone(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    serde_json::to_writer_pretty(&mut tmp, &cached)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
