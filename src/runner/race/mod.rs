//! Seed racing (`lab run --race`): after the grid's seeds, round by round, one
//! more seed for each configuration the paired test cannot yet tell from its
//! board's best (and for the best), until every configuration is separated or
//! has `max_seeds` seeds.
//!
//! Every decision is made from the store alone, once no trial of the race is
//! pending or running, and the extra seeds come from a fixed sequence
//! ([`seed_sequence`]): so a re-run, another `lab run --race` on the same store
//! or a `--jobs` process proposes exactly the same trials. The added trials are
//! ordinary trials (the configuration's config with another seed, its hash as
//! identity): they resume after a crash, are shared by claims, and merge.

mod decide;

pub use decide::{decide, next_seed, seed_sequence, Round, Verdict};

use super::{is_stale, record, PlannedTrial, RunEvent, RunOptions, RunSummary, Runs};
use crate::report::{self, Leaderboard, LeaderboardOptions};
use crate::spec::{self, LoadedSpec, TrialConfig};
use crate::stats::ConfusionMetric;
use crate::store::{Store, TrialStatus};
use anyhow::{bail, Context, Result};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::Duration;

/// Default [`RaceOptions::max_seeds`] (`--max-seeds`).
pub const DEFAULT_MAX_SEEDS: usize = 8;

/// How often a race waiting for another process's trials looks again.
const POLL: Duration = Duration::from_millis(500);

/// What a race ranks by and how far it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaceOptions {
    /// The most seeds a configuration gets, counting the spec's; at least
    /// `experiment.seeds`' length.
    pub max_seeds: usize,
    /// The leaderboard's ranking metric (`lab compare --metric`): a function of
    /// the confusion matrix on `test` (bare name) or `valid` (`valid.macro_f1`).
    pub metric: String,
}

impl Default for RaceOptions {
    fn default() -> Self {
        Self {
            max_seeds: DEFAULT_MAX_SEEDS,
            metric: LeaderboardOptions::default().metric,
        }
    }
}

/// What a race did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaceSummary {
    /// Trials of the grid plus the ones racing added; done before; run now; failed.
    pub run: RunSummary,
    /// Rounds decided (the last one gives no seed).
    pub rounds: usize,
    /// Trials racing proposed, over all rounds (some may have been recorded
    /// already by another process).
    pub added: usize,
}

/// Refuse a race that cannot run, before anything is recorded: `max_seeds`
/// below the spec's seed count, `--trial-index`, a metric without a paired
/// test, or more than `opts.max_trials` trials should every configuration
/// reach `max_seeds`.
///
/// # Errors
/// One of the above, naming the flag or key; or the grid does not expand.
pub fn check(loaded: &LoadedSpec, opts: &RunOptions, race: &RaceOptions) -> Result<()> {
    let path = loaded.path.display();
    let seeds = loaded.spec.experiment.seeds.len();
    if race.max_seeds < seeds {
        bail!(
            "{path}: --max-seeds {} is fewer than the {seeds} seeds of experiment.seeds; pass --max-seeds {seeds} or more",
            race.max_seeds
        );
    }
    if loaded.spec.search.is_some() {
        bail!("{path}: --race adds seeds to the configurations of a grid; a [search] decides itself which configurations run (rank its results with `lab compare`)");
    }
    if opts.trial_index.is_some() {
        bail!("--race decides from results which trials to add: it cannot run one trial of the grid (--trial-index)");
    }
    check_metric(&race.metric)?;
    let configs = super::planned(loaded)?.len() / seeds.max(1);
    let most = configs.saturating_mul(race.max_seeds);
    if most > opts.max_trials {
        bail!(
            "{path}: --race may grow the grid's {configs} configurations to {most} trials (--max-seeds {}), more than --max-trials {}; pass --max-trials {most} or a smaller --max-seeds",
            race.max_seeds,
            opts.max_trials
        );
    }
    Ok(())
}

/// The metric must have a paired test: a function of the confusion matrix on
/// a split whose per-example predictions are kept (test, valid).
fn check_metric(metric: &str) -> Result<()> {
    let (split, name) = match metric.split_once('.') {
        Some((s, n)) if ["train", "valid", "test"].contains(&s) => (s, n),
        _ => ("test", metric),
    };
    if split == "train" {
        bail!("--metric {metric}: lab keeps no per-example predictions on the train split, so --race cannot test it; race on test or valid (valid.{name})");
    }
    let class: Vec<String> = name
        .split_once('.')
        .map(|(_, c)| c.to_string())
        .into_iter()
        .collect();
    if ConfusionMetric::parse(name, &class).is_none() {
        bail!("--metric {metric}: --race needs a paired test, and only a function of the confusion matrix has one (accuracy, macro_f1, weighted_recall, f1.<class>, ...)");
    }
    Ok(())
}

