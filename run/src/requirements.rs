//! What a plan asks of its kernel (`kernel_min`, `kernel_config`), checked
//! against the kernel a job would boot: a kernel that does not meet them
//! makes the job a Skip with the reason, before any VM boots.

use ktstr_kernel::BootKernel;
use ktstr_plan::KernelReq;

/// Why `kernel` cannot run a plan that requires `req`, if it cannot.
pub fn unmet(req: &KernelReq, kernel: &BootKernel) -> Option<String> {
    if req.min_version.is_none() && req.config.is_empty() {
        return None;
    }
    let BootKernel::Entry(entry) = kernel else {
        return Some(
            "the scenario has kernel requirements, and a bare kernel image says neither its \
             version nor its config"
                .into(),
        );
    };
    if let Some(min) = &req.min_version {
        let have = &entry.manifest.version;
        if version(have) < version(min) {
            return Some(format!("kernel {have} is older than kernel_min(\"{min}\")"));
        }
    }
    let config = std::fs::read_to_string(entry.config()).unwrap_or_default();
    let missing: Vec<&str> = req
        .config
        .iter()
        .map(String::as_str)
        .filter(|o| !config.lines().any(|l| l == format!("{o}=y")))
        .collect();
    if !missing.is_empty() {
        return Some(format!(
            "kernel {} does not set {} (kernel_config)",
            entry.manifest.version,
            missing.join(", ")
        ));
    }
    None
}

/// A version's numeric components, missing ones as 0 (`6.12` < `6.12.1`).
fn version(v: &str) -> [u64; 4] {
    let mut out = [0u64; 4];
    let numbers = v
        .split(['.', '-', '+'])
        .map_while(|p| p.parse::<u64>().ok());
    for (slot, n) in out.iter_mut().zip(numbers) {
        *slot = n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ktstr_kernel::{CacheLayout, KernelCache};

    #[test]
    fn versions_and_config_options_are_checked() {
        assert!(version("6.12.117") > version("6.12"));
        assert!(version("6.9") < version("6.12"));
        assert_eq!(version("6.12-rc3"), [6, 12, 0, 0]);
        let tmp = tempfile::tempdir().unwrap();
        let cache = KernelCache::new(CacheLayout::at(tmp.path()));
        let entry = ktstr_kernel::cache::fake_entry(&cache, "k", 1);
        std::fs::write(
            entry.config(),
            "CONFIG_SCHED_CLASS_EXT=y\n# CONFIG_X is not set\n",
        )
        .unwrap();
        let kernel = BootKernel::Entry(entry);
        let req = |min: Option<&str>, config: &[&str]| KernelReq {
            min_version: min.map(str::to_string),
            config: config.iter().map(|c| c.to_string()).collect(),
        };
        assert_eq!(
            unmet(&req(Some("6.12"), &["CONFIG_SCHED_CLASS_EXT"]), &kernel),
            None
        );
        assert_eq!(
            unmet(&req(Some("6.13"), &[]), &kernel).as_deref(),
            Some("kernel 6.12.117 is older than kernel_min(\"6.13\")")
        );
        assert_eq!(
            unmet(&req(None, &["CONFIG_X"]), &kernel).as_deref(),
            Some("kernel 6.12.117 does not set CONFIG_X (kernel_config)")
        );
    }
}
