//! The kernel's CPU list format (`0-3,8,10-11`), parsed and printed.

use crate::TopologyError;

/// Parses a kernel CPU list into sorted, de-duplicated CPU ids. An empty
/// (or all-whitespace) string is the empty list.
pub fn parse(input: &str) -> Result<Vec<u32>, TopologyError> {
    let err = |reason: String| TopologyError::CpuList {
        input: input.to_string(),
        reason,
    };
    let mut cpus = Vec::new();
    for part in input.trim().split(',').filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (number(a).map_err(&err)?, number(b).map_err(&err)?),
            None => {
                let n = number(part).map_err(&err)?;
                (n, n)
            }
        };
        if hi < lo {
            return Err(err(format!("range `{part}` runs backwards")));
        }
        if hi - lo > 65_536 {
            return Err(err(format!("range `{part}` is implausibly large")));
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn number(s: &str) -> Result<u32, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a CPU number"))
}

/// Formats CPU ids as a compact kernel CPU list (`0-3,8`).
pub fn format(cpus: &[u32]) -> String {
    let mut sorted = cpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_singles() {
        assert_eq!(parse("0-3,8,10-11\n").unwrap(), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse("").unwrap(), Vec::<u32>::new());
        assert_eq!(parse("5").unwrap(), vec![5]);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["a", "3-1", "1-", "0-99999999"] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn formats_compactly_and_round_trips() {
        assert_eq!(format(&[3, 0, 1, 2, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(format(&[]), "");
        let s = "0,2-5,7";
        assert_eq!(format(&parse(s).unwrap()), s);
    }
}
