//! A search in the runner: proposals turned into trials, TPE's next proposal
//! recorded and claimed in one store transaction, and the pruner asked after
//! every epoch. The decisions themselves are `crate::search`'s.

use super::trial::{execute, Job};
use super::{PlannedTrial, RunEvent, Runs};
use crate::search::prune::{self, Curve, Direction, Pruner};
use crate::search::sample::{point_key, Proposal};
use crate::search::tpe::{self, Observation, DEFAULT_STARTUP_TRIALS};
use crate::spec::{self, LoadedSpec, Mode, Param, PrunerKind, SearchSection, TrialConfig};
use crate::store::{NewTrial, SearchTrial, Store, TrialRow, TrialStatus};
use anyhow::{Context, Result};
use serde_json::Value;
use std::collections::HashSet;

/// TPE's random start: `startup_trials` (default 10) but at most the budget.
pub(super) fn startup(search: &SearchSection) -> usize {
    search
        .startup_trials
        .unwrap_or(DEFAULT_STARTUP_TRIALS)
        .min(search.trials.unwrap_or(0))
}

/// A proposal applied to every point of the grid (`grid`, seeds innermost).
pub(super) fn expand_proposal(
    loaded: &LoadedSpec,
    grid: &[TrialConfig],
    params: &[Param],
    proposal: &Proposal,
    axes: &[String],
) -> Result<Vec<PlannedTrial>> {
    grid.iter()
        .map(|base| {
            let config =
                spec::apply(base, params, &proposal.values, &loaded.base_dir).map_err(|e| {
                    spec::key_error(
                        loaded,
                        "search.space",
                        format!(
                            "proposal {} is not a valid configuration: {e}",
                            proposal.number
                        ),
                    )
                })?;
            Ok(PlannedTrial {
                hash: spec::config_hash(&config),
                label: spec::trial_label(&config, axes),
                config,
                number: Some(proposal.number),
            })
        })
        .collect()
}

/// The direction the search's objective improves in.
pub(super) fn direction(search: &SearchSection) -> Direction {
    match search.objective.metric.mode() {
        Mode::Max => Direction::Maximize,
        Mode::Min => Direction::Minimize,
    }
}

/// What a trial's pruner needs: the rule, the objective and the experiment.
#[derive(Debug, Clone)]
pub(super) struct Pruning {
    pruner: Pruner,
    direction: Direction,
    metric: &'static str,
    experiment_id: i64,
}

impl Pruning {
    /// The spec's pruner, if it has one that prunes.
    pub(super) fn of(loaded: &LoadedSpec, experiment_id: i64) -> Option<Pruning> {
        Self::of_search(loaded.spec.search.as_ref()?, experiment_id)
    }

    /// The pruner of a spec recorded in the store (its text), for a queue
    /// worker, which has no spec file; `None` when it has none or does not read.
    pub(super) fn of_stored(spec_toml: &str, experiment_id: i64) -> Option<Pruning> {
        Self::of_search(&spec::recorded_search(spec_toml)?, experiment_id)
    }

    fn of_search(search: &SearchSection, experiment_id: i64) -> Option<Pruning> {
        let p = search.pruner.as_ref()?;
        let pruner = match p.kind {
            PrunerKind::None => return None,
            PrunerKind::Median => Pruner::Median {
                min_epochs: p.min_epochs,
                startup_trials: p.startup_trials,
            },
            PrunerKind::Asha => Pruner::Asha {
                min_epochs: p.min_epochs,
                reduction: p.reduction,
            },
        };
        Some(Pruning {
            pruner,
            direction: direction(search),
            metric: search.objective.metric.name(),
            experiment_id,
        })
    }

    /// Whether `trial_id` stops after `epoch`, judged on every trial's epoch
    /// rows in the store (this epoch's included: it was recorded first). A
    /// store that cannot be read prunes nothing: pruning only saves time.
    pub(super) fn decide(&self, store: &Store, trial_id: i64, epoch: usize) -> Option<String> {
        let curves = match store.epoch_curves(self.experiment_id, self.metric) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(
                    "trial {trial_id}: cannot read the epochs to prune ({e:#}); it goes on"
                );
                return None;
            }
        };
        let (mine, others): (Vec<Curve>, Vec<Curve>) = curves
            .into_iter()
            .map(|c| Curve {
                trial_id: c.trial_id,
                finished: c.status == TrialStatus::Done,
                values: c.values,
            })
            .partition(|c| c.trial_id == trial_id);
        let mine = mine.into_iter().next()?;
        prune::decide(&self.pruner, self.direction, &mine, epoch, &others).map(|v| v.reason)
    }
}

