//! `--shard K/N`: a deterministic partition of a sweep's jobs. A job's
//! shard depends only on its key (scenario, preset, scheduler, kernel,
//! repetition), never on its place in the list, so reordering the
//! manifest moves no job to another shard, and N machines each running
//! one shard together run every job exactly once.

use std::fmt;
use std::str::FromStr;

use super::expand::GauntletJob;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which, 1 to `count`.
    pub index: u32,
    /// How many.
    pub count: u32,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a shard K/N (1 <= K <= N)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64 bits: stable across versions and machines (unlike the
/// standard library's hasher).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Shard {
    /// Whether the job with `key` belongs to this shard.
    pub fn owns(&self, key: &str) -> bool {
        fnv1a(key) % u64::from(self.count) == u64::from(self.index - 1)
    }

    /// The jobs of this shard, in their order.
    pub fn select(&self, jobs: Vec<GauntletJob>) -> Vec<GauntletJob> {
        jobs.into_iter().filter(|j| self.owns(&j.key())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_partition_keys_whatever_their_order() {
        let keys: Vec<String> = (0..200)
            .map(|i| format!("s{i}::p::eevdf::default::run1"))
            .collect();
        let shards: Vec<Shard> = (1..=3).map(|k| format!("{k}/3").parse().unwrap()).collect();
        for key in &keys {
            let owners = shards.iter().filter(|s| s.owns(key)).count();
            assert_eq!(owners, 1, "{key}");
        }
        let sizes: Vec<usize> = shards
            .iter()
            .map(|s| keys.iter().filter(|k| s.owns(k)).count())
            .collect();
        assert!(sizes.iter().all(|&n| n > 40), "{sizes:?}");
        assert_eq!(fnv1a("abc"), 0xe71f_a219_0541_574b);
        for bad in ["0/2", "3/2", "x/2", "2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
