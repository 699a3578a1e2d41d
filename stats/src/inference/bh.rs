//! Benjamini-Hochberg: p-values adjusted for the false discovery rate
//! across every test of one compare.

/// The BH-adjusted p-values of `p`, in the same order (NaN stays NaN and
/// does not count as a test).
pub fn adjust(p: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..p.len()).filter(|&i| !p[i].is_nan()).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let m = idx.len() as f64;
    let mut out = vec![f64::NAN; p.len()];
    let mut running = 1.0_f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        let q = (p[i] * m / (rank as f64 + 1.0)).min(1.0);
        running = running.min(q);
        out[i] = running;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_r_p_adjust() {
        // R: p.adjust(c(0.01, 0.04, 0.03, 0.005, 0.5), "BH")
        //    0.025 0.050 0.050 0.025 0.500
        let q = adjust(&[0.01, 0.04, 0.03, 0.005, 0.5]);
        let want = [0.025, 0.05, 0.05, 0.025, 0.5];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
        let q = adjust(&[f64::NAN, 0.02]);
        assert!(q[0].is_nan() && (q[1] - 0.02).abs() < 1e-12);
    }
}
