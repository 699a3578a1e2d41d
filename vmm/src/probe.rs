//! Backend choice: `auto` uses KVM only where a probe has shown that KVM
//! really boots a guest to its agent on this host: ktstr's own VMM first
//! (the fast path), then QEMU with KVM, else QEMU TCG. The answer is
//! cached per host.

use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::backend::{BackendKind, VmBackend};
use crate::qemu::QemuBackend;
use crate::{VmError, VmOutcome};

/// How long the QEMU/KVM probe VM may take to boot to its agent and power
/// off.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(30);
/// The same bound for the own VMM, which boots to its agent in well under
/// a second where KVM is hardware-backed.
pub const OWN_KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a probe VM on `kind` may live.
pub fn probe_timeout(kind: BackendKind) -> Duration {
    match kind {
        BackendKind::Kvm => OWN_KVM_PROBE_TIMEOUT,
        _ => PROBE_TIMEOUT,
    }
}

/// `--backend`: a backend, or `auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// Probe (once per host) and pick the fastest that works.
    Auto,
    /// This backend, no probe.
    Kind(BackendKind),
}

impl FromStr for BackendChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            Ok(BackendChoice::Auto)
        } else {
            s.parse().map(BackendChoice::Kind)
        }
    }
}

/// The probe's answer for one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeVerdict {
    /// Which host it is for (see [`host_key`]).
    pub host_key: String,
    /// Whether ktstr's own KVM VMM booted a guest to its agent.
    pub own_kvm: bool,
    /// Why, in a sentence.
    pub own_kvm_reason: String,
    /// Whether QEMU with KVM booted a guest to its agent.
    pub qemu_kvm: bool,
    /// Why, in a sentence.
    pub reason: String,
    /// Seconds the probe took.
    pub seconds: f64,
    /// When it ran (Unix seconds).
    pub checked_at: u64,
}

impl ProbeVerdict {
    /// The backend `auto` picks on this verdict: the own KVM VMM when it
    /// works, else qemu-kvm when that works, else qemu-tcg.
    pub fn backend(&self) -> BackendKind {
        if self.own_kvm {
            BackendKind::Kvm
        } else if self.qemu_kvm {
            BackendKind::QemuKvm
        } else {
            BackendKind::QemuTcg
        }
    }
}

/// This host's identity for the probe cache: machine id and kernel release
/// (a new kernel or a different machine probes again).
pub fn host_key() -> String {
    let machine = fs::read_to_string("/etc/machine-id").unwrap_or_default();
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{}-{}", machine.trim(), release.trim())
}

/// Whether `/dev/kvm` can be opened for reading and writing.
pub fn kvm_device_usable() -> Result<(), String> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| ())
        .map_err(|e| format!("/dev/kvm: {e}"))
}

/// The probe, with its answer cached in one JSON file.
#[derive(Debug, Clone)]
pub struct KvmProbe {
    cache_file: PathBuf,
}

impl KvmProbe {
    /// A probe caching its verdict in `cache_file`.
    pub fn new(cache_file: impl Into<PathBuf>) -> Self {
        KvmProbe {
            cache_file: cache_file.into(),
        }
    }

    /// The cached verdict for this host, if any.
    pub fn cached(&self) -> Option<ProbeVerdict> {
        let text = fs::read_to_string(&self.cache_file).ok()?;
        let v: ProbeVerdict = serde_json::from_str(&text).ok()?;
        (v.host_key == host_key()).then_some(v)
    }

    /// The cached verdict, or a fresh one: `/dev/kvm` must open and
    /// `boot` (a probe job on the given backend, bounded by
    /// [`PROBE_TIMEOUT`]) must end clean.
    pub fn verdict(
        &self,
        boot: &mut dyn FnMut(&dyn VmBackend) -> Result<VmOutcome, VmError>,
    ) -> ProbeVerdict {
        if let Some(v) = self.cached() {
            return v;
        }
        let start = std::time::Instant::now();
        let (own_kvm, own_kvm_reason) = match run_probe(BackendKind::Kvm, boot) {
            Ok(()) => (
                true,
                "ktstr's own KVM VMM booted a guest to its agent".to_string(),
            ),
            Err(why) => (false, why),
        };
        let (qemu_kvm, reason) = match run_probe(BackendKind::QemuKvm, boot) {
            Ok(()) => (
                true,
                "QEMU with KVM booted a guest to its agent".to_string(),
            ),
            Err(why) => (false, why),
        };
        let v = ProbeVerdict {
            host_key: host_key(),
            own_kvm,
            own_kvm_reason,
            qemu_kvm,
            reason,
            seconds: start.elapsed().as_secs_f64(),
            checked_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        };
        self.store(&v);
        v
    }

