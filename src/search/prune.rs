//! Pruning rules: whether a running trial stops after an epoch, decided from its
//! own objective curve and the curves of every other trial of the experiment.
//! Pure functions: no store, no training; the runner reads the curves from the
//! `epochs` rows, calls [`decide`] after each epoch and records the verdict.
//!
//! Both rules follow Optuna's pruners (`optuna/pruners/_percentile.py` for the
//! median rule, `optuna/pruners/_successive_halving.py` for ASHA); where they
//! differ, the rule's docstring says so. Epochs are 1-based throughout.

/// Which way the objective improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Larger is better (accuracy, F1).
    Maximize,
    /// Smaller is better (a loss).
    Minimize,
}

impl Direction {
    /// `value` as a score where larger is better; NaN is the worst score
    /// (negative infinity), so it sorts last in either direction.
    fn score(self, value: f64) -> f64 {
        if value.is_nan() {
            return f64::NEG_INFINITY;
        }
        match self {
            Direction::Maximize => value,
            Direction::Minimize => -value,
        }
    }

    /// The objective value of a score (the inverse of [`Direction::score`]; a
    /// NaN's score comes back as the worst value, -inf or +inf).
    fn value(self, score: f64) -> f64 {
        match self {
            Direction::Maximize => score,
            Direction::Minimize => -score,
        }
    }

    /// How a pruned value compares with the bar it missed.
    fn worse_sign(self) -> char {
        match self {
            Direction::Maximize => '<',
            Direction::Minimize => '>',
        }
    }
}

/// A pruner's rule and settings (from the spec's `[search.pruner]`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pruner {
    /// Never prune: every trial trains all its epochs.
    None,
    /// Optuna's MedianPruner: from epoch `min_epochs` on, once `startup_trials`
    /// trials have finished (status done), prune a trial whose best value so far
    /// is worse than the median of the finished trials' values at the same epoch.
    ///
    /// As `PercentilePruner(50, n_startup_trials = startup_trials,
    /// n_warmup_steps = min_epochs - 1, interval_steps = 1, n_min_trials = 1)`
    /// with Optuna's 0-based steps: no pruning before one trial has finished, nor
    /// when no finished trial reached this epoch; a best equal to the median
    /// continues; a trial whose values so far are all NaN is pruned. Differs from
    /// Optuna in one place: a finished trial's NaN value counts in the median as
    /// the worst value, where Optuna's `nanpercentile` drops it.
    Median {
        /// First epoch (1-based) at which a trial may be pruned; 0 acts as 1.
        min_epochs: usize,
        /// Finished (done) trials needed before anything is pruned.
        startup_trials: usize,
    },
    /// Asynchronous successive halving (ASHA; Li et al. 2020, Optuna's
    /// SuccessiveHalvingPruner with min_early_stopping_rate 0, bootstrap_count 0):
    /// rung k is at epoch min_epochs * reduction^k; at a rung epoch the trial
    /// continues only if its value is among the top max(1, n / reduction) of the n
    /// values recorded at that epoch by every trial that reached it (itself
    /// included, any status); Optuna's rule for the first reduction-1 trials
    /// (promote only if best so far) included.
    ///
    /// A value equal to the cut continues (Optuna's `>=`); a NaN value at a rung
    /// is pruned; epochs between rungs never prune. Differs from Optuna, which
    /// keeps each trial's value per rung as it passes: here the rung's values are
    /// read from the curves (the value at the rung epoch of every trial with that
    /// many epochs), the same when the pruner runs after every epoch, except that
    /// a NaN another trial recorded at the rung epoch competes as the worst value
    /// (Optuna prunes it before recording it). `min_epochs` is fixed (Optuna's
    /// `min_resource = "auto"` is not offered). `min_epochs` 0 or `reduction`
    /// below 2 never prunes (the spec's validation rejects both).
    Asha {
        /// Epoch (1-based) of the first rung, Optuna's `min_resource`.
        min_epochs: usize,
        /// Rung spacing and the kept fraction, 1 / `reduction` (Optuna's
        /// `reduction_factor`, the paper's η).
        reduction: usize,
    },
}

/// One trial's objective value per epoch (index 0 = epoch 1) and whether it
/// finished normally (status done).
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The trial's id in the store.
    pub trial_id: i64,
    /// The objective after each epoch, in epoch order.
    pub values: Vec<f64>,
    /// Whether the trial finished normally (status done).
    pub finished: bool,
}

