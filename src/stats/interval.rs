//! Confidence intervals: Student's t over a few values (seeds), and the
//! percentile of a bootstrap distribution.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// A two-sided interval `[low, high]` in the units of the statistic.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// The two-sided Student-t interval for the mean of `n` values with sample mean
/// `mean` and sample standard deviation `std` (divisor n − 1):
/// `mean ± t_{(1+level)/2, n−1} · std / √n`. `level` is in (0, 1), e.g. 0.95.
/// `None` for n < 2 (no spread to go on) or a level outside (0, 1).
///
/// Same as `scipy.stats.t.interval(level, n - 1, loc=mean, scale=std / sqrt(n))`.
pub fn t_interval(mean: f64, std: f64, n: usize, level: f64) -> Option<Interval> {
    if !(n >= 2 && level > 0.0 && level < 1.0 && mean.is_finite() && std.is_finite()) {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .ok()?
        .inverse_cdf((1.0 + level) / 2.0);
    let half = t * std / (n as f64).sqrt();
    Some(Interval {
        low: mean - half,
        high: mean + half,
    })
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `values` with linear interpolation between
/// order statistics (numpy's default, "linear"); sorts `values`. `None` when
/// empty.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    Some(values[lo] + (values[hi] - values[lo]) * (pos - lo as f64))
}

/// The percentile interval at `level` of a bootstrap distribution: its
/// (1 − level)/2 and (1 + level)/2 quantiles (Efron & Tibshirani 1993, §13.3).
pub fn percentile_interval(replicates: &mut [f64], level: f64) -> Option<Interval> {
    let low = quantile(replicates, (1.0 - level) / 2.0)?;
    let high = quantile(replicates, (1.0 + level) / 2.0)?;
    Some(Interval { low, high })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_matches_scipy() {
        // scipy.stats.t.interval(0.95, 2, loc=0.8, scale=0.012/np.sqrt(3))
        //   -> (0.7701903474589961, 0.829809652541004)
        let i = t_interval(0.8, 0.012, 3, 0.95).unwrap();
        assert!((i.low - 0.770_190_347_458_996_1).abs() < 1e-9, "{i:?}");
        assert!((i.high - 0.829_809_652_541_004).abs() < 1e-9, "{i:?}");
        // scipy.stats.t.interval(0.9, 7, loc=1.0, scale=0.5/np.sqrt(8))
        //   -> (0.6650826552124766, 1.3349173447875233)
        let i = t_interval(1.0, 0.5, 8, 0.9).unwrap();
        assert!((i.low - 0.665_082_655_212_476_6).abs() < 1e-9, "{i:?}");
        assert!(t_interval(0.8, 0.0, 1, 0.95).is_none());
        assert!(t_interval(0.8, 0.1, 3, 1.0).is_none());
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        // np.quantile([3, 1, 4, 1, 5], [0.0, 0.25, 0.5, 0.9, 1.0]) -> [1, 1, 3, 4.6, 5]
        let mut v = vec![3.0, 1.0, 4.0, 1.0, 5.0];
        let got: Vec<f64> = [0.0, 0.25, 0.5, 0.9, 1.0]
            .iter()
            .map(|&q| quantile(&mut v, q).unwrap())
            .collect();
        let want = [1.0, 1.0, 3.0, 4.6, 5.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-12, "{got:?}");
        }
        assert!(quantile(&mut [], 0.5).is_none());
    }
}
