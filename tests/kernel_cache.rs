//! The kernel pipeline against the real kernel built by `ktstr kernel
//! build` (what `.ci/run` does first): outputs, cache hits, a truncated
//! entry rebuilt, a dropped kconfig option named, and the download path
//! served from a loopback mirror. Each test fails under CI=true when the
//! kernel is missing, and skips (saying so) elsewhere.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{
    built_kernel, copy_entry, failure, json, ktstr, private_cache_sharing_work, run, stderr,
};
use goblin::elf::Elf;
use ktstr_kernel::testing::{Body, MirrorServer};
use serde_json::Value;

fn path_of(v: &Value) -> PathBuf {
    PathBuf::from(v.as_str().expect("path string"))
}

fn elf_sections(bytes: &[u8]) -> Vec<String> {
    let elf = Elf::parse(bytes).expect("valid ELF");
    elf.section_headers
        .iter()
        .filter_map(|s| elf.shdr_strtab.get_at(s.sh_name).map(str::to_string))
        .collect()
}

#[test]
fn built_entry_has_images_config_symbols_and_four_schedulers() {
    let Some(entry) = built_kernel() else { return };
    assert_eq!(entry["valid"], true);
    let bz = std::fs::read(path_of(&entry["bzimage"])).unwrap();
    assert_eq!(
        &bz[0x202..0x206],
        b"HdrS",
        "bzImage lacks the boot-protocol header"
    );
    let vmlinux = std::fs::read(path_of(&entry["vmlinux"])).unwrap();
    let sections = elf_sections(&vmlinux);
    for s in [".BTF", ".text", ".notes"] {
        assert!(sections.iter().any(|x| x == s), "vmlinux lacks {s}");
    }
    let config = std::fs::read_to_string(path_of(&entry["config"])).unwrap();
    for opt in [
        "CONFIG_SCHED_CLASS_EXT=y",
        "CONFIG_DEBUG_INFO_BTF=y",
        "CONFIG_PVH=y",
        "CONFIG_NUMA=y",
        "CONFIG_VIRTIO_CONSOLE=y",
    ] {
        assert!(config.lines().any(|l| l == opt), "config lacks {opt}");
    }
    let map = std::fs::read_to_string(path_of(&entry["system_map"])).unwrap();
    assert!(
        map.contains(" ext_sched_class\n"),
        "System.map lacks ext_sched_class"
    );
    let names: Vec<_> = entry["schedulers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["scx_simple", "scx_qmap", "scx_central", "scx_flatcg"]
    );
    for s in entry["schedulers"].as_array().unwrap() {
        let bytes = std::fs::read(path_of(&s["path"])).unwrap();
        let elf = Elf::parse(&bytes).expect("scheduler is ELF");
        let t = elf.header.e_type;
        assert!(
            t == goblin::elf::header::ET_EXEC || t == goblin::elf::header::ET_DYN,
            "{}: not executable",
            s["name"]
        );
        assert!(
            elf.libraries.contains(&"libelf.so.1"),
            "{}: {:?}",
            s["name"],
            elf.libraries
        );
    }
    // `kernel list --json` agrees.
    let o = run(ktstr()
        .args(["kernel", "list", "--json"])
        .env_remove("KTSTR_CACHE_DIR"));
    let listed = json(&o);
    let found = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["key"] == entry["key"])
        .cloned();
    assert_eq!(found.map(|e| e["valid"].clone()), Some(Value::Bool(true)));
}

#[test]
fn second_build_is_a_cache_hit() {
    let Some(entry) = built_kernel() else { return };
    let o = run(ktstr()
        .args(["kernel", "build", "--json"])
        .env_remove("KTSTR_CACHE_DIR"));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["cached"], true);
    assert_eq!(v["entry"]["key"], entry["key"]);
}

#[test]
fn truncated_entry_is_rebuilt_not_used() {
    let Some(entry) = built_kernel() else { return };
    let cache = private_cache_sharing_work();
    let copy = copy_entry(&path_of(&entry["dir"]), cache.path());
    let full = std::fs::metadata(copy.join("vmlinux")).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(copy.join("vmlinux"))
        .unwrap()
        .set_len(full / 3)
        .unwrap();

    // Not used: locating it says why.
    let err = failure(
        ktstr()
            .args(["kernel", "path"])
            .env("KTSTR_CACHE_DIR", cache.path()),
    );
    assert!(
        err.contains(&format!(
            "is not usable: vmlinux is {} bytes, manifest says {full}",
            full / 3
        )),
        "{err}"
    );
    assert!(err.contains("(`ktstr kernel build` rebuilds it"), "{err}");

    // Rebuilt: the build notices, says why, and installs a valid entry.
    let o = run(ktstr()
        .args(["kernel", "build", "--json"])
        .env("KTSTR_CACHE_DIR", cache.path()));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["cached"], false);
    let reason = v["rejected"].as_str().expect("rejection reason");
    assert!(
        reason.contains(&format!("vmlinux is {} bytes", full / 3)),
        "{reason}"
    );
    assert_eq!(v["entry"]["key"], entry["key"]);
    assert_eq!(std::fs::metadata(copy.join("vmlinux")).unwrap().len(), full);

    let o = run(ktstr()
        .args(["kernel", "build", "--json"])
        .env("KTSTR_CACHE_DIR", cache.path()));
    assert_eq!(json(&o)["cached"], true);
}

