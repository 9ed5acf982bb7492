//! Train/valid/test split, fixed by `split.seed` (not the trial seed).

use crate::spec::SplitSection;
use anyhow::bail;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Row indices of the train, valid and test splits, each in file order.
///
/// Stratified: each class is shuffled and cut by the fractions on its own, so class
/// shares match across splits to within one row, and every class with >= 3 rows lands in
/// all three splits (when their fractions are positive). Otherwise one shuffled cut.
/// Fractions are normalised by their sum.
pub fn split_indices(
    labels: &[u32],
    n_classes: usize,
    cfg: &SplitSection,
) -> anyhow::Result<[Vec<usize>; 3]> {
    let fracs = [cfg.train, cfg.valid, cfg.test];
    let sum: f64 = fracs.iter().sum();
    if fracs.iter().any(|f| !f.is_finite() || *f < 0.0) || sum <= 0.0 {
        bail!(
            "data.split: fractions train = {}, valid = {}, test = {} must be >= 0 with a positive sum",
            cfg.train,
            cfg.valid,
            cfg.test
        );
    }
    let fracs = fracs.map(|f| f / sum);
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let mut out: [Vec<usize>; 3] = Default::default();
    let groups: Vec<Vec<usize>> = if cfg.stratify {
        let mut by_class = vec![Vec::new(); n_classes];
        for (i, &l) in labels.iter().enumerate() {
            if let Some(g) = by_class.get_mut(l as usize) {
                g.push(i);
            }
        }
        by_class
    } else {
        vec![(0..labels.len()).collect()]
    };
    for mut group in groups {
        group.shuffle(&mut rng);
        let [n_train, n_valid, _] = cut_sizes(group.len(), fracs);
        out[0].extend_from_slice(&group[..n_train]);
        out[1].extend_from_slice(&group[n_train..n_train + n_valid]);
        out[2].extend_from_slice(&group[n_train + n_valid..]);
    }
    for s in out.iter_mut() {
        s.sort_unstable();
    }
    Ok(out)
}

/// Sizes of the three parts of `n` rows. Valid and test are rounded from their
/// fractions, train takes the rest; with >= 3 rows every part with a positive
/// fraction gets at least one.
fn cut_sizes(n: usize, fracs: [f64; 3]) -> [usize; 3] {
    let mut sizes = [0usize; 3];
    for k in 1..3 {
        sizes[k] = (n as f64 * fracs[k]).round() as usize;
        if n >= 3 && fracs[k] > 0.0 {
            sizes[k] = sizes[k].max(1);
        }
    }
    let min_train = usize::from(n >= 3 && fracs[0] > 0.0);
    while sizes[1] + sizes[2] + min_train > n {
        // Take from the larger of valid/test, keeping each at >= 1 while possible.
        let k = if sizes[1] >= sizes[2] { 1 } else { 2 };
        sizes[k] -= 1;
    }
    sizes[0] = n - sizes[1] - sizes[2];
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_rows_go_one_to_each_split() {
        assert_eq!(cut_sizes(3, [0.8, 0.1, 0.1]), [1, 1, 1]);
        assert_eq!(cut_sizes(100, [0.8, 0.1, 0.1]), [80, 10, 10]);
        assert_eq!(cut_sizes(2, [0.8, 0.1, 0.1]), [2, 0, 0]);
        assert_eq!(cut_sizes(10, [1.0, 0.0, 0.0]), [10, 0, 0]);
    }
}
