//! The row bootstrap of a seed-averaged metric: resample the test rows with
//! replacement, score every seed's predictions on the same resample, average
//! over seeds (Efron & Tibshirani 1993, ch. 6 and 13).

use super::interval::{percentile_interval, Interval};
use super::metric::ConfusionMetric;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Resamples to draw unless told otherwise: the percentile interval's ends move
/// by well under 0.001 between runs at this count for a few hundred rows.
pub const DEFAULT_RESAMPLES: usize = 2000;

/// Fewer test rows than this and `lab` states no bootstrap interval or paired
/// test: the resampling distribution is too coarse to mean anything.
pub const MIN_TEST_ROWS: usize = 30;

/// One configuration's predictions on a split: the true classes (n) and one
/// predicted-class vector (n) per seed, all in the same row order.
#[derive(Debug, Clone, Copy)]
pub struct Arm<'a> {
    /// (n) true classes.
    pub truth: &'a [u16],
    /// (seeds, n) predicted classes.
    pub preds: &'a [&'a [u16]],
}

impl Arm<'_> {
    /// The metric averaged over seeds on `rows` (indices, repeats allowed).
    pub fn score(&self, metric: ConfusionMetric, k: usize, rows: &[u32]) -> f64 {
        let sum: f64 = self
            .preds
            .iter()
            .map(|p| metric.on_rows(self.truth, p, k, rows))
            .sum();
        sum / self.preds.len().max(1) as f64
    }
}

/// Deterministic resamples of `n` row indices: the same `seed` gives the same
/// sequence, so a leaderboard is reproducible run to run.
pub struct Resamples {
    rng: ChaCha8Rng,
    rows: Vec<u32>,
}

impl Resamples {
    /// Resamples of `n` rows drawn from a ChaCha8 stream seeded with `seed`.
    pub fn new(n: usize, seed: u64) -> Resamples {
        Resamples {
            rng: ChaCha8Rng::seed_from_u64(seed),
            rows: vec![0; n],
        }
    }

    /// The next resample: n indices drawn uniformly with replacement.
    pub fn next_rows(&mut self) -> &[u32] {
        let n = self.rows.len() as u32;
        for r in self.rows.iter_mut() {
            *r = self.rng.gen_range(0..n);
        }
        &self.rows
    }
}

/// The percentile bootstrap interval at `level` of `arm`'s seed-averaged
/// `metric` over its rows, from `resamples` resamples seeded with `seed`.
/// `None` with fewer than [`MIN_TEST_ROWS`] rows or no seeds.
pub fn bootstrap_interval(
    arm: Arm,
    k: usize,
    metric: ConfusionMetric,
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<Interval> {
    let n = arm.truth.len();
    if n < MIN_TEST_ROWS || arm.preds.is_empty() || resamples == 0 {
        return None;
    }
    let mut draw = Resamples::new(n, seed);
    let mut replicates: Vec<f64> = (0..resamples)
        .map(|_| arm.score(metric, k, draw.next_rows()))
        .collect();
    percentile_interval(&mut replicates, level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_covers_the_estimate_and_narrows_with_rows() {
        let make = |n: usize| -> (Vec<u16>, Vec<u16>) {
            let truth: Vec<u16> = (0..n).map(|i| (i % 2) as u16).collect();
            // 80% right: every fifth row wrong.
            let pred = truth
                .iter()
                .enumerate()
                .map(|(i, &t)| if i.is_multiple_of(5) { 1 - t } else { t })
                .collect();
            (truth, pred)
        };
        let width = |n: usize| {
            let (truth, pred) = make(n);
            let preds = [pred.as_slice()];
            let arm = Arm {
                truth: &truth,
                preds: &preds,
            };
            let i = bootstrap_interval(arm, 2, ConfusionMetric::Accuracy, 0.95, 2000, 7).unwrap();
            assert!(i.low < 0.8 && 0.8 < i.high, "{i:?}");
            i.high - i.low
        };
        let (small, large) = (width(100), width(1600));
        // The binomial standard error shrinks by √16 = 4: the normal
        // approximation gives widths 0.157 and 0.039.
        assert!((small - 0.157).abs() < 0.03, "{small}");
        assert!((large - 0.039).abs() < 0.008, "{large}");
        let (truth, pred) = make(MIN_TEST_ROWS - 1);
        let preds = [pred.as_slice()];
        let arm = Arm {
            truth: &truth,
            preds: &preds,
        };
        assert!(bootstrap_interval(arm, 2, ConfusionMetric::Accuracy, 0.95, 100, 1).is_none());
    }

    #[test]
    fn resamples_are_reproducible_and_in_range() {
        let mut a = Resamples::new(50, 3);
        let mut b = Resamples::new(50, 3);
        let first = a.next_rows().to_vec();
        assert_eq!(first, b.next_rows());
        assert!(first.iter().all(|&r| r < 50));
        assert_ne!(first, a.next_rows());
    }
}