#[test]
fn concurrent_builds_of_one_key_build_once_and_both_succeed() {
    let Some(entry) = built_kernel() else { return };
    let cache = private_cache_sharing_work();
    let copy = copy_entry(&path_of(&entry["dir"]), cache.path());
    std::fs::write(copy.join("bzImage"), b"corrupt").unwrap();
    // What a build killed mid-staging leaves behind.
    let stale = cache.path().join(format!(
        "kernels/.staging-{}-999999",
        entry["key"].as_str().unwrap()
    ));
    std::fs::create_dir_all(&stale).unwrap();
    let spawn = || {
        ktstr()
            .args(["kernel", "build", "--json"])
            .env("KTSTR_CACHE_DIR", cache.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let mut built = 0;
    for o in &outs {
        assert!(o.status.success(), "{}", stderr(o));
        let v = json(o);
        assert_eq!(v["entry"]["key"], entry["key"]);
        if v["cached"] == false {
            built += 1;
        }
    }
    assert_eq!(built, 1, "the lock must let exactly one process build");
    let o = run(ktstr()
        .args(["kernel", "list", "--json"])
        .env("KTSTR_CACHE_DIR", cache.path()));
    let entries = json(&o)["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["valid"], true);
    let leftovers: Vec<_> = std::fs::read_dir(cache.path().join("kernels"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "staging or trash left behind: {leftovers:?}"
    );
}

#[test]
fn extra_kconfig_with_dependencies_off_names_each_dropped_option() {
    if built_kernel().is_none() {
        return;
    }
    let cache = private_cache_sharing_work();
    let frag = cache.path().join("needs-drm.kconfig");
    // Both depend on subsystems tinyconfig leaves off (DRM, ethernet).
    std::fs::write(
        &frag,
        "CONFIG_DRM_I915=y\nCONFIG_E1000=y\n# CONFIG_PRINTK is not set\nCONFIG_PRINTK=y\n",
    )
    .unwrap();
    let err = failure(
        ktstr()
            .args(["kernel", "build", "--extra-kconfig", frag.to_str().unwrap()])
            .env("KTSTR_CACHE_DIR", cache.path()),
    );
    assert!(err.contains("kernel config dropped 2 option(s)"), "{err}");
    for opt in ["CONFIG_DRM_I915", "CONFIG_E1000"] {
        let line = format!(
            "{opt}=y (asked by {}): the final .config has {opt} is not set",
            frag.display()
        );
        assert!(err.contains(&line), "missing `{line}` in:\n{err}");
    }
    assert!(
        !err.contains("CONFIG_PRINTK="),
        "a surviving option was reported:\n{err}"
    );
    let listed = std::fs::read_dir(cache.path().join("kernels"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(
        listed, 0,
        "a failed configuration must not create a cache entry"
    );
}

#[test]
fn release_download_from_local_mirror_is_verified_and_keyed_by_content() {
    let Some(entry) = built_kernel() else { return };
    if entry["source"]["kind"] != "tarball" {
        eprintln!("SKIP: default kernel is not built from a tarball");
        return;
    }
    let version = entry["version"].as_str().unwrap();
    let tarball = path_of(&entry["source"]["location"]);
    let digest = entry["source"]["content_id"].as_str().unwrap();
    let major = version.split('.').next().unwrap();
    let name = format!("linux-{version}.tar.xz");
    let sums = format!("{}  linux-0.0.tar.xz\n{digest}  {name}\n", "0".repeat(64));
    let mirror = MirrorServer::start(BTreeMap::from([
        (
            format!("/v{major}.x/sha256sums.asc"),
            Body::Bytes(sums.into_bytes()),
        ),
        (format!("/v{major}.x/{name}"), Body::File(tarball.clone())),
    ]));
    // Private cache with its own work dir (so the download is visible),
    // holding a copy of the built entry: same content, same key.
    let cache = tempfile::tempdir().unwrap();
    copy_entry(&path_of(&entry["dir"]), cache.path());
    let o = run(ktstr()
        .args(["kernel", "build", version, "--json"])
        .env("KTSTR_CACHE_DIR", cache.path())
        .env("KTSTR_KERNEL_MIRROR", &mirror.url));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["cached"], true, "same content must give the same key");
    assert_eq!(v["entry"]["key"], entry["key"]);
    assert_eq!(mirror.hits(&format!("/v{major}.x/{name}")), 1);
    let downloaded = cache.path().join("work/downloads").join(&name);
    assert_eq!(
        std::fs::metadata(&downloaded).unwrap().len(),
        std::fs::metadata(&tarball).unwrap().len()
    );
    assert!(Path::new(&downloaded).is_file());
}

#[test]
fn clean_keeps_the_newest_valid_entries_and_drops_broken_ones() {
    let Some(entry) = built_kernel() else { return };
    let cache = tempfile::tempdir().unwrap();
    copy_entry(&path_of(&entry["dir"]), cache.path());
    let broken = cache.path().join("kernels/6.0-deadbeef-deadbeef");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(broken.join("bzImage"), b"half").unwrap();
    let clean = |keep: &str| {
        let o = run(ktstr()
            .args(["kernel", "clean", "--keep", keep, "--json"])
            .env("KTSTR_CACHE_DIR", cache.path()));
        assert!(o.status.success(), "{}", stderr(&o));
        json(&o)["removed"].clone()
    };
    assert_eq!(clean("1"), serde_json::json!(["6.0-deadbeef-deadbeef"]));
    assert!(
        path_of(&entry["dir"]).is_dir(),
        "the real cache must be untouched"
    );
    assert!(cache
        .path()
        .join("kernels")
        .join(entry["key"].as_str().unwrap())
        .is_dir());
    assert_eq!(clean("0"), serde_json::json!([entry["key"]]));
    assert_eq!(
        std::fs::read_dir(cache.path().join("kernels"))
            .unwrap()
            .count(),
        0
    );
}
