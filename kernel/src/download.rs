//! Downloads a kernel release tarball from a kernel.org-style mirror and
//! verifies it against the mirror's `sha256sums.asc` before it is used.
//!
//! Only verified files are renamed to their final name, so a tarball in the
//! downloads directory has always passed its checksum. (The PGP signature on
//! `sha256sums.asc` is not checked: that needs the signers' keys, which this
//! offline tool cannot fetch.)

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{IoContext, KernelError, Result};
use crate::layout::CacheLayout;
use crate::observer::Observer;
use crate::source::one_line;

/// Most bytes accepted for `sha256sums.asc`.
const MAX_SUMS_BYTES: u64 = 4 << 20;

/// The tarball's file name for `version` (kernel.org drops a `.0` sublevel).
pub fn tarball_name(version: &str) -> String {
    let v = version.strip_suffix(".0").unwrap_or(version);
    format!("linux-{v}.tar.xz")
}

/// The mirror directory holding `version`, e.g. `<mirror>/v6.x`.
pub fn release_dir_url(mirror: &str, version: &str) -> String {
    let major = version.split('.').next().unwrap_or(version);
    format!("{}/v{major}.x", mirror.trim_end_matches('/'))
}

/// The URL the tarball of `version` is fetched from.
pub fn tarball_url(mirror: &str, version: &str) -> String {
    format!(
        "{}/{}",
        release_dir_url(mirror, version),
        tarball_name(version)
    )
}

/// Finds `file`'s digest in a `sha256sums.asc` text (clearsigned or plain).
pub fn find_checksum(sums: &str, file: &str) -> Option<String> {
    sums.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        let digest = parts.next()?;
        let name = parts.next()?;
        (name == file && digest.len() == 64 && digest.chars().all(|c| c.is_ascii_hexdigit()))
            .then(|| digest.to_ascii_lowercase())
    })
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(20))
        .timeout_read(Duration::from_secs(60))
        .build()
}

fn get(url: &str) -> Result<ureq::Response> {
    agent().get(url).call().map_err(|e| KernelError::Download {
        url: url.to_string(),
        reason: match e {
            ureq::Error::Status(code, resp) => format!("HTTP {code} {}", resp.status_text()),
            other => one_line(&other.to_string()),
        },
    })
}

/// Returns the verified tarball of `version`, downloading it from `mirror`
/// unless an earlier verified download is present.
pub fn fetch_release(
    layout: &CacheLayout,
    version: &str,
    mirror: &str,
    observer: &dyn Observer,
) -> Result<PathBuf> {
    let name = tarball_name(version);
    let dir = layout.downloads_dir();
    let dest = dir.join(&name);
    let _guard = layout.lock(&format!("download-{name}"))?;
    if dest.is_file() {
        return Ok(dest);
    }
    std::fs::create_dir_all(&dir).at(&dir)?;
    let sums_url = format!("{}/sha256sums.asc", release_dir_url(mirror, version));
    let mut sums = String::new();
    get(&sums_url)?
        .into_reader()
        .take(MAX_SUMS_BYTES)
        .read_to_string(&mut sums)
        .map_err(|e| KernelError::Download {
            url: sums_url.clone(),
            reason: one_line(&e.to_string()),
        })?;
    let expected = find_checksum(&sums, &name).ok_or_else(|| KernelError::ChecksumMissing {
        file: name.clone(),
        origin: sums_url.clone(),
    })?;
    let url = tarball_url(mirror, version);
    let partial = dir.join(format!("{name}.part-{}", std::process::id()));
    let result = download_to(&url, &partial, observer).and_then(|actual| {
        if actual == expected {
            std::fs::rename(&partial, &dest).at(&dest)
        } else {
            Err(KernelError::Checksum {
                file: name.clone(),
                origin: sums_url.clone(),
                expected: expected.clone(),
                actual,
            })
        }
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result.map(|()| dest)
}

/// Streams `url` into `path`, returning the SHA-256 of what was written.
fn download_to(url: &str, path: &Path, observer: &dyn Observer) -> Result<String> {
    let resp = get(url)?;
    let total = resp.header("Content-Length").and_then(|v| v.parse().ok());
    observer.phase(&format!("download {url}"), total);
    let mut reader = resp.into_reader();
    let mut out = std::fs::File::create(path).at(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut done = 0u64;
    loop {
        let n = reader.read(&mut buf).map_err(|e| KernelError::Download {
            url: url.to_string(),
            reason: one_line(&e.to_string()),
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).at(path)?;
        done += n as u64;
        observer.advance(done);
    }
    out.sync_all().at(path)?;
    if let Some(t) = total {
        if t != done {
            return Err(KernelError::Download {
                url: url.to_string(),
                reason: format!("connection closed after {done} of {t} bytes"),
            });
        }
    }
    observer.finish("downloaded");
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_kernel_org_layout() {
        let m = "https://cdn.kernel.org/pub/linux/kernel/";
        assert_eq!(
            tarball_url(m, "6.12.58"),
            "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.12.58.tar.xz"
        );
        assert_eq!(tarball_name("6.12.0"), "linux-6.12.tar.xz");
        assert_eq!(
            release_dir_url(m, "5.15.1"),
            "https://cdn.kernel.org/pub/linux/kernel/v5.x"
        );
    }

    #[test]
    fn checksum_lookup_in_clearsigned_list() {
        let d = "a".repeat(64);
        let sums = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{}  linux-6.12.57.tar.xz\n{d}  linux-6.12.58.tar.xz\n-----BEGIN PGP SIGNATURE-----\n",
            "b".repeat(64)
        );
        assert_eq!(find_checksum(&sums, "linux-6.12.58.tar.xz"), Some(d));
        assert_eq!(find_checksum(&sums, "linux-6.12.5.tar.xz"), None);
    }
}
