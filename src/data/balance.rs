//! Per-trial balancing of the training split (valid and test are never touched).

use super::Split;
use crate::spec::Balance;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Training-split balancing for one trial: the row indices to train on (each epoch
/// shuffles them) and, for `ClassWeights`, a weight per class.
#[derive(Debug, Clone, PartialEq)]
pub struct Balanced {
    /// Rows of the training split to train on (repeats allowed).
    pub indices: Vec<usize>,
    /// Loss weight per class (`ClassWeights` only).
    pub class_weights: Option<Vec<f32>>,
}

/// Deterministic for a given `seed`.
/// - `None`: every row once.
/// - `Upsample`: every row, plus rows drawn with replacement until each class has as
///   many as the largest.
/// - `Downsample`: each class drawn without replacement down to the smallest class
///   present (classes with no training rows are ignored).
/// - `ClassWeights`: every row once, weight `n_total / (n_classes * count_k)` for class k
///   (1.0 for a class with no training rows).
///
/// Labels >= `n_classes` are ignored.
pub fn balance(train: &Split, n_classes: usize, mode: Balance, seed: u64) -> Balanced {
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &l) in train.labels.iter().enumerate() {
        if let Some(g) = by_class.get_mut(l as usize) {
            g.push(i);
        }
    }
    let present = || by_class.iter().filter(|g| !g.is_empty()).map(Vec::len);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let all = || by_class.iter().flatten().copied().collect::<Vec<_>>();
    let mut indices = match mode {
        Balance::None | Balance::ClassWeights => all(),
        Balance::Upsample => {
            let target = present().max().unwrap_or(0);
            let mut out = all();
            for g in by_class.iter().filter(|g| !g.is_empty()) {
                out.extend((g.len()..target).map(|_| g[rng.gen_range(0..g.len())]));
            }
            out
        }
        Balance::Downsample => {
            let target = present().min().unwrap_or(0);
            let mut out = Vec::new();
            for g in by_class.iter() {
                out.extend(g.choose_multiple(&mut rng, target.min(g.len())).copied());
            }
            out
        }
    };
    indices.sort_unstable();
    let class_weights = (mode == Balance::ClassWeights).then(|| {
        let n_total = by_class.iter().map(Vec::len).sum::<usize>() as f32;
        by_class
            .iter()
            .map(|g| match g.len() {
                0 => 1.0,
                c => n_total / (n_classes as f32 * c as f32),
            })
            .collect()
    });
    Balanced {
        indices,
        class_weights,
    }
}