/// Run the spec's grid (round 0, as `runner::run` does), then race seeds until
/// no configuration gets another: `on_event` hears every trial, `on_round`
/// every round's decision.
///
/// # Errors
/// As [`check`] and `runner::run`; the leaderboard cannot be computed (the
/// metric is not recorded); a stop signal ([`crate::interrupt::Interrupted`]).
pub fn race(
    loaded: &LoadedSpec,
    opts: &RunOptions,
    race: &RaceOptions,
    on_event: &mut dyn FnMut(RunEvent),
    on_round: &mut dyn FnMut(&Round),
) -> Result<RaceSummary> {
    check(loaded, opts, race)?;
    let (store, recorded) = record(loaded, opts)?;
    on_event(RunEvent::Planned {
        total: recorded.trials.len(),
        done: recorded.already_done,
    });
    let mut summary = RunSummary {
        experiment_id: recorded.experiment_id,
        total: recorded.trials.len(),
        already_done: recorded.already_done,
        ran: 0,
        failed: 0,
        pruned: 0,
    };
    let racer = Racer::new(loaded, opts, race, recorded.experiment_id, &recorded.trials);
    let mut datasets = recorded.datasets;
    let mut runs = Runs {
        store: &store,
        loaded,
        opts,
        datasets: &mut datasets,
        summary: &mut summary,
        pruning: None,
    };
    runs.each(&recorded.trials, &recorded.ids, on_event)?;
    if opts.retry_failed {
        let ids: Vec<i64> = racer.members(&store)?.iter().map(|m| m.id).collect();
        store.requeue_failed(&ids)?;
    }
    let (mut rounds, mut added) = (0, 0);
    let mut warned = HashSet::new();
    loop {
        racer.settle(&mut runs, on_event)?;
        // Decide only on a store that did not change while the boards were
        // read: another process may be adding or claiming the next trials.
        let before = racer.members(&store)?;
        let boards = racer.boards(&store)?;
        let after = racer.members(&store)?;
        if !same_state(&before, &after) {
            continue;
        }
        rounds += 1;
        let (round, new) = racer.plan(&boards, &after, rounds, &mut warned);
        on_round(&round);
        if new.is_empty() {
            break;
        }
        let rows = new
            .iter()
            .map(PlannedTrial::new_trial)
            .collect::<Result<Vec<_>>>()?;
        store.add_trials(racer.experiment_id, &rows)?;
        added += new.len();
        runs.summary.total += new.len();
    }
    Ok(RaceSummary {
        run: summary,
        rounds,
        added,
    })
}

/// One configuration of the grid: its config with seed 0, and its swept values.
struct Configuration {
    config: TrialConfig,
    label: String,
}

/// A recorded trial of one of the raced configurations.
struct Member {
    config: usize,
    trial: PlannedTrial,
    id: i64,
    status: TrialStatus,
}

/// The race's fixed inputs: the spec's configurations and how far to go.
struct Racer<'a> {
    opts: &'a RunOptions,
    race: &'a RaceOptions,
    experiment_id: i64,
    spec_seeds: &'a [u64],
    axes: Vec<String>,
    configs: Vec<Configuration>,
}

impl<'a> Racer<'a> {
    fn new(
        loaded: &'a LoadedSpec,
        opts: &'a RunOptions,
        race: &'a RaceOptions,
        experiment_id: i64,
        grid: &[PlannedTrial],
    ) -> Self {
        let axes: Vec<String> = loaded.spec.sweep.keys().cloned().collect();
        let mut seen = HashSet::new();
        let configs = grid
            .iter()
            .map(|t| TrialConfig {
                seed: 0,
                ..t.config.clone()
            })
            .filter(|c| seen.insert(spec::config_hash(c)))
            .map(|config| {
                let values = spec::swept_values(&config, &axes);
                let label = if values.is_empty() {
                    "the spec's configuration".to_string()
                } else {
                    let parts: Vec<String> = values
                        .into_iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect();
                    parts.join(" ")
                };
                Configuration { config, label }
            })
            .collect();
        Self {
            opts,
            race,
            experiment_id,
            spec_seeds: &loaded.spec.experiment.seeds,
            axes,
            configs,
        }
    }

    /// Configuration `c` with `seed`, as the grid would have made it.
    fn trial(&self, c: usize, seed: u64) -> PlannedTrial {
        let config = TrialConfig {
            seed,
            ..self.configs[c].config.clone()
        };
        PlannedTrial {
            hash: spec::config_hash(&config),
            label: spec::trial_label(&config, &self.axes),
            config,
            number: None,
        }
    }

