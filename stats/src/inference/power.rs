//! Power: whether a compare could have seen a change as large as the
//! gates, and how many repetitions it would take. The normal approximation
//! of the t-test's power, scaled by the Mann-Whitney test's asymptotic
//! relative efficiency (3/pi), and never more than the exact test can
//! reach with so few values.

use statrs::distribution::{ContinuousCDF, Normal};

use super::mann_whitney::smallest_p;

/// The power a compare needs before it says SAME.
pub const TARGET_POWER: f64 = 0.8;

/// The Mann-Whitney test's efficiency relative to the t-test.
const ARE: f64 = 3.0 / std::f64::consts::PI;

/// The probability of rejecting at `alpha` (two-sided) when the true
/// change is `delta`, with noise `sd` and `n1`, `n2` values.
pub fn power(delta: f64, sd: f64, n1: usize, n2: usize, alpha: f64) -> f64 {
    if n1 < 2 || n2 < 2 || smallest_p(n1, n2) > alpha {
        return 0.0;
    }
    if sd == 0.0 {
        return if delta > 0.0 { 1.0 } else { 0.0 };
    }
    let Ok(normal) = Normal::new(0.0, 1.0) else {
        return 0.0;
    };
    let z = normal.inverse_cdf(1.0 - alpha / 2.0);
    let se = sd * (1.0 / n1 as f64 + 1.0 / n2 as f64).sqrt();
    normal.cdf(delta.abs() / se * ARE.sqrt() - z)
}

/// Repetitions per side for [`TARGET_POWER`] against a change of `delta`
/// with noise `sd` (at least what the exact test needs to reach `alpha`).
pub fn repetitions_needed(delta: f64, sd: f64, alpha: f64) -> usize {
    let mut least = 2;
    while smallest_p(least, least) > alpha {
        least += 1;
    }
    if delta <= 0.0 {
        return usize::MAX;
    }
    let Ok(normal) = Normal::new(0.0, 1.0) else {
        return usize::MAX;
    };
    let z = normal.inverse_cdf(1.0 - alpha / 2.0) + normal.inverse_cdf(TARGET_POWER);
    let n = 2.0 * (z * sd / delta).powi(2) / ARE;
    (n.ceil() as usize).max(least)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_grows_with_the_change_and_the_repetitions() {
        let p = |d, n| power(d, 1.0, n, n, 0.05);
        assert!(p(0.5, 5) < p(2.0, 5) && p(2.0, 5) < p(2.0, 10));
        assert_eq!(p(10.0, 3), 0.0, "3 v 3 can never reach p < 0.05");
        assert!(p(10.0, 5) > 0.99);
        // The classic figure: about 17 per side for a 1 sd change at 80%
        // power (t-test 16, over the efficiency 0.955).
        let n = repetitions_needed(1.0, 1.0, 0.05);
        assert!((16..=18).contains(&n), "{n}");
        assert_eq!(repetitions_needed(100.0, 1.0, 0.05), 4);
    }
}
