//! The kernel.org download path against a local mirror: checksum-verified
//! download, reuse of a verified download, and every failure named.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ktstr_kernel::download::fetch_release;
use ktstr_kernel::prepare::prepare;
use ktstr_kernel::source::{extract, SourceKind};
use ktstr_kernel::testing::{Body, MirrorServer};
use ktstr_kernel::{CacheLayout, KernelError, Silent, SourceSpec};
use sha2::{Digest, Sha256};

/// A small tree shaped like a kernel release, packed as linux-VERSION.tar.xz.
fn release_tarball(dir: &Path, version: &str) -> PathBuf {
    let (maj, rest) = version.split_once('.').unwrap();
    let (min, sub) = rest.split_once('.').unwrap();
    let tree = dir.join(format!("linux-{version}"));
    std::fs::create_dir_all(tree.join("kernel")).unwrap();
    std::fs::write(
        tree.join("Makefile"),
        format!("VERSION = {maj}\nPATCHLEVEL = {min}\nSUBLEVEL = {sub}\nEXTRAVERSION =\n"),
    )
    .unwrap();
    std::fs::write(tree.join("Kconfig"), "mainmenu \"test\"\n").unwrap();
    std::fs::write(tree.join("kernel/fork.c"), "int x;\n").unwrap();
    let tarball = dir.join(format!("linux-{version}.tar.xz"));
    let st = std::process::Command::new("tar")
        .arg("-cJf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir)
        .arg(format!("linux-{version}"))
        .status()
        .unwrap();
    assert!(st.success());
    tarball
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

fn sums(entries: &[(&str, &str)]) -> Body {
    let mut text = String::from("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n");
    for (digest, name) in entries {
        text.push_str(&format!("{digest}  {name}\n"));
    }
    text.push_str("-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n");
    Body::Bytes(text.into_bytes())
}

#[test]
fn release_is_downloaded_verified_identified_and_reused() {
    let src = tempfile::tempdir().unwrap();
    let tarball = release_tarball(src.path(), "6.99.1");
    let digest = sha256_hex(&tarball);
    let mirror = MirrorServer::start(BTreeMap::from([
        (
            "/v6.x/sha256sums.asc".to_string(),
            sums(&[
                ("00".repeat(32).as_str(), "linux-6.99.0.tar.xz"),
                (&digest, "linux-6.99.1.tar.xz"),
            ]),
        ),
        (
            "/v6.x/linux-6.99.1.tar.xz".to_string(),
            Body::File(tarball.clone()),
        ),
    ]));
    let cache = tempfile::tempdir().unwrap();
    let layout = CacheLayout::at(cache.path());
    let spec = SourceSpec::Release {
        version: "6.99.1".into(),
        mirror: format!("{}/", mirror.url),
    };
    let prepared = prepare(&layout, &spec, None, &Silent).unwrap();
    assert_eq!(prepared.identity.kind, SourceKind::Release);
    assert_eq!(prepared.identity.version, "6.99.1");
    assert_eq!(prepared.identity.content_id, digest);
    assert_eq!(
        prepared.identity.location,
        format!("{}/v6.x/linux-6.99.1.tar.xz", mirror.url)
    );
    assert!(
        prepared
            .key
            .starts_with(&format!("6.99.1-{}-", &digest[..8])),
        "{}",
        prepared.key
    );
    let downloaded = layout.downloads_dir().join("linux-6.99.1.tar.xz");
    assert_eq!(sha256_hex(&downloaded), digest);
    assert_eq!(mirror.hits("/v6.x/linux-6.99.1.tar.xz"), 1);

    // A verified download is reused, not fetched again.
    let again = prepare(&layout, &spec, None, &Silent).unwrap();
    assert_eq!(again.key, prepared.key);
    assert_eq!(mirror.hits("/v6.x/linux-6.99.1.tar.xz"), 1);

    // And it extracts to a tree.
    let tree = extract(&layout, &downloaded, &prepared.identity, &Silent).unwrap();
    assert_eq!(
        std::fs::read_to_string(tree.join("kernel/fork.c")).unwrap(),
        "int x;\n"
    );
}

#[test]
fn checksum_mismatch_is_named_and_leaves_nothing() {
    let src = tempfile::tempdir().unwrap();
    let tarball = release_tarball(src.path(), "6.99.2");
    let wrong = "ab".repeat(32);
    let mirror = MirrorServer::start(BTreeMap::from([
        (
            "/v6.x/sha256sums.asc".to_string(),
            sums(&[(&wrong, "linux-6.99.2.tar.xz")]),
        ),
        (
            "/v6.x/linux-6.99.2.tar.xz".to_string(),
            Body::File(tarball.clone()),
        ),
    ]));
    let cache = tempfile::tempdir().unwrap();
    let layout = CacheLayout::at(cache.path());
    let err = fetch_release(&layout, "6.99.2", &mirror.url, &Silent).unwrap_err();
    match &err {
        KernelError::Checksum {
            file,
            expected,
            actual,
            ..
        } => {
            assert_eq!(file, "linux-6.99.2.tar.xz");
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &sha256_hex(&tarball));
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(
        err.to_string()
            .starts_with("checksum mismatch for linux-6.99.2.tar.xz"),
        "{err}"
    );
    let left: Vec<_> = std::fs::read_dir(layout.downloads_dir()).unwrap().collect();
    assert!(
        left.is_empty(),
        "nothing may remain after a failed download: {left:?}"
    );
}

#[test]
fn missing_release_and_missing_sum_are_named() {
    let mirror = MirrorServer::start(BTreeMap::from([(
        "/v6.x/sha256sums.asc".to_string(),
        sums(&[(&"cd".repeat(32), "linux-6.99.3.tar.xz")]),
    )]));
    let cache = tempfile::tempdir().unwrap();
    let layout = CacheLayout::at(cache.path());
    let err = fetch_release(&layout, "6.99.3", &mirror.url, &Silent)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "download {}/v6.x/linux-6.99.3.tar.xz: HTTP 404 Not Found",
            mirror.url
        )
    );
    let err = fetch_release(&layout, "6.99.4", &mirror.url, &Silent)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "{}/v6.x/sha256sums.asc has no checksum for linux-6.99.4.tar.xz",
            mirror.url
        )
    );
    let err = fetch_release(&layout, "7.0.1", &mirror.url, &Silent)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "download {}/v7.x/sha256sums.asc: HTTP 404 Not Found",
            mirror.url
        )
    );
}