    /// The experiment's trials that are one of the configurations with some
    /// seed: a trial is configuration `c`'s when its hash is `c`'s with its seed.
    fn members(&self, store: &Store) -> Result<Vec<Member>> {
        let rows = store.trials(self.experiment_id)?;
        let seeds: BTreeSet<u64> = rows.iter().map(|r| r.seed).collect();
        let mut by_hash: HashMap<String, (usize, PlannedTrial)> = HashMap::new();
        for c in 0..self.configs.len() {
            for &seed in &seeds {
                let t = self.trial(c, seed);
                by_hash.insert(t.hash.clone(), (c, t));
            }
        }
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let (config, trial) = by_hash.remove(&r.config_hash)?;
                Some(Member {
                    config,
                    trial,
                    id: r.id,
                    status: r.status,
                })
            })
            .collect())
    }

    /// Run the race's pending trials and wait for those other processes run,
    /// until none is pending (or claimable) or running: then every process
    /// sees the same store and decides the same next round.
    fn settle(&self, runs: &mut Runs, on_event: &mut dyn FnMut(RunEvent)) -> Result<()> {
        loop {
            crate::interrupt::check()?;
            runs.store
                .requeue_stale(self.experiment_id, &|worker, beat| {
                    is_stale(worker, beat, self.opts.lease)
                })?;
            let pending: Vec<Member> = self
                .members(runs.store)?
                .into_iter()
                .filter(|m| m.status == TrialStatus::Pending)
                .collect();
            let ids: Vec<i64> = pending.iter().map(|m| m.id).collect();
            let trials: Vec<PlannedTrial> = pending.into_iter().map(|m| m.trial).collect();
            if runs.each(&trials, &ids, on_event)? > 0 {
                continue;
            }
            let running = self
                .members(runs.store)?
                .iter()
                .any(|m| m.status == TrialStatus::Running);
            if !running {
                return Ok(());
            }
            std::thread::sleep(POLL);
        }
    }

    /// The experiment's leaderboards ranked by the race's metric, with evidence.
    fn boards(&self, store: &Store) -> Result<Vec<Leaderboard>> {
        let experiment = store
            .experiment(self.experiment_id)?
            .with_context(|| format!("experiment {} is gone from the store", self.experiment_id))?;
        let opts = LeaderboardOptions {
            metric: self.race.metric.clone(),
            ..Default::default()
        };
        report::leaderboards(store, &experiment, &opts)
    }

    /// Round `round`'s decision on `boards` and the race's trials `members`
    /// (read from the same state of the store): its line, and the trials to
    /// add. A configuration racing stops for without a paired test is put in
    /// `warned` and named in the first round that finds it so.
    fn plan(
        &self,
        boards: &[Leaderboard],
        members: &[Member],
        round: usize,
        warned: &mut HashSet<usize>,
    ) -> (Round, Vec<PlannedTrial>) {
        let config_of: HashMap<i64, usize> = members.iter().map(|m| (m.id, m.config)).collect();
        let mut recorded = vec![BTreeSet::new(); self.configs.len()];
        for m in members {
            recorded[m.config].insert(m.trial.config.seed);
        }
        let mut line = Round {
            round,
            grown: Vec::new(),
            separated: 0,
            capped: 0,
            too_few: Vec::new(),
        };
        let mut new = Vec::new();
        for board in boards {
            let rows: Vec<Option<usize>> = board
                .rows
                .iter()
                .map(|r| r.trials.first().and_then(|id| config_of.get(id).copied()))
                .collect();
            let seeds: Vec<Option<usize>> =
                rows.iter().map(|c| c.map(|c| recorded[c].len())).collect();
            let verdicts = decide(board, &seeds, self.race.max_seeds);
            for (verdict, c) in verdicts.into_iter().zip(rows) {
                let Some(c) = c else { continue };
                let label = &self.configs[c].label;
                match verdict {
                    Verdict::Grow => {
                        let seed = next_seed(self.spec_seeds, &recorded[c]);
                        line.grown.push((label.clone(), seed));
                        new.push(self.trial(c, seed));
                    }
                    Verdict::Separated => line.separated += 1,
                    Verdict::Capped => line.capped += 1,
                    Verdict::Untested if warned.insert(c) => line.too_few.push(label.clone()),
                    Verdict::Untested | Verdict::Leads | Verdict::Outside => {}
                }
            }
        }
        (line, new)
    }
}

/// Whether two reads of the race's trials found the same trials in the same
/// statuses, none of them running.
fn same_state(before: &[Member], after: &[Member]) -> bool {
    let state = |m: &Member| (m.id, m.status);
    before.iter().map(state).eq(after.iter().map(state))
        && after.iter().all(|m| m.status != TrialStatus::Running)
}