/// Why a trial stops: the epoch and a one-line reason for the log and `lab show`.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The epoch (1-based) after which the trial stops.
    pub epoch: usize,
    /// One line: `pruned at epoch 2: 0.6100 < median 0.6800 of 5 finished
    /// trials`, or `pruned at epoch 3 (rung 1): 0.6100 is not in the top 1 of 4
    /// trials at this rung (cut 0.6800)`, or `pruned at epoch 2: the objective
    /// is NaN`.
    pub reason: String,
}

/// Whether `trial` (its values up to and including `epoch`, 1-based) stops now,
/// given every OTHER trial of the experiment (`others`, any status, their values
/// as recorded so far). Deterministic: the same inputs give the same answer
/// whatever their order. NaN values count as the worst possible.
///
/// `None` (continue) also when `epoch` is 0 or beyond the trial's values; a
/// curve in `others` with the trial's own id is ignored.
pub fn decide(
    pruner: &Pruner,
    direction: Direction,
    trial: &Curve,
    epoch: usize,
    others: &[Curve],
) -> Option<Verdict> {
    if epoch == 0 || epoch > trial.values.len() {
        return None;
    }
    let seen = &trial.values[..epoch];
    let others: Vec<&Curve> = others
        .iter()
        .filter(|c| c.trial_id != trial.trial_id)
        .collect();
    match *pruner {
        Pruner::None => None,
        Pruner::Median {
            min_epochs,
            startup_trials,
        } => median_rule(direction, seen, min_epochs, startup_trials, &others),
        Pruner::Asha {
            min_epochs,
            reduction,
        } => asha_rule(direction, seen, min_epochs, reduction, &others),
    }
}

/// The median rule for a trial whose values so far are `seen` (the last one is
/// this epoch's).
fn median_rule(
    direction: Direction,
    seen: &[f64],
    min_epochs: usize,
    startup_trials: usize,
    others: &[&Curve],
) -> Option<Verdict> {
    let epoch = seen.len();
    let finished: Vec<&Curve> = others.iter().copied().filter(|c| c.finished).collect();
    if finished.is_empty() || finished.len() < startup_trials || epoch < min_epochs {
        return None;
    }
    if seen.iter().all(|v| v.is_nan()) {
        return Some(nan_verdict(epoch, None));
    }
    let best = seen
        .iter()
        .map(|&v| direction.score(v))
        .fold(f64::NEG_INFINITY, f64::max);
    let mut at_epoch: Vec<f64> = finished
        .iter()
        .filter_map(|c| c.values.get(epoch - 1))
        .map(|&v| direction.score(v))
        .collect();
    let median = median(&mut at_epoch)?;
    let n = at_epoch.len();
    (best < median).then(|| Verdict {
        epoch,
        reason: format!(
            "pruned at epoch {epoch}: {:.4} {} median {:.4} of {n} finished {}",
            direction.value(best),
            direction.worse_sign(),
            direction.value(median),
            if n == 1 { "trial" } else { "trials" },
        ),
    })
}

/// The median of `scores` (the mean of the two middle ones for an even count,
/// numpy's linear-interpolation 50th percentile); `None` when empty. Sorts
/// `scores`. Never NaN for scores that are not NaN (infinities included).
fn median(scores: &mut [f64]) -> Option<f64> {
    scores.sort_by(f64::total_cmp);
    let n = scores.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(scores[n / 2]),
        _ => Some((scores[n / 2 - 1] + scores[n / 2]) / 2.0),
    }
}

/// The ASHA rule for a trial whose values so far are `seen` (the last one is
/// this epoch's).
fn asha_rule(
    direction: Direction,
    seen: &[f64],
    min_epochs: usize,
    reduction: usize,
    others: &[&Curve],
) -> Option<Verdict> {
    let epoch = seen.len();
    let rung = rung_of(epoch, min_epochs, reduction)?;
    let own = seen[epoch - 1];
    if own.is_nan() {
        return Some(nan_verdict(epoch, Some(rung)));
    }
    let own_score = direction.score(own);
    let mut scores: Vec<f64> = others
        .iter()
        .filter_map(|c| c.values.get(epoch - 1))
        .map(|&v| direction.score(v))
        .collect();
    scores.push(own_score);
    scores.sort_by(|a, b| b.total_cmp(a));
    let n = scores.len();
    let keep = (n / reduction).max(1);
    let cut = scores[keep - 1];
    (own_score < cut).then(|| Verdict {
        epoch,
        reason: format!(
            "pruned at epoch {epoch} (rung {rung}): {own:.4} is not in the top {keep} of {n} trials at this rung (cut {:.4})",
            direction.value(cut)
        ),
    })
}

