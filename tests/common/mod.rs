//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub mod browser;
pub mod worker;

/// The `ktstr` binary under test.
pub fn ktstr() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ktstr"));
    cmd.env_remove("KTSTR_KERNEL_MIRROR")
        .env_remove("KTSTR_KERNELS_TOML")
        .env_remove("KTSTR_SCHEDULERS_TOML")
        .env("KTSTR_GUEST_AGENT", env!("CARGO_BIN_EXE_ktstr-guest-agent"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"));
    cmd
}

/// Runs `cmd`, returning its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("ktstr runs")
}

/// stdout as a string.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as a string.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parses stdout as JSON, panicking with both streams on failure.
pub fn json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

/// True when running under CI, where a test that cannot find the built
/// kernel must fail instead of skipping.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The default kernel's cache entry in the user's real cache (what
/// `.ci/run` builds), as `kernel path --json` reports it. Outside CI a
/// missing kernel skips the test (returns None); in CI it fails it.
pub fn built_kernel() -> Option<Value> {
    let o = run(ktstr()
        .args(["kernel", "path", "--json"])
        .env_remove("KTSTR_CACHE_DIR"));
    if o.status.success() {
        return Some(json(&o)["entry"].clone());
    }
    let msg = format!(
        "the default kernel is not built (run `ktstr kernel build`): {}",
        stderr(&o)
    );
    assert!(!in_ci(), "CI=true and {msg}");
    eprintln!("SKIP: {msg}");
    None
}

/// The real cache root (`$XDG_CACHE_HOME/ktstr` or `~/.cache/ktstr`).
pub fn real_cache_root() -> PathBuf {
    match std::env::var_os("KTSTR_CACHE_DIR") {
        Some(d) => PathBuf::from(d),
        None => std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache")
            })
            .join("ktstr"),
    }
}

/// A private cache whose `kernels/` is empty but whose `work/` (extracted
/// sources, kbuild slots, locks) is the real one, so tests reuse the
/// expensive build state without touching the real entries.
pub fn private_cache_sharing_work() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let real_work = real_cache_root().join("work");
    std::fs::create_dir_all(&real_work).expect("real work dir");
    std::os::unix::fs::symlink(&real_work, tmp.path().join("work")).expect("symlink work");
    tmp
}

