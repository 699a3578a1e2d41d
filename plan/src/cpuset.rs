//! Cpuset specifications, resolved against a topology.

use ktstr_topology::Topology;
use serde::{Deserialize, Serialize};

/// Which CPUs a cgroup may use, in terms of the topology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CpusetSpec {
    /// The CPUs of LLC `index`.
    Llc {
        /// LLC index.
        index: u32,
    },
    /// The CPUs of NUMA node `index`.
    Numa {
        /// Node index.
        index: u32,
    },
    /// CPUs `from..=to`.
    Range {
        /// First CPU.
        from: u32,
        /// Last CPU.
        to: u32,
    },
    /// Part `index` of `of` equal, disjoint slices of all CPUs.
    Disjoint {
        /// Which slice.
        index: u32,
        /// How many slices.
        of: u32,
    },
    /// Slice `index` of `of`, widened so neighbours share `frac` of it.
    Overlap {
        /// Which slice.
        index: u32,
        /// How many slices.
        of: u32,
        /// Shared fraction, 0 to 1.
        frac: f64,
    },
    /// Exactly these CPUs.
    Exact {
        /// CPU ids.
        cpus: Vec<u32>,
    },
}

impl CpusetSpec {
    /// The CPUs this spec names on `t`, or why it names none there.
    pub fn resolve(&self, t: &Topology) -> Result<Vec<u32>, String> {
        let n = t.cpus();
        let cpus = match self {
            CpusetSpec::Llc { index } => {
                check_index("llc", *index, t.llcs(), t)?;
                t.llc_cpus(*index)
            }
            CpusetSpec::Numa { index } => {
                check_index("numa", *index, t.numa_nodes(), t)?;
                t.node_cpus(*index)
            }
            CpusetSpec::Range { from, to } => {
                if from > to {
                    return Err(format!("range({from}, {to}) runs backwards"));
                }
                if *to >= n {
                    return Err(format!(
                        "range({from}, {to}) reaches CPU {to}, but topology {t} has CPUs 0-{}",
                        n - 1
                    ));
                }
                (*from..=*to).collect()
            }
            CpusetSpec::Disjoint { index, of } => slice(*index, *of, 0.0, t)?,
            CpusetSpec::Overlap { index, of, frac } => {
                if !(0.0..=1.0).contains(frac) {
                    return Err(format!("overlap fraction {frac} is not between 0 and 1"));
                }
                slice(*index, *of, *frac, t)?
            }
            CpusetSpec::Exact { cpus } => {
                if cpus.is_empty() {
                    return Err("exact([]) names no CPU".into());
                }
                if let Some(bad) = cpus.iter().find(|&&c| c >= n) {
                    return Err(format!(
                        "exact(...) names CPU {bad}, but topology {t} has CPUs 0-{}",
                        n - 1
                    ));
                }
                let mut v = cpus.clone();
                v.sort_unstable();
                v.dedup();
                v
            }
        };
        Ok(cpus)
    }
}

fn check_index(what: &str, index: u32, count: u32, t: &Topology) -> Result<(), String> {
    if index >= count {
        return Err(format!(
            "{what}({index}) is out of range: topology {t} has {count} {}",
            if what == "llc" { "LLCs" } else { "NUMA nodes" }
        ));
    }
    Ok(())
}

fn slice(index: u32, of: u32, frac: f64, t: &Topology) -> Result<Vec<u32>, String> {
    let n = t.cpus();
    if of == 0 || index >= of {
        return Err(format!("slice {index} of {of} does not exist"));
    }
    if of > n {
        return Err(format!(
            "{of} slices of topology {t} would leave some empty ({n} CPUs)"
        ));
    }
    let size = f64::from(n) / f64::from(of);
    let widen = size * frac / 2.0;
    let lo = (f64::from(index) * size - widen).max(0.0).floor() as u32;
    let hi = ((f64::from(index + 1) * size + widen).min(f64::from(n))).ceil() as u32;
    Ok((lo..hi.max(lo + 1)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_against_the_topology() {
        let t: Topology = "2n4l2c1t".parse().unwrap();
        assert_eq!(
            CpusetSpec::Llc { index: 1 }.resolve(&t).unwrap(),
            vec![2, 3]
        );
        assert_eq!(
            CpusetSpec::Numa { index: 1 }.resolve(&t).unwrap(),
            vec![4, 5, 6, 7]
        );
        let d = CpusetSpec::Disjoint { index: 1, of: 2 };
        assert_eq!(d.resolve(&t).unwrap(), vec![4, 5, 6, 7]);
        let o = CpusetSpec::Overlap {
            index: 0,
            of: 2,
            frac: 0.5,
        };
        assert_eq!(o.resolve(&t).unwrap(), vec![0, 1, 2, 3, 4]);
        let e = CpusetSpec::Llc { index: 4 }.resolve(&t).unwrap_err();
        assert!(e.contains("topology 2n4l2c1t has 4 LLCs"), "{e}");
    }
}