/// The rung (0-based) whose epoch is `epoch`: rung k is at epoch
/// `min_epochs * reduction^k`. `None` between rungs, and always when
/// `min_epochs` is 0 or `reduction` below 2.
fn rung_of(epoch: usize, min_epochs: usize, reduction: usize) -> Option<usize> {
    if min_epochs == 0 || reduction < 2 {
        return None;
    }
    let (mut at, mut rung) = (min_epochs, 0);
    while at < epoch {
        at = at.checked_mul(reduction)?;
        rung += 1;
    }
    (at == epoch).then_some(rung)
}

/// The verdict for a trial whose objective is NaN (at a rung, or all its
/// values so far for the median rule).
fn nan_verdict(epoch: usize, rung: Option<usize>) -> Verdict {
    let at = match rung {
        Some(rung) => format!("epoch {epoch} (rung {rung})"),
        None => format!("epoch {epoch}"),
    };
    Verdict {
        epoch,
        reason: format!("pruned at {at}: the objective is NaN"),
    }
}

#[cfg(test)]
mod tests {
    use super::Direction::{Maximize, Minimize};
    use super::*;

    const NAN: f64 = f64::NAN;
    /// ASHA with rungs at epochs 1, 3, 9, 27.
    const ASHA: Pruner = Pruner::Asha {
        min_epochs: 1,
        reduction: 3,
    };

    fn done(trial_id: i64, values: &[f64]) -> Curve {
        Curve {
            trial_id,
            values: values.to_vec(),
            finished: true,
        }
    }

    fn running(trial_id: i64, values: &[f64]) -> Curve {
        Curve {
            finished: false,
            ..done(trial_id, values)
        }
    }

    /// The trial under test (id 0) with `values`, still running.
    fn me(values: &[f64]) -> Curve {
        running(0, values)
    }

    fn median(min_epochs: usize, startup_trials: usize) -> Pruner {
        Pruner::Median {
            min_epochs,
            startup_trials,
        }
    }

    /// The reason, or `None` when the trial continues; checks the verdict's epoch.
    fn why(
        p: Pruner,
        d: Direction,
        trial: &Curve,
        epoch: usize,
        others: &[Curve],
    ) -> Option<String> {
        let verdict = decide(&p, d, trial, epoch, others)?;
        assert_eq!(verdict.epoch, epoch);
        Some(verdict.reason)
    }

    /// Five finished trials, maximizing. Epoch 1: 0.55 0.60 0.62 0.66 0.70
    /// (median 0.62); epoch 2: 0.60 0.65 0.68 0.70 0.75 (median 0.68).
    fn five_finished() -> Vec<Curve> {
        vec![
            done(1, &[0.62, 0.68]),
            done(2, &[0.70, 0.75]),
            done(3, &[0.55, 0.60]),
            done(4, &[0.66, 0.70]),
            done(5, &[0.60, 0.65]),
        ]
    }

    #[test]
    fn median_prunes_a_best_so_far_below_the_finished_median_when_maximizing() {
        let others = five_finished();
        let p = median(1, 5);
        // Epoch 2: best so far max(0.55, 0.61) = 0.61 < 0.68.
        assert_eq!(
            why(p, Maximize, &me(&[0.55, 0.61]), 2, &others).as_deref(),
            Some("pruned at epoch 2: 0.6100 < median 0.6800 of 5 finished trials")
        );
        // Epoch 1 of the same trial: 0.55 < median 0.62.
        assert_eq!(
            why(p, Maximize, &me(&[0.55, 0.61]), 1, &others).as_deref(),
            Some("pruned at epoch 1: 0.5500 < median 0.6200 of 5 finished trials")
        );
        // The best so far counts, not the last value: max(0.69, 0.61) = 0.69 >= 0.68.
        assert_eq!(why(p, Maximize, &me(&[0.69, 0.61]), 2, &others), None);
        // Equal to the median: continues (Optuna prunes on a strict <).
        assert_eq!(why(p, Maximize, &me(&[0.62]), 1, &others), None);
    }

