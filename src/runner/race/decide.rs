//! Which configurations get another seed: a pure function of a leaderboard's
//! evidence marks and each row's seed count, and the fixed sequence the extra
//! seeds come from. No store, no training.

use crate::report::evidence::Mark;
use crate::report::Leaderboard;
use std::collections::BTreeSet;
use std::fmt;

/// What racing decides for one row of a board this round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Gets one more seed: a contender the paired test cannot yet tell from the
    /// best, or the best itself while some contender grows.
    Grow,
    /// The best row, waiting: no contender grows this round (or it has
    /// `max_seeds` already while they do).
    Leads,
    /// The paired test tells it from the best (Holm-corrected): no more seeds.
    Separated,
    /// Cannot be told from the best but has `max_seeds` seeds: no more seeds.
    Capped,
    /// No paired test (no predictions, too few test rows, a metric that is not
    /// a function of the confusion matrix): racing stops for it.
    Untested,
    /// Not a configuration of the spec being raced (a trial of an earlier
    /// version of the experiment): ranked, never given seeds.
    Outside,
}

/// The verdict for each row of `board` (same order). `seeds[i]` is how many
/// seeds row `i`'s configuration has recorded (any status), `None` when the
/// row is not one of the raced configurations; `max_seeds` is the cap.
///
/// A contender (any row but the first) marked
/// [`Mark::Indistinguishable`] with fewer than `max_seeds` seeds grows; the
/// best (row 0, [`Mark::Best`]) grows too whenever a contender does, unless
/// it is at the cap. [`Mark::Different`] rows are separated, [`Mark::NotTested`]
/// rows and rows without evidence stop. A missing `seeds` entry reads as `None`.
pub fn decide(board: &Leaderboard, seeds: &[Option<usize>], max_seeds: usize) -> Vec<Verdict> {
    let seeds_of = |i: usize| seeds.get(i).copied().flatten();
    let mut verdicts: Vec<Verdict> = board
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let Some(n) = seeds_of(i) else {
                return Verdict::Outside;
            };
            match row.evidence.as_ref().map(|e| e.mark) {
                Some(Mark::Best) => Verdict::Leads,
                Some(Mark::Indistinguishable) if n < max_seeds => Verdict::Grow,
                Some(Mark::Indistinguishable) => Verdict::Capped,
                Some(Mark::Different) => Verdict::Separated,
                Some(Mark::NotTested) | None => Verdict::Untested,
            }
        })
        .collect();
    let contender_grows = verdicts.iter().skip(1).any(|v| *v == Verdict::Grow);
    if let (Some(first), Some(n)) = (verdicts.first_mut(), seeds_of(0)) {
        if *first == Verdict::Leads && contender_grows && n < max_seeds {
            *first = Verdict::Grow;
        }
    }
    verdicts
}

/// The seeds a configuration gets, in order: the spec's `experiment.seeds` as
/// listed, then the non-negative integers 0, 1, 2, … that are not among them.
/// Endless; racing takes as many as `--max-seeds` allows.
pub fn seed_sequence(spec_seeds: &[u64]) -> impl Iterator<Item = u64> + '_ {
    let listed: BTreeSet<u64> = spec_seeds.iter().copied().collect();
    spec_seeds
        .iter()
        .copied()
        .chain((0..=u64::MAX).filter(move |s| !listed.contains(s)))
}

/// The seed a configuration gets next: the first of [`seed_sequence`] that it
/// has not recorded (`recorded`: the seeds of its trials, any status).
pub fn next_seed(spec_seeds: &[u64], recorded: &BTreeSet<u64>) -> u64 {
    seed_sequence(spec_seeds)
        .find(|s| !recorded.contains(s))
        .expect("the sequence is endless and `recorded` finite")
}

/// What one round decided, for the line `lab run --race` prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// 1 for the first decision after the spec's seeds ran.
    pub round: usize,
    /// The configurations given one more seed: (label, the seed), in board order.
    pub grown: Vec<(String, u64)>,
    /// Configurations the paired test told from their board's best.
    pub separated: usize,
    /// Configurations indistinguishable from the best at `--max-seeds` seeds.
    pub capped: usize,
    /// Configurations racing stops for this round for want of a paired test
    /// (each reported once per race).
    pub too_few: Vec<String>,
}

