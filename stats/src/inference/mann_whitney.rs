//! The Mann-Whitney U test (two-sided): exact for small samples without
//! ties, else the normal approximation with the tie correction and a
//! continuity correction.

use statrs::distribution::{ContinuousCDF, Normal};

/// Samples of up to this many values each get the exact distribution.
pub const EXACT_MAX: usize = 25;

/// The outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UTest {
    /// U of the first sample.
    pub u: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// Whether the exact distribution gave `p`.
    pub exact: bool,
}

/// Ranks of `all` (1-based, ties share their average rank) and the tie
/// term sum(t^3 - t) over groups of ties.
fn ranks(all: &[f64]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| all[a].total_cmp(&all[b]));
    let mut r = vec![0.0; all.len()];
    let mut ties = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && all[order[j + 1]] == all[order[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = avg;
        }
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    (r, ties)
}

/// How many arrangements of `m` and `n` values give each U (0..=m*n).
fn u_counts(m: usize, n: usize) -> Vec<f64> {
    // f[j][u] for the current i: arrangements of i values of the first
    // sample and j of the second with U = u.
    let max = m * n;
    let mut f = vec![vec![0.0; max + 1]; n + 1];
    for row in f.iter_mut() {
        row[0] = 1.0;
    }
    for i in 1..=m {
        let mut g = vec![vec![0.0; max + 1]; n + 1];
        g[0][0] = 1.0;
        for j in 1..=n {
            for u in 0..=i * j {
                // The largest value is from the first sample (it beats
                // all j of the second) or from the second.
                let a = if u >= j { f[j][u - j] } else { 0.0 };
                g[j][u] = a + g[j - 1][u];
            }
        }
        f = g;
    }
    f.swap_remove(n)
}

/// Tests whether `a` and `b` come from the same distribution. `None` when
/// either has no values.
pub fn test(a: &[f64], b: &[f64]) -> Option<UTest> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let (r, ties) = ranks(&all);
    let r1: f64 = r[..n1].iter().sum();
    let u = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let (fn1, fn2) = (n1 as f64, n2 as f64);
    let mean = fn1 * fn2 / 2.0;
    if ties == 0.0 && n1 <= EXACT_MAX && n2 <= EXACT_MAX {
        let counts = u_counts(n1, n2);
        let total: f64 = counts.iter().sum();
        let k = u.round() as usize;
        let lower: f64 = counts[..=k].iter().sum::<f64>() / total;
        let upper: f64 = counts[k..].iter().sum::<f64>() / total;
        let p = (2.0 * lower.min(upper)).min(1.0);
        return Some(UTest { u, p, exact: true });
    }
    let n = fn1 + fn2;
    let var = fn1 * fn2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return Some(UTest {
            u,
            p: 1.0,
            exact: false,
        });
    }
    let z = ((u - mean).abs() - 0.5).max(0.0) / var.sqrt();
    let normal = Normal::new(0.0, 1.0).ok()?;
    let p = (2.0 * (1.0 - normal.cdf(z))).min(1.0);
    Some(UTest { u, p, exact: false })
}

/// The smallest two-sided p-value the exact test can give with `n1` and
/// `n2` values: 2 / C(n1 + n2, n1).
pub fn smallest_p(n1: usize, n2: usize) -> f64 {
    let mut c = 1.0;
    for i in 0..n1.min(n2) {
        c = c * (n1 + n2 - i) as f64 / (i + 1) as f64;
    }
    (2.0 / c).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_p_values_match_the_tables() {
        // Completely separated samples of 5 and 5: p = 2/252.
        let a = [1.0, 2.0, 3.0, 4.0, 5.0];
        let b = [6.0, 7.0, 8.0, 9.0, 10.0];
        let t = test(&a, &b).unwrap();
        assert!(t.exact && t.u == 0.0);
        assert!((t.p - 2.0 / 252.0).abs() < 1e-12, "{}", t.p);
        assert!((smallest_p(5, 5) - 2.0 / 252.0).abs() < 1e-12);
        // Interleaved samples: no evidence at all.
        let t = test(&[1.0, 3.0, 5.0, 7.0], &[2.0, 4.0, 6.0, 8.0]).unwrap();
        assert!(t.p > 0.6, "{}", t.p);
        // scipy.stats.mannwhitneyu([1,2,4],[3,5,6,7], method="exact"):
        // U=1, p=0.11428571428571428 (4/35).
        let t = test(&[1.0, 2.0, 4.0], &[3.0, 5.0, 6.0, 7.0]).unwrap();
        assert_eq!(t.u, 1.0);
        assert!((t.p - 4.0 / 35.0).abs() < 1e-12, "{}", t.p);
    }

    #[test]
    fn ties_use_the_corrected_normal_approximation() {
        // scipy.stats.mannwhitneyu([1,2,2,3,3,3],[3,4,4,5,5,5],
        // method="asymptotic"): U=1.5, p=0.008367475040112425.
        let t = test(
            &[1.0, 2.0, 2.0, 3.0, 3.0, 3.0],
            &[3.0, 4.0, 4.0, 5.0, 5.0, 5.0],
        )
        .unwrap();
        assert!(!t.exact && t.u == 1.5);
        assert!((t.p - 0.008367475040112425).abs() < 1e-9, "{}", t.p);
        let same = test(&[2.0, 2.0], &[2.0, 2.0, 2.0]).unwrap();
        assert_eq!(same.p, 1.0);
        assert!(test(&[], &[1.0]).is_none());
    }
}