    #[test]
    fn median_prunes_a_best_so_far_above_the_finished_median_when_minimizing() {
        // Losses. Epoch 1: 0.40 0.50 0.60 0.70, median (0.50 + 0.60) / 2 = 0.55;
        // epoch 2: 0.35 0.45 0.55 0.65, median (0.45 + 0.55) / 2 = 0.50.
        let others = [
            done(1, &[0.40, 0.35]),
            done(2, &[0.70, 0.65]),
            done(3, &[0.50, 0.45]),
            done(4, &[0.60, 0.55]),
        ];
        let p = median(1, 1);
        assert_eq!(
            why(p, Minimize, &me(&[0.58]), 1, &others).as_deref(),
            Some("pruned at epoch 1: 0.5800 > median 0.5500 of 4 finished trials")
        );
        assert_eq!(why(p, Minimize, &me(&[0.52]), 1, &others), None);
        // Best so far min(0.52, 0.58) = 0.52 > 0.50.
        assert_eq!(
            why(p, Minimize, &me(&[0.52, 0.58]), 2, &others).as_deref(),
            Some("pruned at epoch 2: 0.5200 > median 0.5000 of 4 finished trials")
        );
        // min(0.58, 0.49) = 0.49 <= 0.50.
        assert_eq!(why(p, Minimize, &me(&[0.58, 0.49]), 2, &others), None);
        // The same table read as a score to maximize keeps 0.58 >= 0.55.
        assert_eq!(why(p, Maximize, &me(&[0.58]), 1, &others), None);
    }

    #[test]
    fn median_waits_for_min_epochs() {
        // Epoch-3 values 0.7 0.7 0.7: median 0.7.
        let others = [
            done(1, &[0.7, 0.7, 0.7]),
            done(2, &[0.7, 0.7, 0.7]),
            done(3, &[0.7, 0.7, 0.7]),
        ];
        let trial = me(&[0.1, 0.1, 0.1]);
        let p = median(3, 1);
        assert_eq!(why(p, Maximize, &trial, 1, &others), None);
        assert_eq!(why(p, Maximize, &trial, 2, &others), None);
        assert_eq!(
            why(p, Maximize, &trial, 3, &others).as_deref(),
            Some("pruned at epoch 3: 0.1000 < median 0.7000 of 3 finished trials")
        );
        // min_epochs 0 acts as 1: epoch 1 may prune.
        assert!(why(median(0, 1), Maximize, &trial, 1, &others).is_some());
    }

    #[test]
    fn median_waits_for_startup_trials_and_ignores_running_ones() {
        let trial = me(&[0.1]);
        let p = median(1, 3);
        // Two finished trials < 3: no pruning, whatever the running ones show.
        let mut others = vec![
            done(1, &[0.8]),
            done(2, &[0.9]),
            running(3, &[0.85]),
            running(4, &[0.95]),
        ];
        assert_eq!(why(p, Maximize, &trial, 1, &others), None);
        // A third finished trial: median of 0.7 0.8 0.9 = 0.8 (with the running
        // ones it would be 0.85 of five).
        others.push(done(5, &[0.7]));
        assert_eq!(
            why(p, Maximize, &trial, 1, &others).as_deref(),
            Some("pruned at epoch 1: 0.1000 < median 0.8000 of 3 finished trials")
        );
        // startup_trials 0 still needs one finished trial (Optuna's n_trials == 0).
        let only_running = [running(1, &[0.9]), running(2, &[0.9])];
        assert_eq!(why(median(1, 0), Maximize, &trial, 1, &only_running), None);
    }

    #[test]
    fn median_counts_only_finished_trials_that_reached_the_epoch() {
        // Trial 1 early-stopped after epoch 1; only trial 2 has an epoch 2.
        let others = [done(1, &[0.9]), done(2, &[0.8, 0.85])];
        let trial = me(&[0.1, 0.2, 0.3]);
        let p = median(1, 1);
        // Epoch 2: best max(0.1, 0.2) = 0.2 < 0.85, the median of one value.
        assert_eq!(
            why(p, Maximize, &trial, 2, &others).as_deref(),
            Some("pruned at epoch 2: 0.2000 < median 0.8500 of 1 finished trial")
        );
        // Epoch 3: no finished trial got there.
        assert_eq!(why(p, Maximize, &trial, 3, &others), None);
    }

