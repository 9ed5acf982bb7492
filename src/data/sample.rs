//! `data.sample`: a seeded, stratified random sample of the kept rows.
//!
//! Each class keeps its share of the sample (largest remainders; a class keeps at
//! least [`MIN_PER_CLASS`] rows, or all it has, so it can reach every split). Which
//! rows: every row draws a random key from a generator seeded by `data.split.seed`,
//! and each class keeps the rows with its smallest keys, through a bounded heap
//! per class (a reservoir): memory is the sample's size, whatever the file's.

use crate::spec::Sample;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BinaryHeap;

/// The fewest rows a class keeps in a sample (when it has them): one per split.
pub const MIN_PER_CLASS: usize = 3;

/// How many of `total` rows `sample` asks for (at least 1).
pub fn target(sample: Sample, total: usize) -> usize {
    let n = match sample {
        Sample::Rows(n) => usize::try_from(n).unwrap_or(usize::MAX),
        Sample::Fraction(f) => (f * total as f64).round() as usize,
    };
    n.clamp(1, total.max(1))
}

/// The kept-row indices (sorted) of a stratified sample of `target` rows out of the
/// rows whose classes are `labels`, drawn with `seed`. `None` when it would keep
/// every row.
pub fn stratified(
    labels: &[u32],
    n_classes: usize,
    target: usize,
    seed: u64,
) -> Option<Vec<usize>> {
    if target >= labels.len() {
        return None;
    }
    let mut counts = vec![0usize; n_classes];
    for &l in labels {
        counts[l as usize] += 1;
    }
    let quotas = quotas(&counts, target);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Another stream than the split's, which seeds a generator with the same seed.
    rng.set_stream(1);
    let mut heaps: Vec<BinaryHeap<(u64, usize)>> = quotas
        .iter()
        .map(|&q| BinaryHeap::with_capacity(q))
        .collect();
    for (row, &l) in labels.iter().enumerate() {
        let key = rng.next_u64();
        let (heap, q) = (&mut heaps[l as usize], quotas[l as usize]);
        if heap.len() < q {
            heap.push((key, row));
        } else if heap.peek().is_some_and(|&(top, _)| key < top) {
            heap.pop();
            heap.push((key, row));
        }
    }
    let mut rows: Vec<usize> = heaps
        .into_iter()
        .flat_map(|h| h.into_iter().map(|(_, row)| row))
        .collect();
    rows.sort_unstable();
    Some(rows)
}

/// Each class's rows in a sample of `n`: its share by largest remainders (ties to
/// the first class), then raised to `min(count, MIN_PER_CLASS)`, taking the rows
/// from the classes with the most to spare.
fn quotas(counts: &[usize], n: usize) -> Vec<usize> {
    let total: u128 = counts.iter().map(|&c| c as u128).sum();
    if total == 0 {
        return vec![0; counts.len()];
    }
    let shares: Vec<(usize, u128)> = counts
        .iter()
        .map(|&c| {
            let x = c as u128 * n as u128;
            ((x / total) as usize, x % total)
        })
        .collect();
    let mut q: Vec<usize> = shares.iter().map(|s| s.0).collect();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| shares[b].1.cmp(&shares[a].1).then(a.cmp(&b)));
    let given: usize = q.iter().sum();
    for &c in order.iter().take(n.saturating_sub(given)) {
        q[c] += 1;
    }
    let floor: Vec<usize> = counts.iter().map(|&c| c.min(MIN_PER_CLASS)).collect();
    for c in 0..counts.len() {
        while q[c] < floor[c] {
            q[c] += 1;
            let spare = (0..counts.len())
                .filter(|&d| d != c && q[d] > floor[d])
                .max_by_key(|&d| (q[d] - floor[d], std::cmp::Reverse(d)));
            if let Some(d) = spare {
                q[d] -= 1;
            }
        }
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_keep_shares_and_a_floor() {
        assert_eq!(quotas(&[500, 500], 100), [50, 50]);
        assert_eq!(quotas(&[900, 100], 10), [7, 3]);
        assert_eq!(quotas(&[1, 1000], 10), [1, 9]);
        assert_eq!(quotas(&[3, 3, 3], 5), [3, 3, 3]);
    }

    #[test]
    fn sample_is_stratified_and_repeatable() {
        let labels: Vec<u32> = (0..10_000).map(|i| u32::from(i % 4 == 0)).collect();
        let a = stratified(&labels, 2, 1000, 7).unwrap();
        assert_eq!(a.len(), 1000);
        let ones = a.iter().filter(|&&r| labels[r] == 1).count();
        assert_eq!(ones, 250);
        assert_eq!(a, stratified(&labels, 2, 1000, 7).unwrap());
        assert_ne!(a, stratified(&labels, 2, 1000, 8).unwrap());
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert!(stratified(&labels, 2, 10_000, 7).is_none());
    }

    #[test]
    fn targets() {
        assert_eq!(target(Sample::Rows(50), 1000), 50);
        assert_eq!(target(Sample::Rows(5000), 1000), 1000);
        assert_eq!(target(Sample::Fraction(0.25), 1000), 250);
        assert_eq!(target(Sample::Fraction(0.0001), 1000), 1);
    }
}