impl Runs<'_> {
    /// TPE after its random start: run pending trials of the search (put back
    /// after a crash, or other seeds and grid points of a proposal), else
    /// propose, record and claim the next configuration, until the budget is
    /// spent or the space exhausted. Returns how many trials this call ran.
    ///
    /// # Errors
    /// A stop signal, a proposal that fails, or the store's errors.
    pub(super) fn search(
        &mut self,
        experiment_id: i64,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<usize> {
        let loaded = self.loaded;
        let Some(search) = loaded.spec.search.as_ref() else {
            return Ok(0);
        };
        let params = spec::search_space(loaded)?;
        let grid = spec::expand(loaded)?;
        let axes = super::label_axes(loaded);
        let device = self
            .opts
            .device
            .clone()
            .unwrap_or_else(|| loaded.spec.train.device.to_string());
        let claim_as = (self.opts.worker.as_str(), device.as_str());
        let mut ran = 0;
        loop {
            crate::interrupt::check()?;
            let claimed =
                match self
                    .store
                    .claim_search_pending(experiment_id, claim_as.0, claim_as.1)?
                {
                    Some(row) => row,
                    None => {
                        let mut propose = |number: usize, trials: &[SearchTrial]| {
                            let next = Next {
                                loaded,
                                search,
                                params: &params,
                                grid: &grid,
                                axes: &axes,
                            };
                            next.trials(number, trials)
                        };
                        match self.store.propose_and_claim(
                            experiment_id,
                            search.objective.metric.name(),
                            search.trials.unwrap_or(0),
                            claim_as,
                            &mut propose,
                        )? {
                            Some(row) => row,
                            None => return Ok(ran),
                        }
                    }
                };
            ran += 1;
            self.run_row(claimed, &axes, &device, on_event)?;
        }
    }

    /// Run a trial claimed from its store row.
    fn run_row(
        &mut self,
        row: TrialRow,
        axes: &[String],
        device: &str,
        on_event: &mut dyn FnMut(RunEvent),
    ) -> Result<()> {
        let config: TrialConfig = serde_json::from_str(&row.config_json)
            .with_context(|| format!("trial {}: its recorded config does not read back", row.id))?;
        let label = spec::trial_label(&config, axes);
        let job = Job {
            trial_id: row.id,
            config: &config,
            label: &label,
            base_dir: &self.loaded.base_dir,
            device,
            pruning: self.pruning.as_ref(),
        };
        self.summary.ran += 1;
        let outcome = execute(self.store, &job, self.opts, self.datasets, on_event)?;
        self.count(outcome);
        Ok(())
    }
}

/// What TPE's next proposal is made from.
struct Next<'a> {
    loaded: &'a LoadedSpec,
    search: &'a SearchSection,
    params: &'a [Param],
    grid: &'a [TrialConfig],
    axes: &'a [String],
}

impl Next<'_> {
    /// Proposal `number`'s trials, given the search's trials so far: TPE over
    /// the finished and pruned ones, never a point whose trials all exist.
    fn trials(&self, number: usize, trials: &[SearchTrial]) -> Result<Vec<NewTrial>> {
        let configs: Vec<(&SearchTrial, Value)> = trials
            .iter()
            .filter_map(|t| Some((t, serde_json::from_str(&t.config_json).ok()?)))
            .collect();
        let history: Vec<Observation> = configs
            .iter()
            .filter_map(|(t, config)| {
                Some(Observation {
                    values: self.params.iter().map(|p| tpe::encode(p, config)).collect(),
                    objective: t.objective.filter(|v| v.is_finite())?,
                })
            })
            .collect();
        let known: HashSet<&str> = trials.iter().map(|t| t.config_hash.as_str()).collect();
        let mut taken: HashSet<String> = configs
            .iter()
            .filter(|(t, _)| t.search_number.is_some())
            .filter_map(|(_, config)| {
                let values: Option<Vec<Value>> = self
                    .params
                    .iter()
                    .map(|p| p.value_in(config).cloned())
                    .collect();
                Some(point_key(&values?))
            })
            .collect();
        let direction = direction(self.search);
        let startup = startup(self.search);
        for _ in 0..64 {
            let Some(proposal) = tpe::propose(
                self.params,
                &history,
                direction,
                self.search.seed,
                number,
                startup,
                &taken,
            )
            .map_err(|e| anyhow::anyhow!("TPE could not propose configuration {number}: {e}"))?
            else {
                return Ok(Vec::new());
            };
            let planned =
                expand_proposal(self.loaded, self.grid, self.params, &proposal, self.axes)?;
            if planned.iter().any(|t| !known.contains(t.hash.as_str())) {
                return planned.iter().map(PlannedTrial::new_trial).collect();
            }
            taken.insert(point_key(&proposal.values));
        }
        Ok(Vec::new())
    }
}