    #[test]
    fn median_counts_nan_as_the_worst_value() {
        let p = median(1, 1);
        let flat = [done(1, &[0.5, 0.5])];
        // All NaN so far: pruned, as Optuna does.
        assert_eq!(
            why(p, Maximize, &me(&[NAN, NAN]), 2, &flat).as_deref(),
            Some("pruned at epoch 2: the objective is NaN")
        );
        // One real value: best so far max(NaN, 0.6) = 0.6 >= 0.5.
        assert_eq!(why(p, Maximize, &me(&[NAN, 0.6]), 2, &flat), None);
        // Finished NaN is the worst: maximizing, -inf 0.50 0.60 has median 0.50,
        // so 0.52 continues (Optuna's nanpercentile: median 0.55, pruned).
        let with_nan = [done(1, &[NAN]), done(2, &[0.50]), done(3, &[0.60])];
        assert_eq!(why(p, Maximize, &me(&[0.52]), 1, &with_nan), None);
        // Minimizing, 0.50 0.60 +inf has median 0.60: 0.58 continues, 0.65 not.
        assert_eq!(why(p, Minimize, &me(&[0.58]), 1, &with_nan), None);
        assert_eq!(
            why(p, Minimize, &me(&[0.65]), 1, &with_nan).as_deref(),
            Some("pruned at epoch 1: 0.6500 > median 0.6000 of 3 finished trials")
        );
    }

    #[test]
    fn the_median_of_scores_with_nan_as_minus_infinity_is_never_nan() {
        let inf = f64::INFINITY;
        // A middle pair -inf, 0.8 averages to -inf (interpolating as
        // a + (b - a) / 2 would give -inf + inf = NaN).
        assert_eq!(super::median(&mut [0.9, -inf, 0.8, -inf]), Some(-inf));
        assert_eq!(super::median(&mut [0.8, -inf]), Some(-inf));
        assert_eq!(super::median(&mut [0.9, 0.8, -inf]), Some(0.8));
        assert_eq!(super::median(&mut [0.9, 0.8, 0.5, 0.6]), Some(0.7));
        assert_eq!(super::median(&mut []), None);
    }

    #[test]
    fn asha_rungs_are_at_min_epochs_times_powers_of_reduction() {
        let rungs: Vec<(usize, usize)> = (1..=30)
            .filter_map(|e| rung_of(e, 1, 3).map(|r| (e, r)))
            .collect();
        assert_eq!(rungs, [(1, 0), (3, 1), (9, 2), (27, 3)]);
        let rungs: Vec<(usize, usize)> = (1..=20)
            .filter_map(|e| rung_of(e, 2, 2).map(|r| (e, r)))
            .collect();
        assert_eq!(rungs, [(2, 0), (4, 1), (8, 2), (16, 3)]);
        // Settings validation rejects: never a rung, never a hang or overflow.
        for (min, reduction) in [(0, 3), (1, 1), (1, 0)] {
            assert!((0..=30).all(|e| rung_of(e, min, reduction).is_none()));
        }
        assert_eq!(rung_of(usize::MAX, 2, 2), None);
    }

    /// Five other trials at epoch 1 (any status): 0.50 0.60 0.70 0.80 0.90.
    fn rung0_table() -> Vec<Curve> {
        vec![
            done(1, &[0.70, 0.71]),
            running(2, &[0.90]),
            done(3, &[0.50]),
            running(4, &[0.80, 0.2, 0.3]),
            running(5, &[0.60]),
        ]
    }

    #[test]
    fn asha_keeps_the_top_third_at_rung_0() {
        let others = rung0_table();
        // With 0.65: 0.90 0.80 | 0.70 0.65 0.60 0.50; n = 6, keep 6 / 3 = 2, cut 0.80.
        assert_eq!(
            why(ASHA, Maximize, &me(&[0.65]), 1, &others).as_deref(),
            Some("pruned at epoch 1 (rung 0): 0.6500 is not in the top 2 of 6 trials at this rung (cut 0.8000)")
        );
        // 0.85 is second of six; 0.80 ties the cut and continues.
        assert_eq!(why(ASHA, Maximize, &me(&[0.85]), 1, &others), None);
        assert_eq!(why(ASHA, Maximize, &me(&[0.80]), 1, &others), None);
        // Minimizing the same table: 0.50 0.60 | 0.65 ...; cut 0.60.
        assert_eq!(
            why(ASHA, Minimize, &me(&[0.65]), 1, &others).as_deref(),
            Some("pruned at epoch 1 (rung 0): 0.6500 is not in the top 2 of 6 trials at this rung (cut 0.6000)")
        );
        assert_eq!(why(ASHA, Minimize, &me(&[0.55]), 1, &others), None);
    }

