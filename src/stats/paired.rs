//! Paired comparisons of two configurations on the same test rows: a paired
//! bootstrap of the metric difference, and McNemar's exact test for accuracy.

use super::bootstrap::{Arm, Resamples, MIN_TEST_ROWS};
use super::interval::{percentile_interval, Interval};
use super::metric::ConfusionMetric;
use statrs::distribution::{Binomial, DiscreteCDF};

/// The paired bootstrap of `metric(A) − metric(B)` (seed-averaged) over the
/// rows both were scored on.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct PairedTest {
    /// Observed difference d = metric(A) − metric(B) on all rows.
    pub difference: f64,
    /// Percentile interval of the resampled differences at the asked level.
    pub interval: Interval,
    /// Two-sided p-value of "no difference": (1 + #{|d* − d| ≥ |d|}) / (B + 1),
    /// the bootstrap distribution shifted to the null (Efron & Tibshirani
    /// 1993, §16.4; Berg-Kirkpatrick et al. 2012); 1 when d = 0.
    pub p_value: f64,
    /// Resamples drawn (B).
    pub resamples: usize,
    /// Rows (n).
    pub rows: usize,
}

/// The paired bootstrap test of `a` against `b` on the same `n` rows (both
/// arms' `truth` must be equal), `resamples` resamples seeded with `seed`.
/// `None` when the arms differ in rows or have fewer than [`MIN_TEST_ROWS`].
pub fn paired_bootstrap(
    a: Arm,
    b: Arm,
    k: usize,
    metric: ConfusionMetric,
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<PairedTest> {
    let n = a.truth.len();
    if n < MIN_TEST_ROWS || a.truth != b.truth || a.preds.is_empty() || b.preds.is_empty() {
        return None;
    }
    if resamples == 0 {
        return None;
    }
    let all: Vec<u32> = (0..n as u32).collect();
    let d = a.score(metric, k, &all) - b.score(metric, k, &all);
    let mut draw = Resamples::new(n, seed);
    let mut extreme = 0usize;
    let mut diffs: Vec<f64> = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let rows = draw.next_rows();
        let dstar = a.score(metric, k, rows) - b.score(metric, k, rows);
        // A tolerance so that d = 0 (identical predictions) counts every
        // resample as extreme: p = 1, never "different" by rounding.
        if (dstar - d).abs() >= d.abs() - 1e-12 {
            extreme += 1;
        }
        diffs.push(dstar);
    }
    Some(PairedTest {
        difference: d,
        interval: percentile_interval(&mut diffs, level)?,
        p_value: (1 + extreme) as f64 / (resamples + 1) as f64,
        resamples,
        rows: n,
    })
}

/// How two predictions of the same rows agree with the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Contingency {
    /// Rows both predicted right.
    pub both_right: u64,
    /// Rows only A predicted right (McNemar's b).
    pub only_a: u64,
    /// Rows only B predicted right (McNemar's c).
    pub only_b: u64,
    /// Rows both predicted wrong.
    pub both_wrong: u64,
}

impl Contingency {
    /// The table of predictions `a` and `b` (n) against `truth` (n).
    pub fn of(truth: &[u16], a: &[u16], b: &[u16]) -> Contingency {
        let mut t = Contingency::default();
        for ((y, pa), pb) in truth.iter().zip(a).zip(b) {
            match (pa == y, pb == y) {
                (true, true) => t.both_right += 1,
                (true, false) => t.only_a += 1,
                (false, true) => t.only_b += 1,
                (false, false) => t.both_wrong += 1,
            }
        }
        t
    }

    /// McNemar's exact test of equal accuracy: see [`mcnemar_exact`].
    pub fn mcnemar(&self) -> f64 {
        mcnemar_exact(self.only_a, self.only_b)
    }
}