impl fmt::Display for Round {
    /// `round 2: 3 configurations get seed 0: a, b, c; 1 separated` (configurations
    /// with different seed counts are grouped by the seed they get).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "round {}: ", self.round)?;
        let seeds: BTreeSet<u64> = self.grown.iter().map(|(_, s)| *s).collect();
        let n = self.grown.len();
        let plural = if n == 1 { "" } else { "s" };
        match seeds.len() {
            0 => write!(f, "no configuration gets another seed")?,
            1 => {
                let labels: Vec<&str> = self.grown.iter().map(|(l, _)| l.as_str()).collect();
                let seed = self.grown[0].1;
                write!(
                    f,
                    "{n} configuration{plural} get seed {seed}: {}",
                    labels.join(", ")
                )?;
            }
            _ => {
                let groups: Vec<String> = seeds
                    .iter()
                    .map(|s| {
                        let labels: Vec<&str> = self
                            .grown
                            .iter()
                            .filter(|(_, g)| g == s)
                            .map(|(l, _)| l.as_str())
                            .collect();
                        format!("seed {s}: {}", labels.join(", "))
                    })
                    .collect();
                write!(
                    f,
                    "{n} configuration{plural} get another seed ({})",
                    groups.join("; ")
                )?;
            }
        }
        write!(f, "; {} separated", self.separated)?;
        if self.capped > 0 {
            write!(f, ", {} at --max-seeds", self.capped)?;
        }
        if !self.too_few.is_empty() {
            write!(f, ", {} without a paired test", self.too_few.len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::evidence::{CiMethod, Evidence};
    use crate::report::LeaderboardRow;

    fn board(marks: &[Option<Mark>]) -> Leaderboard {
        let rows = marks
            .iter()
            .enumerate()
            .map(|(i, mark)| LeaderboardRow {
                group: vec![format!("c{i}")],
                n: 2,
                stats: vec![None],
                best_trial: i as i64 + 1,
                trials: vec![i as i64 + 1],
                evidence: mark.map(|mark| Evidence {
                    interval: None,
                    method: CiMethod::None,
                    level: 0.95,
                    p_value: None,
                    p_adjusted: None,
                    mark,
                    reason: None,
                }),
                test_split: None,
            })
            .collect::<Vec<_>>();
        Leaderboard {
            experiment: "e".into(),
            split: "test".into(),
            metric: "macro_f1".into(),
            lower_is_better: false,
            group_by: vec!["k".into()],
            columns: vec!["macro_f1".into()],
            groups: rows.len(),
            rows,
            counts: Default::default(),
            test_split: None,
            split_note: None,
            evidence_note: None,
            tags: Vec::new(),
        }
    }

    use Mark::*;
    use Verdict::*;

    #[test]
    fn indistinguishable_rows_and_the_best_grow_different_ones_stop() {
        let b = board(&[Some(Best), Some(Indistinguishable), Some(Different)]);
        let v = decide(&b, &[Some(2), Some(2), Some(2)], 4);
        assert_eq!(v, [Grow, Grow, Separated]);
    }

    #[test]
    fn the_best_waits_when_no_contender_grows() {
        let b = board(&[Some(Best), Some(Different), Some(Different)]);
        assert_eq!(decide(&b, &[Some(2); 3], 8), [Leads, Separated, Separated]);
        // Alone on its board: nothing to race.
        assert_eq!(decide(&board(&[Some(Best)]), &[Some(2)], 8), [Leads]);
    }

    #[test]
    fn the_cap_stops_contenders_and_the_best() {
        let b = board(&[Some(Best), Some(Indistinguishable), Some(Indistinguishable)]);
        // The contenders are at the cap: the best does not grow either.
        assert_eq!(
            decide(&b, &[Some(3), Some(4), Some(4)], 4),
            [Leads, Capped, Capped]
        );
        // One contender lags behind: it and the best (below the cap) grow.
        assert_eq!(
            decide(&b, &[Some(3), Some(3), Some(4)], 4),
            [Grow, Grow, Capped]
        );
        // The best at the cap waits while a contender catches up.
        assert_eq!(
            decide(&b, &[Some(4), Some(3), Some(4)], 4),
            [Leads, Grow, Capped]
        );
    }

    #[test]
    fn too_few_and_missing_evidence_stop_and_never_make_the_best_grow() {
        let b = board(&[Some(Best), Some(NotTested), None]);
        assert_eq!(decide(&b, &[Some(2); 3], 8), [Leads, Untested, Untested]);
    }

    #[test]
    fn rows_outside_the_spec_get_no_seeds() {
        let b = board(&[Some(Best), Some(Indistinguishable), Some(Indistinguishable)]);
        // The best is an older configuration: contenders still race, it does not.
        assert_eq!(
            decide(&b, &[None, Some(2), Some(2)], 8),
            [Outside, Grow, Grow]
        );
        // A short `seeds` reads as outside, never a panic.
        assert_eq!(decide(&b, &[Some(2)], 8), [Leads, Outside, Outside]);
    }

    #[test]
    fn the_sequence_is_the_spec_seeds_then_the_smallest_unused_integers() {
        let seq: Vec<u64> = seed_sequence(&[13, 1, 2]).take(7).collect();
        assert_eq!(seq, [13, 1, 2, 0, 3, 4, 5]);
        let seq: Vec<u64> = seed_sequence(&[0]).take(3).collect();
        assert_eq!(seq, [0, 1, 2]);
    }

    #[test]
    fn the_next_seed_skips_what_is_recorded() {
        let spec = [1, 2];
        assert_eq!(next_seed(&spec, &BTreeSet::from([1, 2])), 0);
        assert_eq!(next_seed(&spec, &BTreeSet::from([1, 2, 0])), 3);
        // A seed of an earlier spec version counts as recorded.
        assert_eq!(next_seed(&spec, &BTreeSet::from([1, 2, 0, 3, 7])), 4);
        // A spec seed missing (its trial not recorded) comes first.
        assert_eq!(next_seed(&spec, &BTreeSet::from([1])), 2);
    }

    #[test]
    fn the_round_line_names_the_seed_and_the_separated() {
        let round = Round {
            round: 1,
            grown: vec![("lr=0.005".into(), 0), ("lr=0.001".into(), 0)],
            separated: 1,
            capped: 0,
            too_few: vec![],
        };
        assert_eq!(
            round.to_string(),
            "round 1: 2 configurations get seed 0: lr=0.005, lr=0.001; 1 separated"
        );
        let mixed = Round {
            round: 3,
            grown: vec![("a".into(), 3), ("b".into(), 4)],
            separated: 0,
            capped: 2,
            too_few: vec!["c".into()],
        };
        assert_eq!(
            mixed.to_string(),
            "round 3: 2 configurations get another seed (seed 3: a; seed 4: b); 0 separated, 2 at --max-seeds, 1 without a paired test"
        );
        let over = Round {
            round: 2,
            grown: vec![],
            separated: 2,
            capped: 0,
            too_few: vec![],
        };
        assert_eq!(
            over.to_string(),
            "round 2: no configuration gets another seed; 2 separated"
        );
    }
}