    #[test]
    fn asha_at_rung_1_counts_only_trials_that_reached_epoch_3() {
        let others = [
            done(1, &[0.50, 0.60, 0.68]),
            Curve {
                finished: false,
                ..done(2, &[0.50, 0.55, 0.60])
            },
            running(3, &[0.40, 0.50, 0.55]),
            done(4, &[0.30]),          // pruned at rung 0: not at epoch 3
            running(5, &[0.60, 0.70]), // not at epoch 3 yet
        ];
        // Epoch 3: 0.68 0.61 0.60 0.55; n = 4, keep max(1, 4 / 3) = 1, cut 0.68.
        assert_eq!(
            why(ASHA, Maximize, &me(&[0.50, 0.58, 0.61]), 3, &others).as_deref(),
            Some("pruned at epoch 3 (rung 1): 0.6100 is not in the top 1 of 4 trials at this rung (cut 0.6800)")
        );
        assert_eq!(
            why(ASHA, Maximize, &me(&[0.50, 0.58, 0.70]), 3, &others),
            None
        );
    }

    #[test]
    fn asha_at_rung_2_minimizing_keeps_the_top_three_of_nine() {
        // Eight others with 9 epochs, losses at epoch 9:
        // 0.30 0.32 0.35 0.40 0.45 0.50 0.55 0.60 (earlier epochs 1.0).
        let nine = |id: i64, last: f64| {
            let mut v = vec![1.0; 8];
            v.push(last);
            done(id, &v)
        };
        let others: Vec<Curve> = [0.45, 0.30, 0.60, 0.35, 0.50, 0.32, 0.55, 0.40]
            .iter()
            .zip(1..)
            .map(|(&v, id)| nine(id, v))
            .collect();
        let mut trial = nine(0, 0.36);
        trial.finished = false;
        // 0.30 0.32 0.35 | 0.36 ...; n = 9, keep 3, cut 0.35.
        assert_eq!(
            why(ASHA, Minimize, &trial, 9, &others).as_deref(),
            Some("pruned at epoch 9 (rung 2): 0.3600 is not in the top 3 of 9 trials at this rung (cut 0.3500)")
        );
        trial.values[8] = 0.35;
        assert_eq!(why(ASHA, Minimize, &trial, 9, &others), None);
    }

    #[test]
    fn asha_never_prunes_between_rungs() {
        // Far worse than everyone at every epoch, but only epochs 1, 3, 9 are rungs.
        let others: Vec<Curve> = (1..=9).map(|id| done(id, &[0.9; 10])).collect();
        let trial = me(&[0.1; 10]);
        let pruned: Vec<usize> = (1..=10)
            .filter(|&e| decide(&ASHA, Maximize, &trial, e, &others).is_some())
            .collect();
        assert_eq!(pruned, [1, 3, 9]);
    }

    #[test]
    fn asha_promotes_the_first_trials_only_when_best_so_far() {
        // Alone at the rung: n = 1, the trial is its own cut.
        assert_eq!(why(ASHA, Maximize, &me(&[0.1]), 1, &[]), None);
        // n = 2 < reduction: keep max(1, 2 / 3 = 0) = 1, must beat 0.70.
        let one = [done(1, &[0.70])];
        assert_eq!(
            why(ASHA, Maximize, &me(&[0.60]), 1, &one).as_deref(),
            Some("pruned at epoch 1 (rung 0): 0.6000 is not in the top 1 of 2 trials at this rung (cut 0.7000)")
        );
        assert_eq!(why(ASHA, Maximize, &me(&[0.75]), 1, &one), None);
        // n = 3: keep 3 / 3 = 1, still the best only: 0.75 < 0.80.
        let two = [done(1, &[0.70]), running(2, &[0.80])];
        assert_eq!(
            why(ASHA, Maximize, &me(&[0.75]), 1, &two).as_deref(),
            Some("pruned at epoch 1 (rung 0): 0.7500 is not in the top 1 of 3 trials at this rung (cut 0.8000)")
        );
    }

