//! Welch's t-test (two-sided) and the confidence interval of the
//! difference of means, reported beside the Mann-Whitney test.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::mean_var;

/// The outcome of one test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelchTest {
    /// t of mean(b) - mean(a).
    pub t: f64,
    /// Welch-Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// mean(b) - mean(a).
    pub diff: f64,
    /// The confidence interval of `diff` at the level asked for.
    pub ci: (f64, f64),
}

/// Welch's test of `b` against `a` with a `confidence` interval (0.95).
/// `None` with fewer than two values on a side, or no variance at all.
pub fn test(a: &[f64], b: &[f64], confidence: f64) -> Option<WelchTest> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let (sa, sb) = (va / na, vb / nb);
    let se = (sa + sb).sqrt();
    if se == 0.0 || !se.is_finite() {
        return None;
    }
    let df = (sa + sb).powi(2) / (sa * sa / (na - 1.0) + sb * sb / (nb - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let diff = mb - ma;
    let t = diff / se;
    let p = (2.0 * (1.0 - dist.cdf(t.abs()))).min(1.0);
    let q = dist.inverse_cdf(0.5 + confidence / 2.0);
    Some(WelchTest {
        t,
        df,
        p,
        diff,
        ci: (diff - q * se, diff + q * se),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_reference_computation() {
        // scipy.stats.ttest_ind(b, a, equal_var=False): t=2.0740146266783652,
        // df=10.209185368660295, p=0.06427999772458465, 95% interval
        // (-0.2239941490152435, 6.503994149015245).
        let a = [19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0];
        let b = [28.2, 26.6, 20.1, 23.3, 25.2, 22.1, 17.7, 27.6, 20.6, 13.7];
        let w = test(&a, &b, 0.95).unwrap();
        assert!((w.t - 2.0740146266783652).abs() < 1e-9, "{}", w.t);
        assert!((w.df - 10.209185368660295).abs() < 1e-9, "{}", w.df);
        assert!((w.p - 0.06427999772458465).abs() < 1e-6, "{}", w.p);
        assert!((w.ci.0 + 0.2239941490152435).abs() < 1e-6, "{:?}", w.ci);
        assert!((w.ci.1 - 6.503994149015245).abs() < 1e-6, "{:?}", w.ci);
        assert!(test(&[1.0], &[2.0, 3.0], 0.95).is_none());
        assert!(test(&[1.0, 1.0], &[1.0, 1.0], 0.95).is_none());
    }
}