    /// Writes the verdict through a temporary file of this writer's own,
    /// renamed into place: several processes (or jobs of one) may probe at
    /// once, and each reader sees one whole verdict.
    fn store(&self, v: &ProbeVerdict) {
        let Some(dir) = self.cache_file.parent() else {
            return;
        };
        let _ = fs::create_dir_all(dir);
        let text = serde_json::to_string_pretty(v).expect("verdicts serialize");
        let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
            return;
        };
        if std::io::Write::write_all(&mut tmp, text.as_bytes()).is_ok() {
            let _ = tmp.persist(&self.cache_file);
        }
    }

    /// Where the verdict is cached.
    pub fn cache_file(&self) -> &Path {
        &self.cache_file
    }
}

fn run_probe(
    kind: BackendKind,
    boot: &mut dyn FnMut(&dyn VmBackend) -> Result<VmOutcome, VmError>,
) -> Result<(), String> {
    kvm_device_usable()?;
    let backend = backend_for(kind).map_err(|e| e.to_string())?;
    let outcome = boot(&*backend).map_err(|e| e.to_string())?;
    if outcome.is_clean() {
        Ok(())
    } else {
        let detail = outcome
            .backend_diagnostics
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let headline = outcome.headline();
        // The own VMM's diagnostics repeat what its headline already says.
        let said = detail
            .split_once(": ")
            .map_or(detail.as_str(), |(_, why)| why);
        Err(if detail.is_empty() || headline.contains(said) {
            format!("a KVM guest did not reach its agent: {headline}")
        } else {
            format!("a KVM guest did not reach its agent: {headline} ({detail})")
        })
    }
}

/// The backend for `kind`.
pub fn backend_for(kind: BackendKind) -> Result<Box<dyn VmBackend>, VmError> {
    match kind {
        #[cfg(target_arch = "x86_64")]
        BackendKind::Kvm => Ok(Box::new(crate::kvm::KvmBackend::new()?)),
        #[cfg(not(target_arch = "x86_64"))]
        BackendKind::Kvm => Err(VmError::Unsupported {
            backend: kind.to_string(),
            reason: "ktstr's own KVM VMM runs x86_64 guests only so far".into(),
        }),
        _ => Ok(Box::new(QemuBackend::new(kind)?)),
    }
}

/// Resolves `choice`: a named backend as is; `auto` to the own KVM VMM
/// when the probe says it works here, else qemu-kvm when that works, else
/// qemu-tcg.
pub fn select(
    choice: BackendChoice,
    probe: &KvmProbe,
    boot: &mut dyn FnMut(&dyn VmBackend) -> Result<VmOutcome, VmError>,
) -> (BackendKind, Option<ProbeVerdict>) {
    match choice {
        BackendChoice::Kind(k) => (k, None),
        BackendChoice::Auto => {
            let v = probe.verdict(boot);
            (v.backend(), Some(v))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choice_parses() {
        assert_eq!("auto".parse::<BackendChoice>(), Ok(BackendChoice::Auto));
        assert_eq!(
            "qemu-tcg".parse::<BackendChoice>(),
            Ok(BackendChoice::Kind(BackendKind::QemuTcg))
        );
        assert!("tcg".parse::<BackendChoice>().is_err());
    }

    #[test]
    fn cached_verdict_is_used_only_for_this_host() {
        let dir = tempfile::tempdir().unwrap();
        let probe = KvmProbe::new(dir.path().join("kvm.json"));
        let mut boots = 0;
        let mut boot = |_: &dyn VmBackend| -> Result<VmOutcome, VmError> {
            boots += 1;
            Err(VmError::Launch("no".into()))
        };
        let first = probe.verdict(&mut boot);
        assert!(!first.qemu_kvm && !first.own_kvm);
        let again = probe.verdict(&mut boot);
        assert_eq!(again, first);
        let mut other = first.clone();
        other.host_key = "another-host".into();
        fs::write(probe.cache_file(), serde_json::to_string(&other).unwrap()).unwrap();
        assert!(probe.cached().is_none());
        assert!(boots <= 2, "the cached verdict must not boot again");
    }
}