/// Copies a cache entry directory into `cache_root/kernels/`.
pub fn copy_entry(entry_dir: &Path, cache_root: &Path) -> PathBuf {
    let key = entry_dir.file_name().expect("entry name");
    let dest = cache_root.join("kernels").join(key);
    copy_dir(entry_dir, &dest);
    dest
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

/// Runs `cmd`, asserts it failed with exit code 1, and returns its trimmed
/// stderr.
pub fn failure(cmd: &mut Command) -> String {
    let o = run(cmd);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected exit 1; stdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    stderr(&o).trim().to_string()
}

/// Packs `parent/dir` into `parent/<out_name>` with `tar -c<compress>f`
/// (`J` xz, `z` gzip), returning the tarball's path.
pub fn pack(parent: &Path, dir: &str, out_name: &str, compress: char) -> PathBuf {
    let out = parent.join(out_name);
    let st = Command::new("tar")
        .arg(format!("-c{compress}f"))
        .arg(&out)
        .arg("-C")
        .arg(parent)
        .arg(dir)
        .status()
        .expect("tar runs");
    assert!(st.success(), "tar failed");
    out
}

/// One VM test at a time per test binary: TCG guests on a 2-core machine
/// slow each other down past their timeouts.
pub fn vm_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A VM test's surroundings: the built kernel's entry dir, a private
/// TMPDIR (to prove nothing is left in it) and a private cache (initramfs
/// bases, probe verdicts).
pub struct VmEnv {
    /// The kernel cache entry to boot.
    pub kernel: String,
    /// Private TMPDIR for the ktstr process.
    pub tmp: tempfile::TempDir,
    /// Private KTSTR_CACHE_DIR.
    pub cache: tempfile::TempDir,
    _lock: std::sync::MutexGuard<'static, ()>,
}

impl VmEnv {
    /// `ktstr run ARGS --backend qemu-tcg` with runs in a private dir: the
    /// exit code, the output and every sidecar (no leftovers checked).
    pub fn run_tcg(&self, args: &[&str]) -> (Option<i32>, String, Vec<ktstr_run::Sidecar>) {
        let runs = self.cache.path().join("runs");
        let mut full = vec!["run"];
        full.extend_from_slice(args);
        full.extend_from_slice(&["--backend", "qemu-tcg"]);
        let o = run(self.ktstr(&full).env("KTSTR_RUNS_DIR", &runs));
        self.assert_no_leftovers();
        (
            o.status.code(),
            format!("{}{}", stdout(&o), stderr(&o)),
            all_sidecars(&runs),
        )
    }

    /// None (skip) when the kernel is not built outside CI. The private
    /// cache shares the real cache's snapshots (keyed by everything that
    /// shapes a booted guest, so tests restore the guests earlier tests
    /// booted); [`VmEnv::isolate_snapshots`] gives it its own.
    pub fn new() -> Option<Self> {
        let entry = built_kernel()?;
        let cache = tempfile::tempdir().expect("tempdir");
        let shared = real_cache_root().join("snapshots");
        std::fs::create_dir_all(&shared).expect("snapshots dir");
        std::os::unix::fs::symlink(&shared, cache.path().join("snapshots")).expect("symlink");
        Some(VmEnv {
            kernel: entry["dir"].as_str().expect("entry dir").to_string(),
            tmp: tempfile::tempdir().expect("tempdir"),
            cache,
            _lock: vm_lock(),
        })
    }

    /// Gives the private cache snapshots of its own (empty).
    pub fn isolate_snapshots(&self) {
        let link = self.cache.path().join("snapshots");
        std::fs::remove_file(&link).expect("remove the snapshots link");
        std::fs::create_dir(&link).expect("snapshots dir");
    }

    /// `ktstr <args> --kernel <entry>` with the private TMPDIR and cache.
    pub fn ktstr(&self, args: &[&str]) -> Command {
        let mut cmd = ktstr();
        cmd.args(args)
            .args(["--kernel", &self.kernel])
            .env("TMPDIR", self.tmp.path())
            .env("KTSTR_CACHE_DIR", self.cache.path())
            .env("KTSTR_RUNS_DIR", self.cache.path().join("runs"))
            .env_remove("KTSTR_BACKEND");
        cmd
    }

    /// `ktstr sched install SPEC --json` into the private cache, reusing the
    /// real cache's cargo build directory (what a first install fills, and
    /// what the scx crates share) so only the install itself happens here;
    /// returns the install's JSON answer.
    pub fn install_scheduler(&self, spec: &str) -> Value {
        let target = real_cache_root().join("work/cargo-target");
        let o = run(ktstr()
            .args(["sched", "install", spec, "--json"])
            .env("KTSTR_CACHE_DIR", self.cache.path())
            .env("TMPDIR", self.tmp.path())
            .env("CARGO_TARGET_DIR", &target));
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str(&stdout(&o)).expect("install --json")
    }

    /// Asserts that no process mentions the private TMPDIR (no QEMU left)
    /// and that the TMPDIR is empty (no scratch files left).
    pub fn assert_no_leftovers(&self) {
        let tmp = self.tmp.path().to_string_lossy().into_owned();
        let procs = processes_mentioning(&tmp);
        assert!(procs.is_empty(), "processes left running: {procs:?}");
        let left: Vec<_> = std::fs::read_dir(self.tmp.path())
            .expect("read tmp")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(left.is_empty(), "files left in TMPDIR: {left:?}");
    }
}

/// `pid: cmdline` of every process whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) {
            out.push(format!("{}: {cmdline}", e.file_name().to_string_lossy()));
        }
    }
    out
}

/// Every sidecar under `dir`, each read back as a typed
/// [`ktstr_run::Sidecar`] (a sidecar a run writes that does not read back
/// fails the test); a run's dataset directory (`stats/`) and a gauntlet's
/// report (`gauntlet.json`) are not sidecars.
pub fn all_sidecars(dir: &Path) -> Vec<ktstr_run::Sidecar> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            if !p.join("dataset.json").exists() {
                out.extend(all_sidecars(&p));
            }
        } else if p.extension().is_some_and(|x| x == "json")
            && p.file_name().is_some_and(|n| n != "gauntlet.json")
        {
            out.push(ktstr_run::Sidecar::read(&p).unwrap_or_else(|e| panic!("{e}")));
        }
    }
    out
}