    #[test]
    fn asha_counts_nan_as_the_worst_value() {
        // Its own NaN at a rung: pruned, even alone; between rungs: not judged.
        assert_eq!(
            why(ASHA, Maximize, &me(&[NAN]), 1, &[]).as_deref(),
            Some("pruned at epoch 1 (rung 0): the objective is NaN")
        );
        assert_eq!(why(ASHA, Maximize, &me(&[0.5, NAN]), 2, &[]), None);
        // Others' NaN compete as the worst: 0.90 0.85 | 0.80 -inf -inf -inf;
        // n = 6, keep 2, cut 0.85 (Optuna would keep 1 of 3 and prune).
        let others = [
            done(1, &[NAN]),
            running(2, &[0.90]),
            done(3, &[NAN]),
            running(4, &[0.80]),
            done(5, &[NAN]),
        ];
        assert_eq!(why(ASHA, Maximize, &me(&[0.85]), 1, &others), None);
        // Minimizing, NaN is +inf, not the best: 0.20 | 0.30 +inf; cut 0.20.
        let others = [done(1, &[NAN]), done(2, &[0.20])];
        assert_eq!(
            why(ASHA, Minimize, &me(&[0.30]), 1, &others).as_deref(),
            Some("pruned at epoch 1 (rung 0): 0.3000 is not in the top 1 of 3 trials at this rung (cut 0.2000)")
        );
    }

    /// A Fisher-Yates shuffle driven by xorshift64 from `seed` (non-zero).
    fn shuffled(curves: &[Curve], seed: u64) -> Vec<Curve> {
        let mut v = curves.to_vec();
        let mut s = seed;
        for i in (1..v.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            v.swap(i, (s % (i as u64 + 1)) as usize);
        }
        v
    }

    #[test]
    fn the_decision_does_not_depend_on_the_order_of_the_others() {
        let mut others = rung0_table();
        others.extend([done(6, &[NAN]), done(7, &[0.65]), running(8, &[0.80])]);
        others.extend(five_finished().into_iter().map(|mut c| {
            c.trial_id += 10;
            c
        }));
        let cases = [
            (ASHA, Maximize, 0.65),
            (ASHA, Minimize, 0.60),
            (median(1, 3), Maximize, 0.60),
            (median(1, 3), Minimize, 0.66),
        ];
        for (p, d, v) in cases {
            let trial = me(&[v]);
            let expected = decide(&p, d, &trial, 1, &others);
            for seed in 1..=30 {
                let again = decide(&p, d, &trial, 1, &shuffled(&others, seed));
                assert_eq!(again, expected, "{p:?} {d:?} seed {seed}");
            }
        }
        // Not all trivially `None`: at epoch 1 the 14 ASHA values keep 14 / 3 = 4,
        // cut 0.70 > 0.65 (pruned) or, minimizing, 0.60 (tie, kept); the 9
        // finished values -inf 0.50 0.55 0.60 0.62 0.65 0.66 0.70 0.70 have
        // median 0.62 > 0.60 (pruned), and minimizing, with NaN as +inf, 0.65 < 0.66 (pruned).
        let verdicts = cases
            .iter()
            .filter(|(p, d, v)| decide(p, *d, &me(&[*v]), 1, &others).is_some())
            .count();
        assert_eq!(verdicts, 3);
    }

    #[test]
    fn none_out_of_range_epochs_and_the_trial_itself_never_prune() {
        let others = rung0_table();
        let bad = me(&[0.0, 0.0]);
        assert_eq!(decide(&Pruner::None, Maximize, &bad, 1, &others), None);
        assert_eq!(decide(&ASHA, Maximize, &bad, 0, &others), None);
        assert_eq!(decide(&ASHA, Maximize, &bad, 3, &others), None);
        // Its own curve among the others is not a competitor.
        let itself = [done(0, &[0.9])];
        assert_eq!(decide(&ASHA, Maximize, &me(&[0.1]), 1, &itself), None);
        // Settings validation rejects never prune and never panic.
        for p in [
            Pruner::Asha {
                min_epochs: 0,
                reduction: 3,
            },
            Pruner::Asha {
                min_epochs: 1,
                reduction: 0,
            },
            Pruner::Asha {
                min_epochs: 1,
                reduction: 1,
            },
        ] {
            assert_eq!(decide(&p, Maximize, &bad, 1, &others), None);
        }
    }
}
