//! `ktstr` kernel commands on bad input: every error is clear, names its
//! file or field, and comes before any build starts.

mod common;

use std::process::Command;

use common::{failure, json, ktstr, pack, run, stderr, stdout};

/// `ktstr ARGS...` against a fresh private cache.
fn ktstr_in(cache: &tempfile::TempDir, args: &[&str]) -> Command {
    let mut cmd = ktstr();
    cmd.args(args).env("KTSTR_CACHE_DIR", cache.path());
    cmd
}

fn cache() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

#[test]
fn missing_tarball_is_one_line_naming_the_file() {
    let c = cache();
    let err = failure(&mut ktstr_in(
        &c,
        &["kernel", "build", "/nonexistent/linux.tar.xz"],
    ));
    assert_eq!(
        err,
        "error: kernel source tarball /nonexistent/linux.tar.xz: not found"
    );
}

#[test]
fn missing_tarball_in_kernels_toml_is_one_line_naming_the_file() {
    let c = cache();
    let toml = c.path().join("kernels.toml");
    std::fs::write(
        &toml,
        "[kernel.gone]\ntarball = \"/nonexistent/linux-6.12.tar.xz\"\n",
    )
    .unwrap();
    let err = failure(ktstr_in(&c, &["kernel", "build", "gone"]).env("KTSTR_KERNELS_TOML", &toml));
    assert_eq!(
        err,
        "error: kernel source tarball /nonexistent/linux-6.12.tar.xz: not found"
    );
}

#[test]
fn garbage_tarball_is_one_line_naming_the_file() {
    let c = cache();
    let bad = c.path().join("linux-bad.tar.xz");
    std::fs::write(&bad, b"this is not a tarball at all").unwrap();
    let err = failure(&mut ktstr_in(
        &c,
        &["kernel", "build", bad.to_str().unwrap()],
    ));
    assert_eq!(
        err,
        format!(
            "error: kernel source tarball {}: not an xz or gzip compressed tarball",
            bad.display()
        )
    );
}

/// A real xz stream cut short: caught while reading, named, one line.
#[test]
fn truncated_tarball_is_one_line_naming_the_file() {
    let c = cache();
    let tree = c.path().join("linux-9.9");
    std::fs::create_dir_all(&tree).unwrap();
    let filler: String = (0..20000)
        .map(|i| format!("line {i} of padding\n"))
        .collect();
    std::fs::write(tree.join("A-big-file"), &filler).unwrap();
    std::fs::write(
        tree.join("Makefile"),
        "VERSION = 9\nPATCHLEVEL = 9\nSUBLEVEL = 1\nEXTRAVERSION =\n",
    )
    .unwrap();
    let tarball = pack(c.path(), "linux-9.9", "linux-9.9.tar.xz", 'J');
    let bytes = std::fs::read(&tarball).unwrap();
    std::fs::write(&tarball, &bytes[..bytes.len() / 2]).unwrap();
    let err = failure(&mut ktstr_in(
        &c,
        &["kernel", "build", tarball.to_str().unwrap()],
    ));
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "error: kernel source tarball {}: ",
            tarball.display()
        )),
        "{err}"
    );
}

#[test]
fn tarball_without_kernel_makefile_is_rejected() {
    let c = cache();
    std::fs::create_dir_all(c.path().join("notkernel")).unwrap();
    std::fs::write(c.path().join("notkernel/README"), "hello").unwrap();
    let tarball = pack(c.path(), "notkernel", "notkernel.tar.gz", 'z');
    let err = failure(&mut ktstr_in(
        &c,
        &["kernel", "build", tarball.to_str().unwrap()],
    ));
    assert_eq!(
        err,
        format!(
            "error: kernel source tarball {}: no top-level kernel Makefile: not a kernel source tarball",
            tarball.display()
        )
    );
}

#[test]
fn bad_kernels_toml_names_the_field() {
    let c = cache();
    let toml = c.path().join("kernels.toml");
    std::fs::write(
        &toml,
        "[kernel.x]\ntarball = \"a.tar.xz\"\nversion = \"6.12.1\"\n",
    )
    .unwrap();
    let err = failure(ktstr_in(&c, &["kernel", "list"]).env("KTSTR_KERNELS_TOML", &toml));
    assert_eq!(
        err,
        format!(
            "error: {}: kernel.x: set exactly one of `tarball`, `tree`, `version` (found tarball, version)",
            toml.display()
        )
    );
}

#[test]
fn extra_kconfig_that_is_not_kconfig_fails_before_building() {
    let c = cache();
    let frag = c.path().join("extra.kconfig");
    std::fs::write(&frag, "CONFIG_OK=y\nthis is wrong\n").unwrap();
    let args = [
        "kernel",
        "build",
        "--extra-kconfig",
        frag.to_str().unwrap(),
        "6.12.58",
    ];
    // The mirror is unreachable: the fragment must be rejected before any download.
    let err = failure(ktstr_in(&c, &args).env("KTSTR_KERNEL_MIRROR", "http://127.0.0.1:9"));
    assert_eq!(
        err,
        format!(
            "error: {}:2: not a kconfig line: this is wrong",
            frag.display()
        )
    );
}

#[test]
fn unknown_identifier_lists_what_was_tried() {
    let c = cache();
    let err = failure(&mut ktstr_in(&c, &["kernel", "path", "nope"]));
    assert!(err.contains("no kernel matches `nope`"), "{err}");
}

#[test]
fn empty_cache_lists_no_entries_as_json() {
    let c = cache();
    let o = run(&mut ktstr_in(&c, &["kernel", "list", "--json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["entries"].as_array().map(Vec::len), Some(0));
    assert_eq!(v["cache_dir"], c.path().join("kernels").to_str().unwrap());
}

#[test]
fn path_accepts_a_bare_image() {
    let c = cache();
    let mut bz = vec![0u8; 0x400];
    bz[0x202..0x206].copy_from_slice(b"HdrS");
    let img = c.path().join("bzImage");
    std::fs::write(&img, &bz).unwrap();
    let o = run(&mut ktstr_in(
        &c,
        &["kernel", "path", img.to_str().unwrap(), "--json"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json(&o);
    assert_eq!(v["image"], img.to_str().unwrap());
    assert_eq!(v["format"], "bzimage");
}

#[test]
fn completions_cover_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let o = run(ktstr().args(["completions", shell]));
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains("kernel") && out.contains("extra-kconfig"),
            "{shell} completions lack subcommands"
        );
    }
}