/// McNemar's exact (binomial) two-sided p-value for `b` rows only A got right
/// and `c` rows only B got right: `min(1, 2 · P(X ≤ min(b, c)))` with
/// X ~ Binomial(b + c, 1/2); 1 when b + c = 0.
///
/// Same as `statsmodels.stats.contingency_tables.mcnemar([[_, b], [c, _]],
/// exact=True).pvalue`.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    match Binomial::new(0.5, n) {
        Ok(dist) => (2.0 * dist.cdf(b.min(c))).min(1.0),
        Err(_) => 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arm_preds(truth: &[u16], wrong_every: usize, offset: usize) -> Vec<u16> {
        truth
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                if (i + offset).is_multiple_of(wrong_every) {
                    1 - t
                } else {
                    t
                }
            })
            .collect()
    }

    #[test]
    fn identical_predictions_are_never_different() {
        let truth: Vec<u16> = (0..200).map(|i| (i % 2) as u16).collect();
        let p = arm_preds(&truth, 4, 0);
        let preds = [p.as_slice()];
        let arm = Arm {
            truth: &truth,
            preds: &preds,
        };
        let t = paired_bootstrap(
            arm,
            arm,
            2,
            ConfusionMetric::Macro(crate::stats::metric::Score::F1),
            0.95,
            500,
            1,
        );
        let t = t.unwrap();
        assert_eq!(t.difference, 0.0);
        assert_eq!(t.p_value, 1.0);
    }

    #[test]
    fn a_clearly_worse_arm_is_different_and_the_interval_holds_the_difference() {
        let truth: Vec<u16> = (0..400).map(|i| (i % 2) as u16).collect();
        let good = arm_preds(&truth, 10, 0); // 90% right
        let bad = arm_preds(&truth, 3, 1); // 67% right
        let (g, b) = ([good.as_slice()], [bad.as_slice()]);
        let arm = |p| Arm {
            truth: &truth,
            preds: p,
        };
        let t =
            paired_bootstrap(arm(&b), arm(&g), 2, ConfusionMetric::Accuracy, 0.95, 999, 3).unwrap();
        assert!((t.difference - (0.6675 - 0.9)).abs() < 1e-9, "{t:?}");
        assert!(t.interval.low < t.difference && t.difference < t.interval.high);
        assert!(t.interval.high < 0.0, "{t:?}");
        assert_eq!(t.p_value, 1.0 / 1000.0);
    }

    #[test]
    fn under_the_null_about_alpha_of_tests_reject() {
        // Two arms that err independently at the same 25% rate: a calibrated
        // test rejects at 0.05 in about 5% of experiments.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let truth: Vec<u16> = (0..300).map(|i| (i % 2) as u16).collect();
        let noisy = |rng: &mut rand_chacha::ChaCha8Rng| -> Vec<u16> {
            truth
                .iter()
                .map(|&t| if rng.gen_bool(0.25) { 1 - t } else { t })
                .collect()
        };
        let experiments = 200;
        let mut rejected = 0;
        for e in 0..experiments {
            let (a, b) = (noisy(&mut rng), noisy(&mut rng));
            let (pa, pb) = ([a.as_slice()], [b.as_slice()]);
            let arm = |p| Arm {
                truth: &truth,
                preds: p,
            };
            let t = paired_bootstrap(
                arm(&pa),
                arm(&pb),
                2,
                ConfusionMetric::Accuracy,
                0.95,
                400,
                e,
            )
            .unwrap();
            rejected += usize::from(t.p_value < 0.05);
        }
        let rate = rejected as f64 / experiments as f64;
        assert!((0.01..=0.10).contains(&rate), "rejection rate {rate}");
    }

    #[test]
    fn mcnemar_matches_statsmodels() {
        // statsmodels.stats.contingency_tables.mcnemar([[50, b], [c, 30]], exact=True).pvalue
        for (b, c, want) in [
            (10, 2, 0.038_574_218_75),
            (5, 5, 1.0),
            (0, 0, 1.0),
            (30, 15, 0.035_697_803_555_194_696),
        ] {
            let got = mcnemar_exact(b, c);
            assert!((got - want).abs() < 1e-10, "b={b} c={c}: {got} vs {want}");
        }
        let t = Contingency::of(&[0, 1, 0, 1], &[0, 1, 1, 0], &[0, 0, 0, 0]);
        assert_eq!(
            t,
            Contingency {
                both_right: 1,
                only_a: 1,
                only_b: 1,
                both_wrong: 1
            }
        );
    }
}
